/**
 * The one permission table (docs/permissions.md). Each worker's entry says what it is and where its data
 * lives; from it come the flags of `deno run` (tests, `deno task start`), of `deno compile`, and
 * of generated service files, and the run-time set its engine is narrowed to.
 *
 * Two layers: the binary's own flags cannot name directories chosen at run time, so the main
 * thread gets read/write/net without paths but only the environment variables it needs, no
 * subprocesses and no FFI; it validates the config and starts the engine in a Web Worker whose
 * permissions are exactly the data directory, the config file and the state directory to read,
 * the state directory to write, and the API host (plus the status port) to connect to.
 *
 * @module
 */
import { dirname, join } from "node:path";
import type { SourceType } from "./types.ts";

/** One worker's entry in the table. */
export interface WorkerSpec {
  /** Directory under `workers/` and config section name. */
  name: string;
  /** Compiled binary name. */
  binary: string;
  sourceType: SourceType;
  /** The source directory flag, without dashes. */
  sourceFlag: string;
  /** The key of the source directory in the worker's config section. */
  configKey: string;
  /** What the source files are, for messages. */
  label: string;
  /** Environment variables that locate the default data directory. */
  locatorEnv: string[];
  /** The default data directory, from those variables. */
  defaultDataDir(env: (name: string) => string | undefined): string;
  /** `sys` names a library needs inside the engine (imapflow: hostname). */
  sys: string[];
  /**
   * Paths beside the data directory (in its parent) the engine may also read: directories it
   * watches as further roots (`watch: true`), or files it consults.
   */
  siblings?: readonly { name: string; watch: boolean }[];
}

/**
 * Every worker this build has.
 *
 * @example Find a worker's binary name
 * ```ts
 * import { WORKER_SPECS } from "./permissions.ts";
 * console.log(WORKER_SPECS.map((w) => w.binary));
 * ```
 */
export const WORKER_SPECS: readonly WorkerSpec[] = [
  {
    name: "claude_code",
    binary: "claude-code-sync-worker",
    sourceType: "claude_code",
    sourceFlag: "projects-dir",
    configKey: "projects_dir",
    label: "Claude Code sessions",
    locatorEnv: ["CLAUDE_CONFIG_DIR"],
    defaultDataDir: (env) => {
      const configDir = env("CLAUDE_CONFIG_DIR");
      return configDir ? `${configDir}/projects` : `${env("HOME") ?? "."}/.claude/projects`;
    },
    sys: [],
  },
  {
    name: "codex",
    binary: "codex-sync-worker",
    sourceType: "codex",
    sourceFlag: "sessions-dir",
    configKey: "sessions_dir",
    label: "Codex rollouts",
    locatorEnv: ["CODEX_HOME"],
    defaultDataDir: (env) => {
      const home = env("CODEX_HOME");
      return home ? `${home}/sessions` : `${env("HOME") ?? "."}/.codex/sessions`;
    },
    sys: [],
    siblings: [{ name: "archived_sessions", watch: true }],
  },
  {
    name: "gemini_cli",
    binary: "gemini-cli-sync-worker",
    sourceType: "gemini_cli",
    sourceFlag: "data-dir",
    configKey: "data_dir",
    label: "Gemini CLI sessions",
    locatorEnv: [],
    defaultDataDir: (env) => `${env("HOME") ?? "."}/.gemini/tmp`,
    sys: [],
    siblings: [{ name: "projects.json", watch: false }],
  },
];

/**
 * The table entry named `name`.
 *
 * @example Look up a worker
 * ```ts
 * import { workerSpec } from "./permissions.ts";
 * workerSpec("claude_code").sourceFlag === "projects-dir";
 * ```
 */
export function workerSpec(name: string): WorkerSpec {
  const spec = WORKER_SPECS.find((w) => w.name === name);
  if (!spec) {
    throw new Error(
      `unknown worker ${name}: expected one of ${WORKER_SPECS.map((w) => w.name).join(", ")}`,
    );
  }
  return spec;
}

/** Variables every worker's main thread reads (homes, the two overrides, `yaml`'s debug probes). */
const COMMON_ENV = [
  "HOME",
  "XDG_STATE_HOME",
  "XDG_CONFIG_HOME",
  "SYNC_WORKER_TOKEN",
  "SYNC_SERVER_URL",
  "LOG_TOKENS",
  "LOG_STREAM",
];

/**
 * The V8 heap budget of each of a worker's two threads, in MiB. Without it V8 collects large
 * strings (batch bodies) lazily and the resident size of a backfill grows well past 300 MB; with
 * it the peak stays under that (measured: 284 MB for 200 MB, 293 MB for 1 GB of sessions). A
 * line needs several times its size while it is parsed and sent, so `worker.max_line_bytes` is
 * capped at 16 MiB to stay inside the budget in the worst case (mostly ASCII with one character
 * outside Latin-1, which V8 stores two bytes per character: 16 MiB fits, 24 MiB does not).
 */
export const HEAP_LIMIT_MB = 192;

/** Environment variables the engine may read: only the `yaml` library's debug probes. */
export const ENGINE_ENV = ["LOG_TOKENS", "LOG_STREAM"];

/**
 * The flags of a worker's main thread, for `deno run` and `deno compile` alike.
 *
 * @example Flags of the Claude Code worker
 * ```ts
 * import { mainPermissionFlags, workerSpec } from "./permissions.ts";
 * console.log(mainPermissionFlags(workerSpec("claude_code")).join(" "));
 * ```
 */
