/**
 * Running a worker: the state directory and its lock, the status token, and the engine started
 * in a Web Worker narrowed to its paths and host ({@link engineLaunch}), with the embedded store
 * written on this thread and signals passed on.
 *
 * @module
 */
import { join, resolve } from "node:path";
import { type Config, sourceSection } from "../config.ts";
import { errorMessage } from "../log.ts";
import { downloadDir, enginePermissions, netHost, siblingPaths } from "../permissions.ts";
import { StateLock, StateLockedError } from "../state/lock.ts";
import { StateDatabaseError } from "../state/state.ts";
import type { EngineCommand, EngineInit, EngineReply } from "../engine/protocol.ts";
import { isInside } from "../watch/walk.ts";
import { applyStoreRequest, embeddedStorePath, StoreOpener } from "../delivery/store_sinks.ts";
import { releaseMemory, Settler } from "../engine/settle.ts";
import { type CliContext, extraDirsOf, otherDefaultDirsOf, resolveDataDir } from "./context.ts";
import { VERSION } from "../version.ts";

/** Signals closer together than this count as one (see {@link runWorker}). */
const SIGNAL_REPEAT_MS = 250;

/**
 * Where a worker keeps the status token it made up (readable by its user only).
 *
 * @example The token file of a worker
 * ```ts
 * import { statusTokenPath } from "./launch.ts";
 * import { parseCli } from "./context.ts";
 * import { sourceSpec } from "../../workers/registry.ts";
 * console.log(statusTokenPath(parseCli(sourceSpec("codex"), ["--state-dir", "/s"])));
 * // /s/codex.status-token
 * ```
 */
export function statusTokenPath(ctx: CliContext): string {
  return join(ctx.stateDir, `${ctx.spec.name}.status-token`);
}

/**
 * The status token a worker made up, or `""`.
 *
 * @example Read a worker's token
 * ```ts
 * import { readStatusToken } from "./launch.ts";
 * import { parseCli } from "./context.ts";
 * import { sourceSpec } from "../../workers/registry.ts";
 * console.log(readStatusToken(parseCli(sourceSpec("codex"), ["--state-dir", "/nowhere"]))); // ""
 * ```
 */
export function readStatusToken(ctx: CliContext): string {
  try {
    return Deno.readTextFileSync(statusTokenPath(ctx)).trim();
  } catch {
    return "";
  }
}

/** A fresh random status token, written for `status` to read (mode 0600). */
function makeStatusToken(ctx: CliContext): string {
  const bytes = crypto.getRandomValues(new Uint8Array(24));
  const token = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  Deno.writeTextFileSync(statusTokenPath(ctx), `${token}\n`, { mode: 0o600 });
  Deno.chmodSync(statusTokenPath(ctx), 0o600);
  return token;
}

/**
 * The engine's start message and permissions for a run.
 *
 * @example Inspect what a run would be allowed
 * ```ts
 * import { engineLaunch } from "./launch.ts";
 * import { parseCli } from "./context.ts";
 * import { ConfigSchema } from "../config.ts";
 * import { sourceSpec } from "../../workers/registry.ts";
 * const ctx = parseCli(sourceSpec("codex"), ["--sessions-dir", "/d", "--state-dir", "/s"]);
 * const { permissions } = engineLaunch(ctx, ConfigSchema.parse({}));
 * console.log(permissions.read); // ["/d", "/archived_sessions", "/s"]
 * ```
 */
export function engineLaunch(
  ctx: CliContext,
  config: Config,
  statusToken = "",
): { init: EngineInit; permissions: Deno.PermissionOptionsObject } {
  const dataDir = resolveDataDir(ctx, config);
  const siblings = siblingPaths(ctx.spec, dataDir);
  // Downloads land in the state directory, which the engine may read and write already.
  const downloads = downloadDir(ctx.spec, ctx.stateDir);
  const extraDirs = [
    ...extraDirsOf(ctx.spec, config, ctx.configPath),
    ...otherDefaultDirsOf(ctx.spec, ctx.dataDirFlag, config, dataDir),
  ];
  const watched = downloads ? [...extraDirs, downloads] : extraDirs;
  const statusPort = ctx.statusPort ?? config.status.port;
  const logFile = config.log.file && !isInside(resolve(config.log.file), ctx.stateDir)
    ? resolve(config.log.file)
    : undefined;
  const baseUrl = config.server.base_url || undefined;
  const permissions = enginePermissions(ctx.spec, {
    dataDir,
    stateDir: ctx.stateDir,
    configFile: ctx.configPath || undefined,
    logFile,
    baseUrl,
    statusPort: statusPort || undefined,
    hosts: ctx.spec.hosts?.(sourceSection(config, ctx.spec)),
    extraDirs,
  });
  const probeHost = baseUrl && netHost(baseUrl) === "192.0.2.1:9" ? "192.0.2.2:9" : "192.0.2.1:9";
  const init: EngineInit = {
    config,
    configPath: ctx.configPath,
    env: ctx.env,
    dataDir,
    extraRoots: [...siblings.filter((s) => s.watch).map((s) => s.path), ...watched],
    readRoots: [dataDir, ...siblings.map((s) => s.path), ...watched],
    secrets: Object.fromEntries(
      (ctx.spec.secretEnv ?? []).flatMap((name) => {
        const value = Deno.env.get(name);
        return value ? [[name, value]] : [];
      }),
    ),
    stateDir: ctx.stateDir,
    once: ctx.once,
    dryRun: ctx.dryRun,
    logLevel: ctx.logLevel,
    statusPort,
    statusToken,
    host: Deno.hostname(),
    version: VERSION,
    tty: Deno.stderr.isTerminal(),
    stdoutTty: Deno.stdout.isTerminal(),
    json: ctx.json,
    report: ctx.report,
    logFormat: ctx.logFormat,
    sandboxProbe: { outsidePath: "/", outsideHost: probeHost },
  };
  return { init, permissions };
}

