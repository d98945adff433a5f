import { writeCorpus } from "../bench/corpus.ts";
import { parseClaudeCode } from "../parsers/claude_code.ts";
import { EmbeddedSink } from "../common/client.ts";
import { LineFileWorker } from "../common/line_worker.ts";
import { Logger } from "../common/log.ts";
import { deliverySettings, Pipeline } from "../common/pipeline.ts";
import { ConfigSchema } from "../common/config.ts";
import { StateStore } from "../common/state.ts";
import { ConversationStore } from "../server/store.ts";
import { claudeCodeSource } from "../workers/claude_code/worker.ts";
const root = "/tmp/prof_corpus";
try {
  Deno.statSync(root);
} catch {
  await writeCorpus(root, 50e6, { turnsPerSession: 40, seed: 11 });
}
const dir = await Deno.makeTempDir();
const store = new ConversationStore(`${dir}/c.db`);
const state = new StateStore(`${dir}/s.db`);
const log = new Logger("p", "error");
const pipeline = new Pipeline({
  sourceType: "claude_code",
  parser: parseClaudeCode,
  state,
  sink: new EmbeddedSink(store),
  log,
  host: "h",
  settings: () => deliverySettings(ConfigSchema.parse({}), false),
});
const w = new LineFileWorker(claudeCodeSource, root, pipeline, log, {
  debounceMs: () => 300,
  checkIntervalMs: () => 1e6,
});
const t0 = performance.now();
await w.check();
console.log("backfill", ((performance.now() - t0) / 1000).toFixed(2), "s", pipeline.stats.messages);
