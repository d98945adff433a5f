/**
 * A worker's engine, built once from the configuration: its log, state, sink, pipeline and
 * source worker, and the one way to change them while it runs ({@link Engine.reconfigure}).
 * It backfills with progress, then watches and serves status, or does one pass (`--once`).
 *
 * @module
 */
import { join } from "node:path";
import { cleartextWarning, type Config } from "../config.ts";
import type { Sink } from "../delivery/sink.ts";
import { HttpSink, type HttpSinkOptions } from "../delivery/http_sink.ts";
import { type ChannelSink, embeddedStorePath } from "../delivery/store_sinks.ts";
import { Pipeline, StoppedError } from "../delivery/pipeline.ts";
import { ReadScope } from "../io/guarded_file.ts";
import { errorMessage, Logger } from "../log.ts";
import { startProgress } from "../progress.ts";
import { StateStore } from "../state/state.ts";
import { serveStatus } from "../status.ts";
import { type RunSummary, summaryTable } from "../summary.ts";
import { describeReport } from "../units/export_delta.ts";
import { type Intake, intakeDir } from "../intake.ts";
import { type FileSource, SourceWorker } from "../watch/source_worker.ts";
import { watchConfig } from "./config_watch.ts";
import type { EngineInit } from "./protocol.ts";
import { deliverySettings, watchTiming } from "./settings.ts";
import { checkSandbox } from "./sandbox.ts";
import { releaseMemory, Settler } from "./settle.ts";
import { checkTarget, noteTargetFile, storeReceiptOf, targetOf } from "./target.ts";
import { statusSnapshot } from "./snapshot.ts";
/** The HTTP sink's settings in a configuration. */
function httpOptions(config: Config, source: string, version: string): HttpSinkOptions {
  return {
    baseUrl: config.server.base_url,
    token: config.security.worker_token,
    timeoutMs: config.server.timeout * 1000,
    compress: config.server.compress,
    userAgent: `ai-sync-${source}/${version}`,
  };
}

/**
 * An engine for one source.
 *
 * @example Build an engine over an empty folder and run one pass into a store
 * ```ts
 * import { Engine } from "./engine.ts";
 * import { applyStoreRequest, ChannelSink } from "../delivery/store_sinks.ts";
 * import { ConfigSchema } from "../config.ts";
 * import { ConversationStore } from "../../store/store.ts";
 * import { codexSource } from "../../workers/codex/source.ts";
 * const dir = await Deno.makeTempDir();
 * const store = new ConversationStore(":memory:");
 * const channel: ChannelSink = new ChannelSink(
 *   "embedded store",
 *   (request) => channel.receive(applyStoreRequest(store, request)),
 * );
 * const engine = Engine.open(codexSource, {
 *   config: ConfigSchema.parse({}), configPath: "", env: {}, dataDir: dir, extraRoots: [],
 *   readRoots: [dir], secrets: {}, stateDir: dir, once: true, dryRun: false, logLevel: "error",
 *   statusPort: 0, statusToken: "", host: "h", version: "0", tty: false, stdoutTty: false,
 *   json: true, report: "", sandboxProbe: { outsidePath: "/", outsideHost: "192.0.2.1:9" },
 * }, channel);
 * if (typeof engine !== "number") console.log(await engine.once()); // 0, after a summary line
 * ```
 */
export class Engine<Carry, Hint> {
  readonly log: Logger;
  readonly state: StateStore;
  readonly sink: Sink;
  readonly pipeline: Pipeline<Carry, Hint>;
  readonly worker: SourceWorker<Carry, Hint>;
  /** The source's intake besides its files (the openai worker's mailbox), when configured. */
  readonly intake: Intake | undefined;
  #config: Config;
  /** The HTTP sink, when delivering to a server (a reload changes its settings). */
  readonly #http: HttpSink | undefined;
  #backfilled = false;

  private constructor(
    readonly source: FileSource<Carry, Hint>,
    readonly init: EngineInit,
    log: Logger,
    state: StateStore,
    channel: ChannelSink | undefined,
  ) {
    this.#config = init.config;
    this.log = log;
    this.state = state;
    // Without a server, the main thread owns the embedded store: it writes while this one parses.
    this.#http = channel
      ? undefined
      : new HttpSink(httpOptions(init.config, source.name, init.version));
    this.sink = channel ?? this.#http!;
    const current = () => this.#config;
    this.pipeline = new Pipeline({
      sourceType: source.sourceType,
      parser: source.parser,
      rules: source,
      state,
      sink: this.sink,
      log,
      host: init.host,
      scope: new ReadScope(init.readRoots),
      settings: () => deliverySettings(current(), init.once),
      dryRun: init.dryRun ? (body) => console.log(body) : undefined,
    });
    this.worker = new SourceWorker(
      source,
      init.dataDir,
      this.pipeline,
      log,
      watchTiming(current),
      init.extraRoots,
    );
    this.intake = source.intake?.({
      section: () => (current() as unknown as Record<string, Record<string, unknown>>)[source.name],
      secrets: init.secrets,
      state,
      log,
      downloadDir: intakeDir(init.stateDir, source.name),
      recordError: (message) => this.pipeline.recordError(message),
    });
  }

