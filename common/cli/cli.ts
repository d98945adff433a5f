/**
 * The command line shared by every worker binary:
 *
 * ```
 * <binary> [run] [--config FILE] [--state-dir DIR] [--<source-flag> DIR] [--once] [--dry-run]
 *          [--log-level LEVEL] [--status-port N]
 * <binary> status [--json] | doctor | install-service [--print] | uninstall-service | --version | --help
 * <binary> dead-letters [list | show ID | replay ID | replay --all]
 * ```
 *
 * Exit codes: 0 success, 1 runtime failure, 2 usage or config error. The main thread only reads
 * the config and starts the engine in a Web Worker narrowed to its paths and host.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { dirname, isAbsolute, join, resolve } from "node:path";
import denoJson from "../../deno.json" with { type: "json" };
import { type Config, type ConfigEnv, ConfigError, loadConfig, sourceSection } from "../config.ts";
import { errorMessage, LOG_LEVELS, type LogLevel } from "../log.ts";
import { enginePermissions, mainPermissionFlags, netHost, siblingPaths } from "../permissions.ts";
import type { SourceSpec } from "../source_spec.ts";
import { DeadLetterUsageError, runDeadLetters } from "../delivery/dead_letters.ts";
import { StateLock, StateLockedError } from "../state/lock.ts";
import { StateDatabaseError } from "../state/state.ts";
import { fetchStatus, formatStatus } from "../status.ts";
import type { EngineCommand, EngineInit, EngineReply } from "../engine.ts";
import { runDoctor } from "./doctor.ts";
import { installService, uninstallService } from "./service.ts";
import { isInside } from "../watch/walk.ts";
import { applyStoreRequest } from "../delivery/sinks.ts";
import { ConversationStore } from "../../store/store.ts";

/** The version every binary reports. */
export const VERSION: string = denoJson.version;

/** Signals closer together than this count as one (see `run`). */
const SIGNAL_REPEAT_MS = 250;

const SUBCOMMANDS = [
  "run",
  "status",
  "doctor",
  "install-service",
  "uninstall-service",
  "dead-letters",
] as const;
type Subcommand = typeof SUBCOMMANDS[number];

/** A command line that cannot be run; the binary prints it with the usage and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Parsed command line plus what it resolves to. */
export interface CliContext {
  spec: SourceSpec;
  subcommand: Subcommand;
  configPath: string;
  stateDir: string;
  dataDirFlag?: string;
  once: boolean;
  dryRun: boolean;
  logLevel?: LogLevel;
  statusPort?: number;
  json: boolean;
  print: boolean;
  /** Operands after the subcommand (`dead-letters replay 3`). */
  operands: string[];
  /** `--all` (`dead-letters replay --all`). */
  all: boolean;
  /** `--report json`: progress and the summary as JSON lines on stdout (`deno task start`). */
  report: "json" | "";
  /** `--log-format`: overrides `log.format`. */
  logFormat?: "text" | "json";
  /** The command line as given, for service files. */
  args: string[];
  env: ConfigEnv;
}

/**
 * The usage text of a worker binary.
 *
 * @example Print usage
 * ```ts
 * import { usage } from "./cli.ts";
 * import { sourceSpec } from "../../workers/registry.ts";
 * console.log(usage(sourceSpec("claude_code")));
 * ```
 */
export function usage(spec: SourceSpec): string {
  return `usage: ${spec.binary} [run] [options]
       ${spec.binary} status [--json] | doctor | install-service [--print] | uninstall-service
       ${spec.binary} dead-letters [list | show ID | replay ID | replay --all]
       ${spec.binary} --version | --help

Syncs ${spec.label} to the conversation server (or the embedded store when no server is set).

options:
  --config FILE        config file (default: ~/.config/ai-sync/config.yaml when present)
  --state-dir DIR      state directory (default: $XDG_STATE_HOME/ai-sync or ~/.local/state/ai-sync;
                       ~/Library/Application Support/ai-sync on macOS)
  --${spec.sourceFlag} DIR${
    " ".repeat(Math.max(1, 15 - spec.sourceFlag.length))
  }where the ${spec.label} are (config: ${spec.name}.${spec.configKey})
  --once               one full check, wait for delivery, print a summary (a table on a
                       terminal, else one JSON line) and exit
  --json               with --once: the summary as a JSON line even on a terminal
  --dry-run            print the batches that would be sent as JSON lines; send and record nothing
  --log-level LEVEL    debug, info, warn or error (config: log.level)
  --log-format FORMAT  text or json (config: log.format; default: text on a terminal)
  --status-port N      serve /healthz, /status, /metrics on 127.0.0.1:N (config: status.port)
  --report json        progress and the summary as JSON lines on stdout (what deno task start uses)

environment: SYNC_WORKER_TOKEN overrides security.worker_token, SYNC_SERVER_URL server.base_url.
exit codes:
  0  everything deliverable was delivered; malformed or over-long lines are skipped, counted
     and named on stderr, and do not fail a run
  1  delivery failed (the server is unreachable, refuses the token or the data; with --once
     a pause is a failure), the state database cannot be written, or data was lost
  2  usage or configuration error (the message names the flag, file or key)`;
}

