/**
 * A worker's engine: everything that touches source data, run inside a Web Worker whose
 * permissions the main thread narrowed to the data directory, the config file, the state
 * directory and the API host ({@link enginePermissions}). It builds the pipeline from the
 * config, backfills with progress, keeps watching, serves status, reloads the config, and stops
 * when the main thread says so.
 *
 * @module
 */
import { join } from "node:path";
import { type Config, type ConfigEnv, ConfigError, loadConfig } from "./config.ts";
import { ChannelSink, HttpSink, type StoreReply, type StoreRequest } from "./delivery/sinks.ts";
import { ReadScope } from "./io/guarded_file.ts";
import { type FileSource, SourceWorker } from "./watch/source_worker.ts";
import { errorMessage, Logger, type LogLevel } from "./log.ts";
import { deliverySettings, Pipeline, StoppedError } from "./delivery/pipeline.ts";
import { serveStatus, type StatusSnapshot } from "./status.ts";
import { StateStore } from "./state/state.ts";
import { startProgress } from "./progress.ts";
import { type RunSummary, summaryTable } from "./summary.ts";

/** What the main thread tells the engine at start. */
export interface EngineInit {
  configPath: string;
  env: ConfigEnv;
  dataDir: string;
  /** Directories beside `dataDir` that are sources too (Codex's `archived_sessions`). */
  extraRoots: string[];
  /** Everything the engine may read source data from (data dir, siblings): the read scope. */
  readRoots: string[];
  stateDir: string;
  once: boolean;
  dryRun: boolean;
  logLevel?: LogLevel;
  statusPort: number;
  /** The bearer token `/status` and `/metrics` require. */
  statusToken: string;
  host: string;
  version: string;
  /** stderr is a terminal: draw a progress bar. */
  tty: boolean;
  /** stdout is a terminal: the `--once` summary is a table, else a JSON line. */
  stdoutTty: boolean;
  /** `--json`: the `--once` summary as a JSON line even on a terminal. */
  json: boolean;
  /** `--report json`: progress and the summary as JSON lines on stdout (for `start`). */
  report: "json" | "";
  /** `--log-format`, over `log.format`. */
  logFormat?: "text" | "json";
  /** Paths the engine must not be able to read, checked at start (outside its scope). */
  sandboxProbe: { outsidePath: string; outsideHost: string };
}

/** Messages from the main thread. */
export type EngineCommand = { type: "init"; init: EngineInit } | { type: "stop" } | StoreReply;

/**
 * Messages to the main thread: the engine is ready for its init, the exit code, or a batch for
 * the embedded store it owns.
 */
export type EngineReply = { type: "ready" } | { type: "done"; code: number } | StoreRequest;

/** Config keys that only a restart can change (they shape the engine's permissions or sockets). */
const RESTART_KEYS = [
  ["server", "base_url"],
  ["status", "port"],
  ["log", "file"],
] as const;

/** This module runs as a Web Worker: `self` is the worker scope. */
const scope = self as unknown as {
  postMessage(message: EngineReply): void;
  onmessage: ((event: MessageEvent<EngineCommand>) => void) | null;
};
const post = (reply: EngineReply) => scope.postMessage(reply);
/** The embedded store's channel, when the engine delivers into it. */
let channel: ChannelSink | undefined;

/**
 * Runs `source` as this Web Worker's engine; call it from the worker module.
 *
 * @example A worker's engine module
 * ```ts ignore
 * import { runEngine } from "../../common/engine.ts";
 * import { claudeCodeSource } from "./source.ts";
 * runEngine(claudeCodeSource);
 * ```
 */
export function runEngine<Carry, Hint>(source: FileSource<Carry, Hint>): void {
  let stop: (() => void) | undefined;
  let stopRequested = false;
  scope.onmessage = (event) => {
    const command = event.data;
    if (command.type === "init") {
      engine(source, command.init, (fn) => {
        stop = fn;
        if (stopRequested) fn();
      }).then((code) => post({ type: "done", code }), (error) => {
        console.error(`fatal: ${errorMessage(error)}`);
        post({ type: "done", code: 1 });
      });
    } else if (command.type === "stop") {
      stopRequested = true;
      stop?.();
    } else if (command.type === "stored") {
      channel?.receive(command);
    }
  };
  // A source's modules may finish loading only after a top-level await (a WebAssembly hasher):
  // a message sent before this handler existed would be lost, so the main thread waits for this.
  post({ type: "ready" });
}