export function mainPermissionFlags(spec: WorkerSpec): string[] {
  const env = [...COMMON_ENV, ...spec.locatorEnv];
  return [
    "--allow-read",
    "--allow-write",
    "--allow-net",
    `--allow-env=${env.join(",")}`,
    "--allow-sys=hostname",
    "--deny-run",
    "--deny-ffi",
    "--unstable-worker-options",
    "--no-prompt",
    `--v8-flags=--max-old-space-size=${HEAP_LIMIT_MB}`,
  ];
}

/** The paths and host an engine is confined to. */
export interface EngineScope {
  dataDir: string;
  stateDir: string;
  /** The config file, when one is used. */
  configFile?: string;
  /** A log file outside the state directory, when configured. */
  logFile?: string;
  /** `server.base_url`, when delivering over HTTP. */
  baseUrl?: string;
  /** `status.port`, when the status endpoint is on. */
  statusPort?: number;
}

/**
 * `host:port` of a URL, as Deno's net permission names it.
 *
 * @example Default ports are explicit
 * ```ts
 * import { netHost } from "./permissions.ts";
 * netHost("https://sync.example.com/x") === "sync.example.com:443";
 * ```
 */
export function netHost(baseUrl: string): string {
  const url = new URL(baseUrl);
  return `${url.hostname}:${url.port || (url.protocol === "https:" ? "443" : "80")}`;
}

/**
 * The permissions of a worker's engine (a Web Worker).
 *
 * @example Narrow to one projects directory, delivering to a local server
 * ```ts
 * import { enginePermissions, workerSpec } from "./permissions.ts";
 * const p = enginePermissions(workerSpec("claude_code"), {
 *   dataDir: "/home/me/.claude/projects", stateDir: "/home/me/.local/state/ai-sync",
 *   baseUrl: "http://127.0.0.1:8080",
 * });
 * console.log(p.net); // ["127.0.0.1:8080"]
 * ```
 */
export function enginePermissions(
  spec: WorkerSpec,
  scope: EngineScope,
): Deno.PermissionOptionsObject {
  const read = [
    scope.dataDir,
    ...siblingPaths(spec, scope.dataDir).map((s) => s.path),
    scope.stateDir,
  ];
  const write = [scope.stateDir];
  if (scope.configFile) read.push(scope.configFile);
  if (scope.logFile) {
    read.push(scope.logFile);
    write.push(scope.logFile);
  }
  const net: string[] = [];
  if (scope.baseUrl) net.push(netHost(scope.baseUrl));
  if (scope.statusPort) net.push(`127.0.0.1:${scope.statusPort}`);
  return {
    read,
    write,
    net: net.length > 0 ? net : false,
    env: ENGINE_ENV,
    sys: spec.sys.length > 0 ? spec.sys : false,
    run: false,
    ffi: false,
    import: false,
  };
}

/**
 * The sibling paths of a worker's data directory (see {@link WorkerSpec.siblings}).
 *
 * @example Codex's archived sessions
 * ```ts
 * import { siblingPaths, workerSpec } from "./permissions.ts";
 * siblingPaths(workerSpec("codex"), "/home/me/.codex/sessions")[0].path ===
 *   "/home/me/.codex/archived_sessions";
 * ```
 */
export function siblingPaths(
  spec: WorkerSpec,
  dataDir: string,
): { path: string; watch: boolean }[] {
  const parent = dirname(dataDir);
  return (spec.siblings ?? []).map((s) => ({ path: join(parent, s.name), watch: s.watch }));
}

/**
 * `deno run` arguments that start a worker exactly as its binary would run (tests, `start`).
 *
 * @example Build the run command
 * ```ts
 * import { denoRunArgs, workerSpec } from "./permissions.ts";
 * const args = denoRunArgs(workerSpec("claude_code"), "/repo");
 * ```
 */
export function denoRunArgs(spec: WorkerSpec, repoRoot: string): string[] {
  return ["run", ...mainPermissionFlags(spec), `${repoRoot}/workers/${spec.name}/main.ts`];
}

/**
 * `deno compile` arguments for a worker's binary.
 *
 * @example Build the compile command
 * ```ts
 * import { compileArgs, workerSpec } from "./permissions.ts";
 * console.log(compileArgs(workerSpec("claude_code"), "/repo", "bin").join(" "));
 * ```
 */
export function compileArgs(spec: WorkerSpec, repoRoot: string, outDir: string): string[] {
  return [
    "compile",
    ...mainPermissionFlags(spec),
    "--include",
    `${repoRoot}/workers/${spec.name}/engine.ts`,
    "--output",
    `${outDir}/${spec.binary}`,
    `${repoRoot}/workers/${spec.name}/main.ts`,
  ];
}

/** `deno compile` arguments for the reference server. */
export function serverCompileArgs(repoRoot: string, outDir: string): string[] {
  return [
    "compile",
    "--allow-read",
    "--allow-write",
    "--allow-net",
    "--allow-env=SYNC_SERVER_TOKEN",
    "--deny-run",
    "--deny-ffi",
    "--no-prompt",
    "--output",
    `${outDir}/sync-server`,
    `${repoRoot}/server/main.ts`,
  ];
}