function home(): string {
  return Deno.env.get("HOME") ?? ".";
}

/**
 * The default state directory of this platform.
 *
 * @example Where state goes by default
 * ```ts ignore
 * console.log(defaultStateDir());
 * ```
 */
export function defaultStateDir(): string {
  if (Deno.build.os === "darwin") return `${home()}/Library/Application Support/ai-sync`;
  return `${Deno.env.get("XDG_STATE_HOME") || `${home()}/.local/state`}/ai-sync`;
}

function defaultConfigPath(): string {
  if (Deno.build.os === "darwin") {
    return `${home()}/Library/Application Support/ai-sync/config.yaml`;
  }
  return `${Deno.env.get("XDG_CONFIG_HOME") || `${home()}/.config`}/ai-sync/config.yaml`;
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Parses a worker's command line; throws {@link UsageError}.
 *
 * @example Parse a run
 * ```ts
 * import { parseCli } from "./cli.ts";
 * import { sourceSpec } from "../../workers/registry.ts";
 * const ctx = parseCli(sourceSpec("claude_code"), ["--projects-dir", "/tmp/p", "--once"]);
 * console.log(ctx.subcommand, ctx.once); // run true
 * ```
 */
export function parseCli(
  spec: SourceSpec,
  args: string[],
): CliContext & { help: boolean; version: boolean } {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      options: {
        config: { type: "string" },
        "state-dir": { type: "string" },
        [spec.sourceFlag]: { type: "string" },
        once: { type: "boolean", default: false },
        "dry-run": { type: "boolean", default: false },
        "log-level": { type: "string" },
        "log-format": { type: "string" },
        "status-port": { type: "string" },
        report: { type: "string" },
        json: { type: "boolean", default: false },
        print: { type: "boolean", default: false },
        all: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", short: "V", default: false },
      },
    });
  } catch (error) {
    throw new UsageError(errorMessage(error));
  }
  const { values, positionals } = parsed;
  const subcommand = (positionals[0] ?? "run") as Subcommand;
  if (!SUBCOMMANDS.includes(subcommand)) {
    throw new UsageError(
      `unknown command ${JSON.stringify(positionals[0])}: expected one of ${
        SUBCOMMANDS.join(", ")
      }`,
    );
  }
  if (positionals.length > 1 && subcommand !== "dead-letters") {
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}`);
  }
  const logLevel = values["log-level"] as string | undefined;
  if (logLevel !== undefined && !LOG_LEVELS.includes(logLevel as LogLevel)) {
    throw new UsageError(
      `--log-level: expected one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(logLevel)}`,
    );
  }
  let statusPort: number | undefined;
  if (values["status-port"] !== undefined) {
    statusPort = Number(values["status-port"]);
    if (!Number.isInteger(statusPort) || statusPort < 1 || statusPort > 65535) {
      throw new UsageError(
        `--status-port: expected a port from 1 to 65535, got ${
          JSON.stringify(values["status-port"])
        }`,
      );
    }
  }
  if (values.once && values["dry-run"]) {
    throw new UsageError("--once and --dry-run exclude each other");
  }
  const logFormat = values["log-format"] as string | undefined;
  if (logFormat !== undefined && logFormat !== "text" && logFormat !== "json") {
    throw new UsageError(`--log-format: expected text or json, got ${JSON.stringify(logFormat)}`);
  }
  const report = values.report as string | undefined;
  if (report !== undefined && report !== "json") {
    throw new UsageError(`--report: expected json, got ${JSON.stringify(report)}`);
  }
  const configPath = configPathOf(values.config as string | undefined);
  const dataDirFlag = values[spec.sourceFlag] as string | undefined;
  return {
    spec,
    subcommand,
    configPath,
    stateDir: resolve((values["state-dir"] as string | undefined) ?? defaultStateDir()),
    dataDirFlag: dataDirFlag === undefined ? undefined : resolve(dataDirFlag),
    once: Boolean(values.once),
    dryRun: Boolean(values["dry-run"]),
    logLevel: logLevel as LogLevel | undefined,
    statusPort,
    json: Boolean(values.json),
    print: Boolean(values.print),
    operands: positionals.slice(1),
    all: Boolean(values.all),
    report: report === "json" ? "json" : "",
    logFormat: logFormat as "text" | "json" | undefined,
    help: Boolean(values.help),
    version: Boolean(values.version),
    args,
    env: {
      SYNC_WORKER_TOKEN: Deno.env.get("SYNC_WORKER_TOKEN"),
      SYNC_SERVER_URL: Deno.env.get("SYNC_SERVER_URL"),
    },
  };
}

/**
 * The data directory: the flag, else the config key (a relative path is relative to the config
 * file), else the source's default.
 *
 * @example The default of Claude Code
 * ```ts
 * import { dataDirOf } from "./cli.ts";
 * import { sourceSpec } from "../../workers/registry.ts";
 * import { ConfigSchema } from "../config.ts";
 * console.log(dataDirOf(sourceSpec("claude_code"), undefined, ConfigSchema.parse({}), ""));
 * ```
 */
export function dataDirOf(
  spec: SourceSpec,
  flag: string | undefined,
  config: Config,
  configPath: string,
): string {
  if (flag) return resolve(flag);
  const configured = sourceSection(config, spec)[spec.configKey];
  const fromConfig = typeof configured === "string" ? configured : "";
  if (fromConfig) {
    return isAbsolute(fromConfig) ? fromConfig : resolve(dirname(configPath || "."), fromConfig);
  }
  return resolve(spec.defaultDataDir((name) => Deno.env.get(name)));
}

/**
 * The data directory of a worker's run ({@link dataDirOf} for its command line).
 *
 * @example Resolve the data directory
 * ```ts ignore
 * const dir = resolveDataDir(ctx, config);
 * ```
 */
export function resolveDataDir(ctx: CliContext, config: Config): string {
  return dataDirOf(ctx.spec, ctx.dataDirFlag, config, ctx.configPath);
}

/** The config file of a command line: the flag (which must exist), else the default if present. */
export function configPathOf(flag: string | undefined): string {
  if (flag !== undefined) return resolve(flag);
  return exists(defaultConfigPath()) ? defaultConfigPath() : "";
}

/**
 * A worker binary's `main`: parses the command line and runs the subcommand, exiting with its
 * code. `engineUrl` is the worker's engine module (a static `new URL` so `deno compile` embeds it).
 *
 * @example A worker's main module
 * ```ts ignore
 * await runCli(sourceSpec("claude_code"), Deno.args, new URL("./engine.ts", import.meta.url));
 * ```
 */
export async function runCli(spec: SourceSpec, args: string[], engineUrl: URL): Promise<never> {
  try {
    return await runCommand(spec, args, engineUrl);
  } catch (error) {
    if (
      !(error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied)
    ) {
      throw error;
    }
    console.error(
      `${spec.binary}: missing permission: ${errorMessage(error)}\n` +
        `run the compiled binary, or deno run with the worker's flags: ` +
        `deno run ${mainPermissionFlags(spec).join(" ")} workers/${spec.name}/main.ts …`,
    );
    return Deno.exit(2);
  }
}