  /**
   * Builds the engine of `source` from `init` (its `channel` when delivering into the embedded
   * store); the exit code instead when its state database cannot be opened (reported).
   */
  static open<Carry, Hint>(
    source: FileSource<Carry, Hint>,
    init: EngineInit,
    channel: ChannelSink | undefined,
  ): Engine<Carry, Hint> | number {
    const config = init.config;
    const log = new Logger(source.name, init.logLevel ?? config.log.level);
    if (config.log.file) log.setFile(config.log.file);
    // A person at a terminal reads text; services, pipes and log files get JSON lines.
    const format = init.logFormat ?? config.log.format;
    log.format = format === "auto" ? (init.tty && !config.log.file ? "text" : "json") : format;
    log.addSecret(config.security.worker_token);
    log.addSecret(init.statusToken);
    checkSandbox(log, init);
    const statePath = join(init.stateDir, `${source.name}.state.db`);
    let state: StateStore;
    try {
      // A dry run records nothing: it works on a copy of the state in memory.
      state = init.dryRun ? StateStore.copyInMemory(statePath) : new StateStore(statePath);
    } catch (error) {
      log.error(errorMessage(error));
      log.close();
      return 1;
    }
    const target = targetOf(config.server.base_url, init.stateDir);
    const receipt = config.server.base_url
      ? undefined
      : storeReceiptOf(init.stateDir, source.sourceType);
    const why = checkTarget(state, target, receipt);
    if (why) log.warn(`${why}: reading everything again for ${target.name}, which keeps each once`);
    const engine = new Engine(
      source,
      init,
      log,
      state,
      config.server.base_url ? undefined : channel,
    );
    log.info(`syncing ${source.label} from ${init.dataDir}`, {
      target: engine.#target,
      state_dir: init.stateDir,
      ...(init.extraRoots.length > 0 ? { also_from: init.extraRoots } : {}),
    });
    const cleartext = cleartextWarning(config.server.base_url);
    if (cleartext) log.warn(cleartext);
    return engine;
  }

  /** The configuration in force. */
  get config(): Config {
    return this.#config;
  }

  /**
   * Applies a reloaded configuration: delivery and watching read it from now on, the HTTP sink
   * takes its token, timeout and compression, the log its level, and a wait ends at once.
   */
  reconfigure(next: Config): void {
    this.#config = next;
    if (this.#http) this.#http.options = httpOptions(next, this.source.name, this.init.version);
    this.log.addSecret(next.security.worker_token);
    if (!this.init.logLevel) this.log.level = next.log.level;
    this.pipeline.wake();
  }

  /** Records the embedded store's file once a batch has created it (see `target.ts`). */
  #noteTarget(): void {
    const { init, state } = this;
    if (!init.dryRun) noteTargetFile(state, targetOf(this.#config.server.base_url, init.stateDir));
  }

  get #target(): string {
    return this.init.dryRun ? "nowhere (dry run)" : this.sink.target;
  }

  /** Progress of the backfill: a bar on a terminal, log lines, or JSON lines for `start`. */
  #progress(): { mode: string; end(): void } {
    const { init, pipeline, worker } = this;
    const mode = init.report === "json"
      ? "json"
      : init.tty && !this.#config.log.file
      ? "bar"
      : init.once
      ? "none"
      : "log";
    const progress = startProgress(mode, () => ({
      watching: this.#backfilled,
      source: this.source.name,
      state: pipeline.stats.pausedReason
        ? "paused"
        : pipeline.stats.retrying
        ? "retrying"
        : "running",
      reason: pipeline.stats.pausedReason || pipeline.stats.retrying,
      done: pipeline.stats.bytesRead,
      total: worker.backlogBytes,
      conversations: pipeline.stats.conversations,
      messages: pipeline.stats.messages,
    }), this.log);
    return { mode, end: () => progress.end() };
  }

