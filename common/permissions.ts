/**
 * The one permission table (docs/permissions.md): from each source's spec (the registry,
 * `workers/registry.ts`) come the flags of `deno run` (tests, `deno task start`), of
 * `deno compile`, and of generated service files, and the run-time set its engine is narrowed to.
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
import type { SourceSpec } from "./source_spec.ts";
import { intakeDir } from "./intake.ts";

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

/**
 * The most each thread's young generation may take (`--max-semi-space-size`, MiB). V8 sizes it
 * up to 64 MiB per semi-space under a high allocation rate, which a backfill or an export import
 * is; 8 MiB keeps the peak far lower for some more time in scavenges. Measured, same run: a
 * 200 MB Claude Code backfill 195-209 MB in 8.3-9.0 s against 352-360 MB in 7.5-8.0 s with 64;
 * a 133 MB ChatGPT export 324 MB against 401 MB.
 */
export const SEMI_SPACE_MB = 8;

/**
 * Environment a worker process is started with by `start` and by its service (Linux). glibc
 * raises its mmap threshold each time a large block is freed, up to 32 MiB; from then on the
 * batch-sized buffers a backfill allocates and frees come from its arenas, which keep the memory
 * after the work is done. A fixed threshold returns them at once: measured, a worker idle after a
 * 20 MB backfill held 129 MB without it and 98 MB with it; a 5 GB backfill peaked at 291 MB
 * without it and 245 MB with it, and took 461 s against 317 s.
 * glibc reads it when the process starts, so a process cannot set it for itself.
 */
export const PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: "131072" };

/** Environment variables the engine may read: only the `yaml` library's debug probes. */
export const ENGINE_ENV = ["LOG_TOKENS", "LOG_STREAM"];

/**
 * The flags of a worker's main thread, for `deno run` and `deno compile` alike.
 *
 * @example Flags of the Claude Code worker
 * ```ts
 * import { mainPermissionFlags } from "./permissions.ts";
 * import { sourceSpec } from "../workers/registry.ts";
 * console.log(mainPermissionFlags(sourceSpec("claude_code")).join(" "));
 * ```
 */
export function mainPermissionFlags(spec: SourceSpec): string[] {
  const env = [...COMMON_ENV, ...spec.locatorEnv, ...spec.secretEnv ?? [], ...spec.engineEnv ?? []];
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
    `--v8-flags=--max-old-space-size=${HEAP_LIMIT_MB},--max-semi-space-size=${SEMI_SPACE_MB},--expose-gc`,
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
  /** Further hosts the source may reach (`host:port`, from {@link SourceSpec.hosts}). */
  hosts?: string[];
  /** Further folders it reads (from {@link SourceSpec.extraDirs}). */
  extraDirs?: string[];
}

/**
 * The folder a source's intake fetches into, when it has one ({@link SourceSpec.downloads}).
 *
 * @example The openai worker's
 * ```ts
 * import { downloadDir } from "./permissions.ts";
 * import { sourceSpec } from "../workers/registry.ts";
 * console.log(downloadDir(sourceSpec("openai"), "/s")); // /s/openai-downloads
 * ```
 */
export function downloadDir(spec: SourceSpec, stateDir: string): string | undefined {
  return spec.downloads ? intakeDir(stateDir, spec.name) : undefined;
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
 * import { enginePermissions } from "./permissions.ts";
 * import { sourceSpec } from "../workers/registry.ts";
 * const p = enginePermissions(sourceSpec("claude_code"), {
 *   dataDir: "/home/me/.claude/projects", stateDir: "/home/me/.local/state/ai-sync",
 *   baseUrl: "http://127.0.0.1:8080",
 * });
 * console.log(p.net); // ["127.0.0.1:8080"]
 * ```
 */
export function enginePermissions(
  spec: SourceSpec,
  scope: EngineScope,
): Deno.PermissionOptionsObject {
  const read = [
    scope.dataDir,
    ...siblingPaths(spec, scope.dataDir).map((s) => s.path),
    ...scope.extraDirs ?? [],
    scope.stateDir,
  ];
  const write = [scope.stateDir];
  if (scope.configFile) read.push(scope.configFile);
  if (scope.logFile) {
    read.push(scope.logFile);
    write.push(scope.logFile);
  }
  const net: string[] = [...scope.hosts ?? []];
  if (scope.baseUrl) net.push(netHost(scope.baseUrl));
  if (scope.statusPort) net.push(`127.0.0.1:${scope.statusPort}`);
  return {
    read: withLinkTargets(read),
    write: withLinkTargets(write),
    net: net.length > 0 ? net : false,
    env: [...ENGINE_ENV, ...spec.engineEnv ?? []],
    sys: spec.sys.length > 0 ? spec.sys : false,
    run: false,
    ffi: false,
    import: false,
  };
}

/**
 * `paths`, and where those that are symbolic links lead: Deno checks a read or a write at the
 * path it resolves to, so a `~/.claude` kept on another disk behind a link, or a config file a
 * dotfiles manager links in, was refused to the engine. A path not there yet adds nothing (the
 * guarded open reads nothing through a link that leads outside the folders anyway).
 */
function withLinkTargets(paths: readonly string[]): string[] {
  const out = [...paths];
  for (const path of paths) {
    try {
      const real = Deno.realPathSync(path);
      if (!out.includes(real)) out.push(real);
    } catch {
      // Not there (yet), or not ours to resolve: the path alone.
    }
  }
  return out;
}

/**
 * The sibling paths of a worker's data directory (see {@link SourceSpec.siblings}).
 *
 * @example Codex's archived sessions
 * ```ts
 * import { siblingPaths } from "./permissions.ts";
 * import { sourceSpec } from "../workers/registry.ts";
 * siblingPaths(sourceSpec("codex"), "/home/me/.codex/sessions")[0].path ===
 *   "/home/me/.codex/archived_sessions";
 * ```
 */
export function siblingPaths(
  spec: SourceSpec,
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
 * import { denoRunArgs } from "./permissions.ts";
 * import { sourceSpec } from "../workers/registry.ts";
 * const args = denoRunArgs(sourceSpec("claude_code"), "/repo");
 * ```
 */
export function denoRunArgs(spec: SourceSpec, repoRoot: string): string[] {
  return ["run", ...mainPermissionFlags(spec), `${repoRoot}/workers/${spec.name}/main.ts`];
}

/**
 * `deno compile` arguments for a worker's binary.
 *
 * @example Build the compile command
 * ```ts
 * import { compileArgs } from "./permissions.ts";
 * import { sourceSpec } from "../workers/registry.ts";
 * console.log(compileArgs(sourceSpec("claude_code"), "/repo", "bin").join(" "));
 * ```
 */
export function compileArgs(spec: SourceSpec, repoRoot: string, outDir: string): string[] {
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
