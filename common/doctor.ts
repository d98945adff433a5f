/**
 * `<binary> doctor`: checks the config, the data and state directories, the server and its token,
 * and the permissions the engine will get, saying what to fix for each failure.
 *
 * @module
 */
import { join } from "node:path";
import type { Config } from "./config.ts";
import type { CliContext } from "./cli.ts";
import { errorMessage } from "./log.ts";
import { enginePermissions } from "./permissions.ts";

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

async function checkServer(ctx: CliContext, config: Config): Promise<Check> {
  const base = config.server.base_url;
  if (!base) {
    return {
      ok: true,
      what: `server: none configured; delivering into the embedded store ${
        join(ctx.stateDir, "conversations.db")
      }`,
    };
  }
  const url = new URL("/internal/v1/sync/batch", base).href;
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: {
        authorization: `Bearer ${config.security.worker_token}`,
        "content-type": "application/json",
        "idempotency-key": `doctor-${crypto.randomUUID()}`,
      },
      body: JSON.stringify({ source_type: ctx.spec.sourceType, conversations: [] }),
      signal: AbortSignal.timeout(config.server.timeout * 1000),
    });
    await response.body?.cancel();
    if (response.ok) return { ok: true, what: `server: ${url} answers and accepts the token` };
    if (response.status === 401 || response.status === 403) {
      return {
        ok: false,
        what: `server: ${url} refuses the token (HTTP ${response.status})`,
        fix:
          "set security.worker_token in the config file or SYNC_WORKER_TOKEN to the server's worker token",
      };
    }
    if (response.status === 404) {
      return {
        ok: false,
        what: `server: ${url} has no batch endpoint (HTTP 404)`,
        fix: "check server.base_url (scheme, host, port, no path)",
      };
    }
    return {
      ok: false,
      what: `server: ${url} answered HTTP ${response.status}`,
      fix: "check the server's logs",
    };
  } catch (error) {
    return {
      ok: false,
      what: `server: cannot reach ${url}: ${errorMessage(error)}`,
      fix: "check server.base_url (or SYNC_SERVER_URL), that the server runs, and the network",
    };
  }
}

/**
 * Runs the checks and prints one line each; returns 0 when all pass, else 1.
 *
 * @example Run the checks
 * ```ts ignore
 * const code = await runDoctor(ctx, config, dataDir);
 * ```
 */
export async function runDoctor(ctx: CliContext, config: Config, dataDir: string): Promise<number> {
  const checks: Check[] = [];
  checks.push({
    ok: true,
    what: `config: ${ctx.configPath || "no file (defaults and environment)"} is valid`,
  });
  try {
    const info = await Deno.stat(dataDir);
    if (!info.isDirectory) throw new Error("not a directory");
    const n = await countFiles(dataDir, 3);
    checks.push(
      n > 0 ? { ok: true, what: `data: ${dataDir} is readable (${n} files)` } : {
        ok: false,
        what: `data: ${dataDir} has no files yet`,
        fix:
          `if your ${ctx.spec.label} are elsewhere, pass --${ctx.spec.sourceFlag} or set ${ctx.spec.name}.${ctx.spec.configKey}`,
      },
    );
  } catch (error) {
    checks.push({
      ok: false,
      what: `data: ${dataDir}: ${
        error instanceof Deno.errors.NotFound ? "does not exist" : errorMessage(error)
      }`,
      fix:
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
  const p = enginePermissions(ctx.spec, {
    dataDir,
    stateDir: ctx.stateDir,
    configFile: ctx.configPath || undefined,
    baseUrl: config.server.base_url || undefined,
    statusPort: (ctx.statusPort ?? config.status.port) || undefined,
  });
  checks.push({
    ok: true,
    what:
      `permissions: the engine may read ${JSON.stringify(p.read)}, write ${
        JSON.stringify(p.write)
      }, ` +
      `connect to ${JSON.stringify(p.net)}; nothing else`,
  });
  for (const c of checks) {
    console.log(`${c.ok ? "ok  " : "FAIL"} ${c.what}${c.fix ? `\n     fix: ${c.fix}` : ""}`);
  }
  const failed = checks.filter((c) => !c.ok).length;
  console.log(failed === 0 ? "all checks passed" : `${failed} check(s) failed`);
  return failed === 0 ? 0 : 1;
}
