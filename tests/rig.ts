/**
 * An in-process worker over a real HTTP sink: one source's {@link LineFileWorker} and
 * {@link Pipeline} delivering to a (fault-injecting) server, with retry and probe timings fast
 * enough for tests.
 *
 * @module
 */
import { HttpSink } from "../common/client.ts";
import { LineFileWorker, type LineSource } from "../common/line_worker.ts";
import { Logger } from "../common/log.ts";
import { type DeliverySettings, deliverySettings, Pipeline } from "../common/pipeline.ts";
import { ConfigSchema } from "../common/config.ts";
import { ReadScope } from "../common/guarded_file.ts";
import { StateStore } from "../common/state.ts";
import type { FaultServer } from "./fault_server.ts";

/** The defaults, with retries and probes fast enough for tests. */
export const TEST_SETTINGS: DeliverySettings = {
  ...deliverySettings(ConfigSchema.parse({}), false),
  retryBaseMs: 20,
  retryMaxMs: 200,
  probeIntervalMs: 100,
  shutdownTimeoutMs: 2000,
};

/** A worker, its pipeline, sink and state. */
export interface Rig<Carry> {
  state: StateStore;
  sink: HttpSink;
  log: Logger;
  pipeline: Pipeline<Carry>;
  worker: LineFileWorker<Carry>;
}

/** Options of {@link rig}. */
export interface RigOptions {
  settings?: Partial<DeliverySettings>;
  log?: Logger;
  extraRoots?: string[];
}

/** Builds a worker for `source` over `root`, delivering to `fs`, with its state at `statePath`. */
export function rig<Carry>(
  fs: FaultServer,
  source: LineSource<Carry>,
  root: string,
  statePath: string,
  opts: RigOptions = {},
): Rig<Carry> {
  const state = new StateStore(statePath);
  const log = opts.log ?? new Logger("test", "error");
  const sink = new HttpSink({
    baseUrl: fs.url,
    token: fs.token,
    timeoutMs: 1000,
    compress: false,
    userAgent: "test",
  });
  const pipeline = new Pipeline<Carry>({
    sourceType: source.sourceType,
    parser: source.parser,
    state,
    sink,
    log,
    host: "h",
    scope: new ReadScope([root, ...opts.extraRoots ?? []]),
    settings: () => ({ ...TEST_SETTINGS, ...opts.settings }),
  });
  const worker = new LineFileWorker(source, root, pipeline, log, {
    debounceMs: () => 50,
    checkIntervalMs: () => 60_000,
  }, opts.extraRoots);
  return { state, sink, log, pipeline, worker };
}
