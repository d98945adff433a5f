/**
 * A worker's command line and what it resolves to: the subcommand, the config file, the state
 * and data directories ({@link CliContext}).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { type Config, type ConfigEnv, sourceSection } from "../config.ts";
import { errorMessage, LOG_LEVELS, type LogLevel } from "../log.ts";
import type { SourceSpec } from "../source_spec.ts";
import { EXPORT_FLAGS, type ExportFlags } from "./export.ts";

const SUBCOMMANDS = [
  "run",
  "status",
  "doctor",
  "install-service",
  "uninstall-service",
  "dead-letters",
  "export",
  "resync",
] as const;
/** A worker binary's subcommands. */
export type Subcommand = typeof SUBCOMMANDS[number];

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
  /** `export`'s flags, as given. */
  export: ExportFlags;
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
 * import { usage } from "./context.ts";
 * import { sourceSpec } from "../../workers/registry.ts";
 * console.log(usage(sourceSpec("claude_code")));
 * ```
 */
export function usage(spec: SourceSpec): string {
  return `usage: ${spec.binary} [run] [options]
       ${spec.binary} status [--json] | doctor | install-service [--print] | uninstall-service
       ${spec.binary} dead-letters [list | show ID | replay ID | replay --all]
       ${spec.binary} export [--out DIR] [--format md|jsonl] [--q WORDS] [--project P]
                       [--from DATE] [--to DATE]
       ${spec.binary} resync         (the next run sends everything again: after a restore)
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

export writes this source's conversations from the embedded store: Markdown files, one per
conversation with front matter (default), or JSON Lines of the canonical schema, into --out
(default ./ai-sync-export); --q keeps those matching a search, --project, --from, --to filter.

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
 * ```ts
 * import { defaultStateDir } from "./context.ts";
 * console.log(defaultStateDir()); // ~/.local/state/ai-sync on Linux
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
 * import { parseCli } from "./context.ts";
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
        ...EXPORT_FLAGS,
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
  const dataDirFlag = (values as Record<string, unknown>)[spec.sourceFlag] as string | undefined;
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
    export: Object.fromEntries(
      Object.keys(EXPORT_FLAGS).flatMap((k) => {
        const v = values[k as keyof typeof values];
        return typeof v === "string" ? [[k, v]] : [];
      }),
    ),
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
 * import { dataDirOf } from "./context.ts";
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
  const defaults = defaultDirsOf(spec);
  return defaults.find(isDirectory) ?? defaults[0];
}

/** A source's default folders, its `defaultDataDir` first. */
function defaultDirsOf(spec: SourceSpec): string[] {
  const env = (name: string) => Deno.env.get(name);
  return [spec.defaultDataDir(env), ...spec.otherDefaultDirs?.(env) ?? []].map((d) => resolve(d));
}

/**
 * Whether `path` is a directory (following links); false when it is not there.
 *
 * @example Not there
 * ```ts
 * import { isDirectory } from "./context.ts";
 * console.log(isDirectory("/nowhere/at/all")); // false
 * ```
 */
export function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

/**
 * The source's other default folders besides `dataDir` ({@link SourceSpec.otherDefaultDirs}),
 * read as further roots when no flag or config key named the data folder; none otherwise.
 *
 * @example Named on the command line: none
 * ```ts
 * import { otherDefaultDirsOf } from "./context.ts";
 * import { sourceSpec } from "../../workers/registry.ts";
 * import { ConfigSchema } from "../config.ts";
 * const config = ConfigSchema.parse({});
 * console.log(otherDefaultDirsOf(sourceSpec("claude_code"), "/data", config, "/data")); // []
 * ```
 */
export function otherDefaultDirsOf(
  spec: SourceSpec,
  flag: string | undefined,
  config: Config,
  dataDir: string,
): string[] {
  const configured = sourceSection(config, spec)[spec.configKey];
  if (flag || (typeof configured === "string" && configured)) return [];
  return defaultDirsOf(spec).filter((dir) => dir !== dataDir);
}

/**
 * The further folders a source's config section lists (`extra_dirs`), `~/` expanded and a
 * relative path taken relative to the config file.
 *
 * @example None by default
 * ```ts
 * import { extraDirsOf } from "./context.ts";
 * import { sourceSpec } from "../../workers/registry.ts";
 * import { ConfigSchema } from "../config.ts";
 * console.log(extraDirsOf(sourceSpec("openai"), ConfigSchema.parse({}), "")); // []
 * ```
 */
export function extraDirsOf(spec: SourceSpec, config: Config, configPath: string): string[] {
  const home = Deno.env.get("HOME") ?? ".";
  return (spec.extraDirs?.(sourceSection(config, spec)) ?? []).map((dir) =>
    dir === "~" || dir.startsWith("~/")
      ? join(home, dir.slice(1))
      : isAbsolute(dir)
      ? dir
      : resolve(dirname(configPath || "."), dir)
  );
}

/**
 * The data directory of a worker's run ({@link dataDirOf} for its command line).
 *
 * @example Resolve the data directory
 * ```ts
 * import { parseCli, resolveDataDir } from "./context.ts";
 * import { ConfigSchema } from "../config.ts";
 * import { sourceSpec } from "../../workers/registry.ts";
 * const ctx = parseCli(sourceSpec("codex"), ["--sessions-dir", "/data/codex"]);
 * console.log(resolveDataDir(ctx, ConfigSchema.parse({}))); // /data/codex
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
