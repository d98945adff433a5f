/**
 * What a worker's `/status` and `/metrics` report: the parts of its engine, read at each request.
 *
 * @module
 */
import type { Pipeline } from "../delivery/pipeline.ts";
import type { Sink } from "../delivery/sink.ts";
import type { Intake } from "../intake.ts";
import type { StateStore } from "../state/state.ts";
import type { StatusSnapshot } from "../status.ts";
import type { SourceType } from "../types.ts";
import type { SourceWorker } from "../watch/source_worker.ts";

/** The parts of an engine a status is read from. */
export interface SnapshotParts<Carry, Hint> {
  name: string;
  sourceType: SourceType;
  version: string;
  pipeline: Pipeline<Carry, Hint>;
  worker: SourceWorker<Carry, Hint>;
  state: StateStore;
  sink: Sink;
  intake?: Intake;
}

/**
 * A function of now that gives the status of `parts`; it counts what each check delivered from
 * the time it is made (it sets `worker.onCheck`).
 *
 * @example The status of a worker that has not checked yet
 * ```ts
 * import { statusSnapshot } from "./snapshot.ts";
 * import { Pipeline } from "../delivery/pipeline.ts";
 * import { EmbeddedSink } from "../delivery/store_sinks.ts";
 * import { StateStore } from "../state/state.ts";
 * import { ReadScope } from "../io/guarded_file.ts";
 * import { Logger } from "../log.ts";
 * import { ConfigSchema } from "../config.ts";
 * import { deliverySettings, watchTiming } from "./settings.ts";
 * import { SourceWorker } from "../watch/source_worker.ts";
 * import { ConversationStore } from "../../store/store.ts";
 * import { claudeCodeSource } from "../../workers/claude_code/source.ts";
 * const root = await Deno.makeTempDir();
 * const config = ConfigSchema.parse({});
 * const log = new Logger("doc", "error");
 * const state = new StateStore(":memory:");
 * const sink = new EmbeddedSink(new ConversationStore(":memory:"));
 * const pipeline = new Pipeline({
 *   sourceType: "claude_code", parser: claudeCodeSource.parser, state, sink, log, host: "h",
 *   scope: new ReadScope([root]), settings: () => deliverySettings(config, true),
 * });
 * const worker = new SourceWorker(claudeCodeSource, root, pipeline, log, watchTiming(() => config));
 * const snapshot = statusSnapshot({
 *   name: "claude_code", sourceType: "claude_code", version: "0", pipeline, worker, state, sink,
 * });
 * console.log(snapshot().last_check); // "" (not yet)
 * ```
 */
export function statusSnapshot<Carry, Hint>(
  parts: SnapshotParts<Carry, Hint>,
): () => StatusSnapshot {
  const { pipeline, worker, state, intake } = parts;
  const startedAt = new Date().toISOString();
  let lastSyncCount = 0;
  let lastMessages = 0;
  worker.onCheck = () => {
    lastSyncCount = pipeline.stats.messages - lastMessages;
    lastMessages = pipeline.stats.messages;
  };
  return () => {
    const counters = state.counters();
    const s = pipeline.stats;
    return {
      worker: parts.name,
      source_type: parts.sourceType,
      version: parts.version,
      running: !pipeline.stopping,
      started_at: startedAt,
      last_check: worker.lastCheck,
      last_sync_count: lastSyncCount,
      total_synced: counters.messages ?? 0,
      synced_since_start: s.messages,
      conversations_since_start: s.conversations,
      files: worker.files,
      skipped: s.skipped,
      error_count: s.errors,
      problems: s.problems,
      last_problem: s.lastProblem,
      last_error: s.lastError,
      last_error_at: s.lastErrorAt,
      dead_lettered: s.deadLettered,
      lost_bytes: counters.lost_bytes ?? 0,
      backlog_bytes: worker.backlogBytes,
      bytes_read: s.bytesRead,
      paused_reason: s.pausedReason,
      retrying: s.retrying,
      polling: worker.polling,
      target: parts.sink.target,
      ...(s.exports.length > 0 ? { exports: s.exports } : {}),
      ...(intake ? { intake: intake.status() } : {}),
    };
  };
}
