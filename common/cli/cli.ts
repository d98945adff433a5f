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
import { type Config, ConfigError, loadConfig } from "../config.ts";
import { errorMessage } from "../log.ts";
import { mainPermissionFlags } from "../permissions.ts";
import type { SourceSpec } from "../source_spec.ts";
import { DeadLetterUsageError, runDeadLetters } from "../delivery/dead_letters.ts";
import { fetchStatus, formatStatus } from "../status.ts";
import { formatStoredStatus, storedStatus } from "./stored_status.ts";
import { type CliContext, parseCli, resolveDataDir, usage } from "./context.ts";
import { VERSION } from "../version.ts";
import { readStatusToken, runWorker, statusTokenPath } from "./launch.ts";
import { runDoctor } from "./doctor.ts";
import { exportConversations, exportOptionsOf } from "./export.ts";
import { installService, uninstallService } from "./service.ts";
import { embeddedStorePath } from "../delivery/store_sinks.ts";
import { resync } from "./resync.ts";

export { type CliContext, parseCli, usage, UsageError } from "./context.ts";
export { VERSION } from "../version.ts";

/**
 * A worker binary's `main`: parses the command line and runs the subcommand, exiting with its
 * code. `engineUrl` is the worker's engine module (a static `new URL` so `deno compile` embeds it).
 *
 * @example A worker's main module
 * ```ts
 * import { runCli } from "./cli.ts";
 * import { sourceSpec } from "../../workers/registry.ts";
 * // What `workers/claude_code/main.ts` does (defined here, not run: it exits the process).
 * async function main(): Promise<never> {
 *   return await runCli(
 *     sourceSpec("claude_code"),
 *     Deno.args,
 *     new URL("../../workers/claude_code/engine.ts", import.meta.url),
 *   );
 * }
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
    case "export":
      return Deno.exit(await runExport(ctx));
    case "resync":
      return Deno.exit(resync(ctx));
    default:
      return Deno.exit(await runWorker(ctx, config, engineUrl));
  }
}

/** `export`: this source's conversations from the embedded store, as files. */
async function runExport(ctx: CliContext): Promise<number> {
  const storePath = embeddedStorePath(ctx.stateDir);
  try {
    await Deno.stat(storePath);
  } catch {
    console.error(`${ctx.spec.binary}: export: no embedded store at ${storePath} (--state-dir?)`);
    return 1;
  }
  try {
    const options = exportOptionsOf(ctx.export, storePath, ctx.spec.sourceType);
    const { count, path } = await exportConversations(options);
    console.log(`exported ${count} conversation(s) to ${path}`);
    return 0;
  } catch (error) {
    console.error(`${ctx.spec.binary}: export: ${errorMessage(error)}`);
    return error instanceof Error && error.message.startsWith("--") ? 2 : 1;
  }
}

async function status(ctx: CliContext, config: Config): Promise<number> {
  const port = ctx.statusPort ?? config.status.port;
  if (!port) {
    // No port to ask: what the state database says, read beside the worker.
    try {
      const stored = storedStatus(ctx.stateDir, ctx.spec.name);
      console.log(ctx.json ? JSON.stringify(stored, null, 2) : formatStoredStatus(stored));
      return 0;
    } catch (error) {
      console.error(`${ctx.spec.binary}: ${errorMessage(error)}`);
      return 1;
    }
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
