/**
 * A 10 MB Gemini CLI JSON session (≤ 0.38, rewritten whole on every update) updated 100 times
 * while the worker runs: the worker's CPU per update and the bytes it sends per update, against
 * baselines measured in the same run (a `JSON.parse` of the document in this process; the
 * document's size).
 *
 * ```
 * deno task bench:rewrite                 # 10 MB, 100 updates
 * REWRITE_MB=2 deno task bench:rewrite    # smaller
 * ```
 *
 * The worker runs as its binary would (the permission table's flags) and delivers to a real
 * store behind the batch API on loopback; its CPU is read from `/proc/<pid>/stat` (Linux).
 *
 * @module
 */
import { GEMINI_TURN_BYTES, geminiDocument } from "./sources_corpus.ts";
import { median, procCpuSeconds, spawnWorker } from "../tests/helpers.ts";
import { startFaultServer } from "../tests/fault_server.ts";

const MB = Number(Deno.env.get("REWRITE_MB") ?? "10");
const UPDATES = 100;
const turns = Math.round((MB * 1e6) / GEMINI_TURN_BYTES);
const full = geminiDocument({
  sessionId: "be5c0000-0000-4000-8000-000000000002",
  turns: turns + 30,
  seed: 4,
});
const base = turns * 4;
const versions = Array.from(
  { length: UPDATES + 1 },
  (_, i) => JSON.stringify({ ...full, messages: full.messages.slice(0, base + i) }, null, 2),
);
const docBytes = new TextEncoder().encode(versions[0]).length;

const fs = startFaultServer({ maxBodyBytes: 1 << 27 });
const dir = await Deno.makeTempDir({ prefix: "ai-sync-rewrite-" });
const chats = `${dir}/data/${"d".repeat(64)}/chats`;
await Deno.mkdir(chats, { recursive: true });
const path = `${chats}/session-2026-11-22T15-00-be5c0000.json`;
await Deno.writeTextFile(
  `${dir}/config.yaml`,
  `server:\n  base_url: ${fs.url}\nsecurity:\n  worker_token: ${fs.token}\nworker:\n  debounce_ms: 50\n`,
);
await Deno.writeTextFile(path, versions[0]);
const worker = spawnWorker(
  ["--config", `${dir}/config.yaml`, "--state-dir", `${dir}/state`, "--data-dir", `${dir}/data`],
  {},
  "gemini_cli",
);
const delivered = async (n: number) => {
  const deadline = Date.now() + 60_000;
  while (fs.store.stats().total_messages < n) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${n} messages`);
    await new Promise((r) => setTimeout(r, 5));
  }
};
const sent = () => fs.requests.filter((r) => r.answered === 200).reduce((n, r) => n + r.bytes, 0);

try {
  await worker.waitFor("backfill done", 60_000);
  await delivered(base);
  const cpu: number[] = [];
  const bytes: number[] = [];
  for (let i = 1; i <= UPDATES; i++) {
    const cpu0 = procCpuSeconds(worker.child.pid);
    const bytes0 = sent();
    await Deno.writeTextFile(path, versions[i]);
    await delivered(base + i);
    // Let the worker settle (the commit after the acknowledgement, the watcher's last event).
    await new Promise((r) => setTimeout(r, 60));
    cpu.push(procCpuSeconds(worker.child.pid) - cpu0);
    bytes.push(sent() - bytes0);
  }
  const parseRuns: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    JSON.parse(versions[i]);
    parseRuns.push((performance.now() - t0) / 1000);
  }
  const baseline = median(parseRuns);
  const cpuPerUpdate = cpu.reduce((a, b) => a + b, 0) / UPDATES;
  console.log(
    `document: ${
      (docBytes / 1e6).toFixed(1)
    } MB, ${base} messages; ${UPDATES} updates of one message each`,
  );
  console.log("| measure | value | baseline (same run) | ratio |");
  console.log("|---|---|---|---|");
  console.log(
    `| worker CPU per update (mean of ${UPDATES}) | ${(cpuPerUpdate * 1000).toFixed(0)} ms | ` +
      `JSON.parse of the document: ${(baseline * 1000).toFixed(0)} ms | ${
        (cpuPerUpdate / baseline).toFixed(1)
      }× |`,
  );
  console.log(
    `| bytes sent per update (median) | ${median(bytes)} B | the document: ${docBytes} B | ${
      (median(bytes) / docBytes * 100).toFixed(3)
    } % |`,
  );
  console.log(
    `| messages on the server | ${fs.store.stats().total_messages} | expected ${
      base + UPDATES
    } | |`,
  );
} finally {
  worker.child.kill("SIGTERM");
  await worker.exit();
  await fs.close();
  await Deno.remove(dir, { recursive: true });
}