async function runCommand(spec: SourceSpec, args: string[], engineUrl: URL): Promise<never> {
  let ctx;
  try {
    ctx = parseCli(spec, args);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      throw error;
    }
    console.error(`${spec.binary}: ${errorMessage(error)}\n\n${usage(spec)}`);
    Deno.exit(2);
  }
  if (ctx.help) {
    console.log(usage(spec));
    Deno.exit(0);
  }
  if (ctx.version) {
    console.log(`${spec.binary} ${VERSION}`);
    Deno.exit(0);
  }
  let config: Config;
  try {
    config = await loadConfig(ctx.configPath || undefined, ctx.env);
  } catch (error) {
    console.error(`${spec.binary}: ${errorMessage(error)}`);
    Deno.exit(error instanceof ConfigError ? 2 : 1);
  }
  switch (ctx.subcommand) {
    case "status":
      return Deno.exit(await status(ctx, config));
    case "doctor":
      return Deno.exit(await runDoctor(ctx, config, resolveDataDir(ctx, config)));
    case "install-service":
      return Deno.exit(await installService(ctx, engineUrl));
    case "uninstall-service":
      return Deno.exit(await uninstallService(ctx));
    case "dead-letters":
      try {
        return Deno.exit(
          await runDeadLetters({
            worker: spec.name,
            sourceType: spec.sourceType,
            stateDir: ctx.stateDir,
            operands: ctx.operands,
            all: ctx.all,
            version: VERSION,
          }, config),
        );
      } catch (error) {
        if (!(error instanceof DeadLetterUsageError)) throw error;
        console.error(`${spec.binary}: dead-letters: ${error.message}`);
        return Deno.exit(2);
      }
    default:
      return Deno.exit(await run(ctx, config, engineUrl));
  }
}

