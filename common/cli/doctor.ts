/**
 * `<binary> doctor`: checks the config, the data and state directories, the server and its token,
 * and the permissions the engine will get, saying what to fix for each failure.
 *
 * @module
 */
import { join } from "node:path";
import { cleartextWarning, type Config, sourceSection } from "../config.ts";
import { type CliContext, otherDefaultDirsOf } from "./context.ts";
import { engineLaunch } from "./launch.ts";
import { errorMessage } from "../log.ts";
import { HttpSink } from "../delivery/http_sink.ts";
import { outgoingBatch } from "../delivery/outgoing.ts";
import { embeddedStorePath } from "../delivery/store_sinks.ts";
import { watchProblem } from "../watch/tree_watcher.ts";

interface Check {
  ok: boolean;
  what: string;
  fix?: string;
}

async function countFiles(dir: string, depth: number): Promise<number> {
  let n = 0;
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile) n++;
    else if (entry.isDirectory && depth > 0) {
      n += await countFiles(join(dir, entry.name), depth - 1);
    }
  }
  return n;
}

/** Whether the data folder can be watched: it is polled otherwise, so a change waits for that. */
function watchCheck(dataDir: string, config: Config): Check {
  const polled = `checked every ${config.worker.poll_interval} s (worker.poll_interval)`;
  if (!config.worker.watch) {
    return { ok: true, what: `watch: off (worker.watch: false); ${dataDir} is ${polled}` };
  }
  try {
    Deno.watchFs(dataDir, { recursive: true }).close();
    return { ok: true, what: `watch: ${dataDir} can be watched` };
  } catch (error) {
    return {
      ok: false,
      what: `watch: ${dataDir} cannot be watched: ${watchProblem(error as Error)}`,
      fix: `until then it is ${polled}: new messages arrive that much later`,
    };
  }
}

async function checkServer(ctx: CliContext, config: Config): Promise<Check> {
  const base = config.server.base_url;
  if (!base) {
    return {
      ok: true,
      what: `server: none configured; delivering into the embedded store ${
        embeddedStorePath(ctx.stateDir)
      }`,
    };
  }
  // The worker's own client sends an empty batch: what it makes of the answer is what a run would.
  const sink = new HttpSink({
    baseUrl: base,
    token: config.security.worker_token,
    timeoutMs: config.server.timeout * 1000,
    compress: false,
    userAgent: `ai-sync-doctor/${ctx.spec.name}`,
  });
  const outcome = await sink.send(
    outgoingBatch(ctx.spec.sourceType, [], `doctor_${ctx.spec.sourceType}`),
    new AbortController().signal,
  );
  const url = sink.target;
  switch (outcome.kind) {
    case "ok":
      return {
        ok: true,
        what: `server: ${url} answers and accepts the token${
          cleartextWarning(base) ? `; warning: ${cleartextWarning(base)}` : ""
        }`,
      };
    case "pause":
      return {
        ok: false,
        what: `server: ${url} ${
          outcome.status === 401 || outcome.status === 403 ? "refuses the token: " : ""
        }${outcome.reason}`,
        fix: outcome.fix,
      };
    case "retry":
      return {
        ok: false,
        what: `server: ${outcome.reason}`,
        fix: outcome.status === 0
          ? "check server.base_url (or SYNC_SERVER_URL), that the server runs, and the network"
          : "check the server's logs",
      };
    default:
      return {
        ok: false,
        what: `server: ${url} refuses an empty batch: ${outcome.reason}`,
        fix: "check the server's logs",
      };
  }
}

/**
 * Runs the checks and prints one line each; returns 0 when all pass, else 1.
 *
 * @example Run the checks on a fresh folder
 * ```ts
 * import { runDoctor } from "./doctor.ts";
 * import { parseCli } from "./context.ts";
 * import { ConfigSchema } from "../config.ts";
 * import { sourceSpec } from "../../workers/registry.ts";
 * const dir = await Deno.makeTempDir();
 * const ctx = parseCli(sourceSpec("codex"), ["--state-dir", `${dir}/state`]);
 * console.log(await runDoctor(ctx, ConfigSchema.parse({}), dir)); // 1: no rollouts there yet
 * ```
 */
export async function runDoctor(ctx: CliContext, config: Config, dataDir: string): Promise<number> {
  const checks: Check[] = [];
  checks.push({
    ok: true,
    what: ctx.configPath
      ? `config: ${ctx.configPath} is valid`
      : "config: no config file; the defaults and the environment apply",
  });
  try {
    const info = await Deno.stat(dataDir);
    if (!info.isDirectory) throw new Error("not a directory");
    const n = await countFiles(dataDir, 3);
    checks.push(
      n > 0 ? { ok: true, what: `data: ${dataDir} is readable (${n} files)` } : {
        ok: false,
        what: `data: ${dataDir} has no files yet`,
        fix: ctx.spec.dropFolder
          ? `drop your ${ctx.spec.label} (the zip as downloaded, or its files) into it`
          : `if your ${ctx.spec.label} are elsewhere, pass --${ctx.spec.sourceFlag} or set ${ctx.spec.name}.${ctx.spec.configKey}`,
      },
    );
    for (const other of otherDefaultDirsOf(ctx.spec, ctx.dataDirFlag, config, dataDir)) {
      const files = await countFiles(other, 3).catch(() => -1);
      if (files >= 0) checks.push({ ok: true, what: `data: also ${other} (${files} files)` });
    }
    checks.push(watchCheck(dataDir, config));
  } catch (error) {
    checks.push({
      ok: false,
      what: `data: ${dataDir}: ${
        error instanceof Deno.errors.NotFound ? "does not exist" : errorMessage(error)
      }`,
      fix: (ctx.spec.dropFolder
        ? `create it (mkdir -p '${dataDir}') and drop your ${ctx.spec.label} into it, or `
        : "") +
        `pass --${ctx.spec.sourceFlag} DIR or set ${ctx.spec.name}.${ctx.spec.configKey} in the config file`,
    });
  }
  try {
    await Deno.mkdir(ctx.stateDir, { recursive: true });
    const probe = await Deno.makeTempFile({ dir: ctx.stateDir, prefix: ".doctor-" });
    await Deno.remove(probe);
    checks.push({ ok: true, what: `state: ${ctx.stateDir} is writable` });
  } catch (error) {
    checks.push({
      ok: false,
      what: `state: ${ctx.stateDir} is not writable: ${errorMessage(error)}`,
      fix: "pass --state-dir DIR with a directory you own",
    });
  }
  checks.push(await checkServer(ctx, config));
  checks.push(...await ctx.spec.checks?.(sourceSection(config, ctx.spec)) ?? []);
  // The very set a run would get, log file included.
  const p = engineLaunch(ctx, config).permissions;
  const list = (v: unknown) => Array.isArray(v) && v.length > 0 ? v.join(", ") : "nothing";
  checks.push({
    ok: true,
    what: `permissions: the engine may read ${list(p.read)}; write ${list(p.write)}; ` +
      `connect to ${list(p.net)}; nothing else`,
  });
  for (const c of checks) {
    console.log(`${c.ok ? "ok  " : "FAIL"} ${c.what}${c.fix ? `\n     fix: ${c.fix}` : ""}`);
  }
  const failed = checks.filter((c) => !c.ok).length;
  console.log(failed === 0 ? "all checks passed" : `${failed} check(s) failed`);
  return failed === 0 ? 0 : 1;
}
