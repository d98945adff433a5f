/**
 * An in-process worker over a real HTTP sink: one source's {@link SourceWorker} and
 * {@link Pipeline} delivering to a (fault-injecting) server, with retry and probe timings fast
 * enough for tests.
 *
 * @module
 */
import { HttpSink } from "../common/delivery/http_sink.ts";
import {
  type FileSource,
  SourceWorker,
  type SourceWorkerTiming,
} from "../common/watch/source_worker.ts";
import type { WatchFs } from "../common/watch/tree_watcher.ts";
import { Logger } from "../common/log.ts";
import { type DeliverySettings, Pipeline } from "../common/delivery/pipeline.ts";
import { deliverySettings } from "../common/engine/settings.ts";
import { ConfigSchema } from "../common/config.ts";
import { ReadScope } from "../common/io/guarded_file.ts";
import { StateStore } from "../common/state/state.ts";
import { type FaultServer, startFaultServer } from "./fault_server.ts";
import { assertEquals } from "./assert.ts";
import { sessionLines } from "../bench/corpus.ts";
import type { ClaudeCodeCarry, ClaudeCodeHint } from "../parsers/claude_code.ts";
import { claudeCodeSource } from "../workers/claude_code/source.ts";

/** The defaults, with retries and probes fast enough for tests. */
export const TEST_SETTINGS: DeliverySettings = {
  ...deliverySettings(ConfigSchema.parse({}), false),
  retryBaseMs: 20,
  retryMaxMs: 200,
  probeIntervalMs: 100,
  shutdownTimeoutMs: 2000,
};

/** A worker, its pipeline, sink and state. */
export interface Rig<Carry, Hint = unknown> {
  state: StateStore;
  sink: HttpSink;
  log: Logger;
  pipeline: Pipeline<Carry, Hint>;
  worker: SourceWorker<Carry, Hint>;
}

/** Options of {@link rig}. */
export interface RigOptions {
  settings?: Partial<DeliverySettings>;
  log?: Logger;
  extraRoots?: string[];
  /** Watching settings besides the rig's (a debounce of 50 ms, a check every minute). */
  timing?: Partial<SourceWorkerTiming>;
  watchFs?: WatchFs;
}

/** Builds a worker for `source` over `root`, delivering to `fs`, with its state at `statePath`. */
export function rig<Carry, Hint>(
  fs: FaultServer,
  source: FileSource<Carry, Hint>,
  root: string,
  statePath: string,
  opts: RigOptions = {},
): Rig<Carry, Hint> {
  const state = new StateStore(statePath);
  const log = opts.log ?? new Logger("test", "error");
  const sink = new HttpSink({
    baseUrl: fs.url,
    token: fs.token,
    timeoutMs: 1000,
    compress: false,
    userAgent: "test",
  });
  const pipeline = new Pipeline<Carry, Hint>({
    sourceType: source.sourceType,
    parser: source.parser,
    rules: source,
    state,
    sink,
    log,
    host: "h",
    scope: new ReadScope([root, ...opts.extraRoots ?? []]),
    settings: () => ({ ...TEST_SETTINGS, ...opts.settings }),
  });
  const worker = new SourceWorker(
    source,
    root,
    pipeline,
    log,
    {
      debounceMs: () => 50,
      checkIntervalMs: () => 60_000,
      ...opts.timing,
    },
    opts.extraRoots,
    opts.watchFs,
  );
  return { state, sink, log, pipeline, worker };
}

/** Claude Code sessions and a worker for them. */
export interface Setup {
  root: string;
  state: StateStore;
  sink: HttpSink;
  pipeline: Pipeline<ClaudeCodeCarry, ClaudeCodeHint>;
  worker: SourceWorker<ClaudeCodeCarry, ClaudeCodeHint>;
  files: string[];
  expected: number;
}

/** `sessions` sessions (three by default) of `turns` turns each under a fresh projects dir, and a worker for them. */
export async function setup(
  fs: FaultServer,
  settings: Partial<DeliverySettings> = {},
  turns = 3,
  sessions = 3,
): Promise<Setup> {
  const root = await Deno.makeTempDir();
  await Deno.mkdir(`${root}/-home-dev-p`);
  const files: string[] = [];
  let expected = 0;
  for (let i = 0; i < sessions; i++) {
    const sessionId = `${String(i).padStart(8, "0")}-0000-4000-8000-000000000000`;
    const lines = sessionLines({ sessionId, turns, seed: i + 1 });
    expected += lines.length - 1; // one ai-title line per session
    const path = `${root}/-home-dev-p/${sessionId}.jsonl`;
    await Deno.writeTextFile(path, lines.join("\n") + "\n");
    files.push(path);
  }
  const { state, sink, pipeline, worker } = rig(fs, claudeCodeSource, root, `${root}/state.db`, {
    settings,
  });
  return { root, state, sink, pipeline, worker, files, expected };
}

/** Every file's checkpoint is at its end, and the server holds each message once. */
export async function assertAllDelivered(s: Setup, fs: FaultServer): Promise<void> {
  for (const path of s.files) {
    assertEquals(
      s.state.getUnit(path)?.offset,
      (await Deno.stat(path)).size,
      `checkpoint of ${path}`,
    );
  }
  assertEquals(fs.store.stats().total_messages, s.expected);
  assertEquals(fs.store.stats().total_conversations, s.files.length);
}

/** Runs `fn` against a fresh fault server, closed afterwards. */
export async function withFaults(
  fn: (fs: FaultServer) => Promise<void>,
  opts: { maxBodyBytes?: number } = {},
): Promise<void> {
  const fs = startFaultServer(opts);
  try {
    await fn(fs);
  } finally {
    await fs.close();
  }
}