  /** One full pass (`--once`, `--dry-run`), then the summary; returns the exit code. */
  async once(): Promise<number> {
    const { pipeline, worker, init, log } = this;
    const progress = this.#progress();
    let failure: unknown;
    try {
      // What the intake fetches lands in a watched folder: this pass imports it.
      await this.intake?.check().catch((error) => pipeline.recordError(errorMessage(error)));
      const result = await worker.check();
      this.#noteTarget();
      if (result.files === 0) this.#reportNothingFound();
    } catch (error) {
      failure = error;
    }
    progress.end();
    const s = pipeline.stats;
    if (failure && !(failure instanceof StoppedError)) pipeline.recordError(errorMessage(failure));
    const summary: RunSummary = {
      source: this.source.name,
      conversations: s.conversations,
      messages: s.messages,
      skipped: s.skipped,
      errors: s.errors,
      tokens: s.tokens,
      target: this.#target,
    };
    if (s.exports.length > 0) summary.exports = s.exports.map(describeReport);
    if (s.problems > 0) {
      log.warn(`${s.problems} input problem(s) skipped and named above; nothing else was lost`);
    }
    if (init.dryRun) log.info("dry run: nothing was sent or recorded", { ...summary });
    else if (init.stdoutTty && !init.json && init.report !== "json") {
      console.log(summaryTable([summary]));
    } else console.log(JSON.stringify(summary));
    this.close();
    return failure || s.errors > 0 ? 1 : 0;
  }

  /**
   * Backfills, then watches until `stopped` resolves, serving status and reloading the config;
   * returns the exit code.
   */
  async watch(stopped: Promise<void>): Promise<number> {
    const { pipeline, worker, init, log } = this;
    if (!this.#config.server.base_url) {
      log.info(
        `no server.base_url configured: delivering into the embedded store ${
          embeddedStorePath(init.stateDir)
        }`,
      );
    }
    let statusServer: Deno.HttpServer | undefined;
    if (init.statusPort) {
      try {
        const { source, state, sink, intake } = this;
        const snapshot = statusSnapshot({
          name: source.name,
          sourceType: source.sourceType,
          version: init.version,
          pipeline,
          worker,
          state,
          sink,
          intake,
        });
        statusServer = serveStatus(init.statusPort, snapshot, init.statusToken);
      } catch (error) {
        if (!(error instanceof Deno.errors.AddrInUse)) throw error;
        log.error(
          `the status port 127.0.0.1:${init.statusPort} is already in use (another worker or ` +
            `program); give this ${this.source.name} worker another status.port or --status-port`,
        );
        this.close();
        return 1;
      }
      log.info(`status on http://127.0.0.1:${init.statusPort}/status`);
    }
    const progress = this.#progress();
    const reloader = watchConfig(init, log, () => this.#config, (next) => this.reconfigure(next));
    // The heap a backfill or a large change grew is given back once the work has settled.
    const settler = new Settler(
      () => pipeline.stats.bytesRead + pipeline.stats.batches,
      releaseMemory,
    );
    const t0 = performance.now();
    const backfill = worker.start().then((failure) => {
      this.#backfilled = true;
      // A bar or log lines are for the backfill; `start` draws JSON progress while it runs.
      if (progress.mode !== "json") progress.end();
      const s = pipeline.stats;
      this.#noteTarget();
      if (pipeline.stopping) return; // Cut short by a stop: neither done nor failed.
      if (worker.files === 0) this.#reportNothingFound();
      if (failure) {
        log.warn(
          `backfill incomplete: ${errorMessage(failure)}; it goes on by itself once that is fixed`,
        );
        return;
      }
      log.info(
        `backfill done: ${s.conversations} conversations, ${s.messages} messages from ` +
          `${worker.files} files in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
          (worker.polling
            ? `checking for changes every ${this.#config.worker.poll_interval} s`
            : "watching for changes"),
        { skipped: s.skipped, errors: s.errors, target: this.sink.target },
      );
    });
    const intakeStop = new AbortController();
    const intake = this.intake?.run(intakeStop.signal)
      .catch((error) => pipeline.recordError(errorMessage(error)));
    await Promise.race([backfill, stopped]);
    await stopped;
    intakeStop.abort();
    log.info(pipeline.busy ? "stopping: finishing the in-flight batch" : "stopping");
    progress.end();
    clearInterval(reloader);
    settler.stop();
    await worker.stop();
    await backfill.catch(() => {});
    await intake;
    await statusServer?.shutdown();
    log.info("stopped", { messages: pipeline.stats.messages });
    this.close();
    return 0;
  }

  /** Stops delivery at once (a pass in progress ends without committing more). */
  stop(): void {
    this.pipeline.stop();
  }

  #reportNothingFound(): void {
    this.log.warn(
      `no ${this.source.label} found in ${this.init.dataDir}; if they are elsewhere, pass the ` +
        `directory flag or set the ${this.source.name} section of the config file`,
    );
  }

  /** Closes the state database and the log. */
  close(): void {
    this.state.close();
    this.log.close();
  }
}