async function status(ctx: CliContext, config: Config): Promise<number> {
  const port = ctx.statusPort ?? config.status.port;
  if (!port) {
    console.error(
      `${ctx.spec.binary}: status.port is not set; set it in the config file or pass --status-port`,
    );
    return 2;
  }
  const token = config.status.token || readStatusToken(ctx);
  if (!token) {
    console.error(
      `${ctx.spec.binary}: no status token: the worker writes one to ${
        statusTokenPath(ctx)
      } when it starts with a status port (or set status.token)`,
    );
    return 1;
  }
  try {
    const snapshot = await fetchStatus(port, token);
    console.log(ctx.json ? JSON.stringify(snapshot, null, 2) : formatStatus(snapshot));
    return snapshot.paused_reason ? 1 : 0;
  } catch (error) {
    console.error(`${ctx.spec.binary}: ${errorMessage(error)}`);
    return 1;
  }
}

/** Where a worker keeps the status token it made up (readable by its user only). */
function statusTokenPath(ctx: CliContext): string {
  return join(ctx.stateDir, `${ctx.spec.name}.status-token`);
}

function readStatusToken(ctx: CliContext): string {
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
 * ```ts ignore
 * const { permissions } = engineLaunch(ctx, config);
 * ```
 */
export function engineLaunch(
  ctx: CliContext,
  config: Config,
  statusToken = "",
): { init: EngineInit; permissions: Deno.PermissionOptionsObject } {
  const dataDir = resolveDataDir(ctx, config);
  const siblings = siblingPaths(ctx.spec, dataDir);
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
  });
  const probeHost = baseUrl && netHost(baseUrl) === "192.0.2.1:9" ? "192.0.2.2:9" : "192.0.2.1:9";
  const init: EngineInit = {
    configPath: ctx.configPath,
    env: ctx.env,
    dataDir,
    extraRoots: siblings.filter((s) => s.watch).map((s) => s.path),
    readRoots: [dataDir, ...siblings.map((s) => s.path)],
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

async function run(ctx: CliContext, config: Config, engineUrl: URL): Promise<number> {
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
  let store: ConversationStore | undefined;
  const code = await new Promise<number>((resolveCode) => {
    engine.onmessage = async (event: MessageEvent<EngineReply>) => {
      const message = event.data;
      if (message.type === "ready") {
        ready = true;
        engine.postMessage({ type: "init", init } satisfies EngineCommand);
        if (firstSignalAt) engine.postMessage({ type: "stop" } satisfies EngineCommand);
      } else if (message.type === "done") resolveCode(message.code);
      else {
        store ??= new ConversationStore(join(ctx.stateDir, "conversations.db"));
        engine.postMessage(await applyStoreRequest(store, message) satisfies EngineCommand);
      }
    };
    engine.onerror = (event) => {
      event.preventDefault();
      console.error(`${ctx.spec.binary}: engine failed: ${event.message}`);
      resolveCode(1);
    };
  });
  engine.terminate();
  store?.close();
  lock?.release();
  return code;
}