async function engine<Carry, Hint>(
  source: FileSource<Carry, Hint>,
  init: EngineInit,
  onStoppable: (stop: () => void) => void,
): Promise<number> {
  const log = new Logger(source.name, init.logLevel ?? "info");
  let config: Config;
  try {
    config = await loadConfig(init.configPath || undefined, init.env);
  } catch (error) {
    log.error(errorMessage(error));
    return error instanceof ConfigError ? 2 : 1;
  }
  if (!init.logLevel) log.level = config.log.level;
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
  // Without a server, the main thread owns the embedded store: it writes while this thread parses.
  const storePath = join(init.stateDir, "conversations.db");
  channel = config.server.base_url
    ? undefined
    : new ChannelSink(`embedded store ${storePath}`, post);
  const sink = channel ?? new HttpSink({
    baseUrl: config.server.base_url,
    token: config.security.worker_token,
    timeoutMs: config.server.timeout * 1000,
    compress: config.server.compress,
    userAgent: `ai-sync-${source.name}/${init.version}`,
  });
  const pipeline = new Pipeline({
    sourceType: source.sourceType,
    parser: source.parser,
    rules: source,
    state,
    sink,
    log,
    host: init.host,
    scope: new ReadScope(init.readRoots),
    settings: () => deliverySettings(config, init.once),
    dryRun: init.dryRun ? (body) => console.log(body) : undefined,
  });
  const worker = new SourceWorker(source, init.dataDir, pipeline, log, {
    debounceMs: () => config.worker.debounce_ms,
    checkIntervalMs: () => config.worker.check_interval * 1000,
    retryMs: () => config.worker.probe_interval * 1000,
  }, init.extraRoots);
  const close = () => {
    state.close();
    log.close();
  };
  log.info(`syncing ${source.label} from ${init.dataDir}`, {
    target: init.dryRun ? "nowhere (dry run)" : sink.target,
    state_dir: init.stateDir,
  });
  const progressMode = init.report === "json"
    ? "json"
    : init.tty && !config.log.file
    ? "bar"
    : init.once
    ? "none"
    : "log";
  let backfilled = false;
  const progress = startProgress(progressMode, () => ({
    watching: backfilled,
    source: source.name,
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
  }), log);

  if (init.once || init.dryRun) {
    onStoppable(() => pipeline.stop());
    let failure: unknown;
    try {
      const result = await worker.check();
      if (result.files === 0) reportNothingFound(log, source, init);
    } catch (error) {
      failure = error;
    }
    progress.end();
    const s = pipeline.stats;
    if (failure && !(failure instanceof StoppedError)) pipeline.recordError(errorMessage(failure));
    const summary: RunSummary = {
      source: source.name,
      conversations: s.conversations,
      messages: s.messages,
      skipped: s.skipped,
      errors: s.errors,
      tokens: s.tokens,
      target: init.dryRun ? "nowhere (dry run)" : sink.target,
    };
    if (s.problems > 0) {
      log.warn(`${s.problems} input problem(s) skipped and named above; nothing else was lost`);
    }
    if (init.dryRun) log.info("dry run: nothing was sent or recorded", { ...summary });
    else if (init.stdoutTty && !init.json && init.report !== "json") {
      console.log(summaryTable([summary]));
    } else console.log(JSON.stringify(summary));
    close();
    return failure || s.errors > 0 ? 1 : 0;
  }

  if (channel) {
    log.info(`no server.base_url configured: delivering into the embedded store ${storePath}`);
  }
  const startedAt = new Date().toISOString();
  let lastSyncCount = 0;
  let lastMessages = 0;
  worker.onCheck = () => {
    lastSyncCount = pipeline.stats.messages - lastMessages;
    lastMessages = pipeline.stats.messages;
  };
  const snapshot = (): StatusSnapshot => {
    const counters = state.counters();
    return {
      worker: source.name,
      source_type: source.sourceType,
      version: init.version,
      running: !pipeline.stopping,
      started_at: startedAt,
      last_check: worker.lastCheck,
      last_sync_count: lastSyncCount,
      total_synced: counters.messages ?? 0,
      synced_since_start: pipeline.stats.messages,
      conversations_since_start: pipeline.stats.conversations,
      files: worker.files,
      skipped: pipeline.stats.skipped,
      error_count: pipeline.stats.errors,
      problems: pipeline.stats.problems,
      last_problem: pipeline.stats.lastProblem,
      last_error: pipeline.stats.lastError,
      last_error_at: pipeline.stats.lastErrorAt,
      dead_lettered: pipeline.stats.deadLettered,
      lost_bytes: counters.lost_bytes ?? 0,
      backlog_bytes: worker.backlogBytes,
      bytes_read: pipeline.stats.bytesRead,
      paused_reason: pipeline.stats.pausedReason,
      retrying: pipeline.stats.retrying,
      target: sink.target,
    };
  };
  let statusServer: Deno.HttpServer | undefined;
  if (init.statusPort) {
    try {
      statusServer = serveStatus(init.statusPort, snapshot, init.statusToken);
    } catch (error) {
      if (!(error instanceof Deno.errors.AddrInUse)) throw error;
      log.error(
        `the status port 127.0.0.1:${init.statusPort} is already in use (another worker or ` +
          `program); give this ${source.name} worker another status.port or --status-port`,
      );
      progress.end();
      close();
      return 1;
    }
    log.info(`status on http://127.0.0.1:${init.statusPort}/status`);
  }

  const reloader = watchConfig(init, log, () => config, (next) => {
    config = next;
    if (sink instanceof HttpSink) {
      sink.options = {
        ...sink.options,
        token: next.security.worker_token,
        timeoutMs: next.server.timeout * 1000,
        compress: next.server.compress,
      };
    }
    log.addSecret(next.security.worker_token);
    if (!init.logLevel) log.level = next.log.level;
    pipeline.wake();
  });

  let stopped: () => void = () => {};
  const stoppedPromise = new Promise<void>((resolve) => stopped = resolve);
  onStoppable(() => stopped());

  const t0 = performance.now();
  const backfill = worker.start().then((failure) => {
    backfilled = true;
    // A bar or log lines are for the backfill; `start` draws JSON progress for as long as it runs.
    if (progressMode !== "json") progress.end();
    const s = pipeline.stats;
    if (pipeline.stopping) return; // Cut short by a stop: neither done nor failed.
    if (worker.files === 0) reportNothingFound(log, source, init);
    if (failure) {
      log.warn(
        `backfill incomplete: ${errorMessage(failure)}; it goes on by itself once that is fixed`,
      );
      return;
    }
    log.info(
      `backfill done: ${s.conversations} conversations, ${s.messages} messages from ${worker.files} files ` +
        `in ${((performance.now() - t0) / 1000).toFixed(1)} s; watching for changes`,
      { skipped: s.skipped, errors: s.errors, target: sink.target },
    );
  });
  await Promise.race([backfill, stoppedPromise]);
  await stoppedPromise;
  log.info(pipeline.busy ? "stopping: finishing the in-flight batch" : "stopping");
  progress.end();
  clearInterval(reloader);
  await worker.stop();
  await backfill.catch(() => {});
  await statusServer?.shutdown();
  log.info("stopped", { messages: pipeline.stats.messages });
  close();
  return 0;
}