/**
 * Runs a worker until it ends: creates the state directory, takes its lock, starts the engine
 * and owns the embedded store; returns the exit code.
 *
 * @example A worker's run (defined here, not started)
 * ```ts
 * import { runWorker } from "./launch.ts";
 * import type { CliContext } from "./context.ts";
 * import type { Config } from "../config.ts";
 * async function run(ctx: CliContext, config: Config): Promise<number> {
 *   return await runWorker(ctx, config, new URL("../../workers/codex/engine.ts", import.meta.url));
 * }
 * ```
 */
export async function runWorker(ctx: CliContext, config: Config, engineUrl: URL): Promise<number> {
  try {
    // A dry run records nothing, so it creates nothing either.
    if (!ctx.dryRun) Deno.mkdirSync(ctx.stateDir, { recursive: true });
  } catch (error) {
    console.error(
      `${ctx.spec.binary}: cannot create the state directory ${ctx.stateDir}: ${
        errorMessage(error)
      }`,
    );
    return 1;
  }
  // One instance per source and state directory (a dry run writes nothing, so it may run beside).
  let lock: StateLock | undefined;
  if (!ctx.dryRun) {
    try {
      lock = StateLock.acquire(ctx.stateDir, ctx.spec.name, ctx.spec.binary);
    } catch (error) {
      if (error instanceof StateDatabaseError) {
        console.error(`${ctx.spec.binary}: ${error.message}`);
        return 1;
      }
      if (!(error instanceof StateLockedError)) throw error;
      console.error(`${ctx.spec.binary}: ${error.message}`);
      return 2;
    }
  }
  const statusPort = ctx.statusPort ?? config.status.port;
  let statusToken = "";
  try {
    if (statusPort && !ctx.dryRun) statusToken = config.status.token || makeStatusToken(ctx);
  } catch (error) {
    console.error(
      `${ctx.spec.binary}: cannot write the status token into ${ctx.stateDir}: ${
        errorMessage(error)
      }`,
    );
    lock?.release();
    return 1;
  }
  const { init, permissions } = engineLaunch(ctx, config, statusToken);
  const engine = new Worker(engineUrl, { type: "module", deno: { permissions } });
  let firstSignalAt = 0;
  let ready = false;
  const onSignal = () => {
    const now = Date.now();
    if (!firstSignalAt) {
      firstSignalAt = now;
      // Before the engine is ready, the stop follows its init (see below).
      if (ready) engine.postMessage({ type: "stop" } satisfies EngineCommand);
      return;
    }
    // Ctrl-C reaches every process of the group and a launcher may forward it too: a repeat
    // within moments is the same signal twice, not a second request.
    if (now - firstSignalAt < SIGNAL_REPEAT_MS) return;
    console.error(`${ctx.spec.binary}: second signal, exiting at once`);
    Deno.exit(130);
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(signal, onSignal);
  // The embedded store is written here, so the engine's parsing and the writes use two cores.
  const store = new StoreOpener(embeddedStorePath(ctx.stateDir));
  let stored = 0;
  // This thread's heap grows with the batches it writes; given back once they stop coming.
  const settler = new Settler(() => stored, releaseMemory);
  const code = await new Promise<number>((resolveCode) => {
    engine.onmessage = (event: MessageEvent<EngineReply>) => {
      const message = event.data;
      if (message.type === "ready") {
        ready = true;
        engine.postMessage({ type: "init", init } satisfies EngineCommand);
        if (firstSignalAt) engine.postMessage({ type: "stop" } satisfies EngineCommand);
      } else if (message.type === "done") resolveCode(message.code);
      else {
        stored++;
        engine.postMessage(applyStoreRequest(store, message) satisfies EngineCommand);
      }
    };
    engine.onerror = (event) => {
      event.preventDefault();
      console.error(`${ctx.spec.binary}: engine failed: ${event.message}`);
      resolveCode(1);
    };
  });
  engine.terminate();
  settler.stop();
  store.store?.close();
  lock?.release();
  return code;
}