function reportNothingFound<Carry, Hint>(
  log: Logger,
  source: FileSource<Carry, Hint>,
  init: EngineInit,
): void {
  log.warn(
    `no ${source.label} found in ${init.dataDir}; if they are elsewhere, pass the directory flag ` +
      `or set the ${source.name} section of the config file`,
  );
}

/**
 * Verifies that the narrowing holds: a path outside the scope is not readable and a host other
 * than the API host is not reachable. A failure is logged loudly; it would mean the engine runs
 * with the main thread's wider grant.
 */
function checkSandbox(log: Logger, init: EngineInit): void {
  const read =
    Deno.permissions.querySync({ name: "read", path: init.sandboxProbe.outsidePath }).state;
  const net =
    Deno.permissions.querySync({ name: "net", host: init.sandboxProbe.outsideHost }).state;
  const env = Deno.permissions.querySync({ name: "env", variable: "HOME" }).state;
  const confined = read !== "granted" && net !== "granted" && env !== "granted";
  const fields = {
    read_outside: read,
    net_other_host: net,
    env: env,
    probe_path: init.sandboxProbe.outsidePath,
    probe_host: init.sandboxProbe.outsideHost,
  };
  if (confined) {
    log.debug(
      "sandbox: engine confined to its data, config and state paths and the API host",
      fields,
    );
  } else log.error("sandbox: engine is NOT confined; check --unstable-worker-options", fields);
}

/** Polls the config file (cheap, and robust to editors that replace the file) and applies safe changes. */
function watchConfig(
  init: EngineInit,
  log: Logger,
  current: () => Config,
  apply: (next: Config) => void,
): ReturnType<typeof setInterval> {
  let mtime = 0;
  const stamp = () => {
    try {
      return Deno.statSync(init.configPath).mtime?.getTime() ?? 0;
    } catch {
      return 0;
    }
  };
  if (init.configPath) mtime = stamp();
  return setInterval(async () => {
    if (!init.configPath) return;
    const now = stamp();
    if (now === mtime) return;
    mtime = now;
    let next: Config;
    try {
      next = await loadConfig(init.configPath, init.env);
    } catch (error) {
      log.error(`${errorMessage(error)}; keeping the previous configuration`);
      return;
    }
    const old = current();
    for (const [section, key] of RESTART_KEYS) {
      const before = (old[section] as Record<string, unknown>)[key];
      const after = (next[section] as Record<string, unknown>)[key];
      if (before !== after) {
        log.warn(
          `${section}.${key} changed; restart the worker to apply it (keeping ${
            JSON.stringify(before)
          })`,
        );
        (next[section] as Record<string, unknown>)[key] = before;
      }
    }
    apply(next);
    log.info(`configuration reloaded from ${init.configPath}`);
  }, 1000);
}
