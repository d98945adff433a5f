/**
 * `deno task start`: syncs every source detected on this machine, each by its own worker
 * process started exactly as its binary runs (the permission table's flags), into the embedded
 * store of the shared state directory (or the configured server), and keeps watching.
 *
 * ```
 * deno task start [--config FILE] [--state-dir DIR] [--projects-dir DIR] [--once] ...
 * ```
 *
 * Flags are passed to every worker; a source flag (`--projects-dir`, ...) also counts as
 * detecting that source. With nothing found, it says where it looked and how to point elsewhere.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { denoRunArgs, WORKER_SPECS, type WorkerSpec } from "../common/permissions.ts";
import { defaultConfigFile } from "../common/cli.ts";
import { loadConfig } from "../common/config.ts";

const repo = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const env = (name: string) => Deno.env.get(name);

const sourceFlags = Object.fromEntries(
  WORKER_SPECS.map((s) => [s.sourceFlag, { type: "string" as const }]),
);
let values: Record<string, string | boolean | undefined>;
try {
  ({ values } = parseArgs({
    args: Deno.args,
    options: {
      ...sourceFlags,
      config: { type: "string" },
      "state-dir": { type: "string" },
      once: { type: "boolean" },
      "dry-run": { type: "boolean" },
      "log-level": { type: "string" },
    },
  }));
} catch (error) {
  console.error(`start: ${(error as Error).message}`);
  Deno.exit(2);
}

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

const common: string[] = [];
for (const key of ["config", "state-dir", "log-level"]) {
  if (typeof values[key] === "string") common.push(`--${key}`, values[key] as string);
}
if (values.once) common.push("--once");
if (values["dry-run"]) common.push("--dry-run");

let sections: Record<string, Record<string, unknown>>;
try {
  const configPath = typeof values.config === "string" ? values.config : defaultConfigFile();
  sections = await loadConfig(configPath || undefined) as unknown as typeof sections;
} catch (error) {
  console.error(`start: ${(error as Error).message}`);
  Deno.exit(2);
}

const detected: { spec: WorkerSpec; dir: string }[] = [];
const looked: string[] = [];
for (const spec of WORKER_SPECS) {
  const flag = values[spec.sourceFlag];
  const configured = sections[spec.name]?.[spec.configKey];
  const dir = typeof flag === "string"
    ? flag
    : typeof configured === "string" && configured
    ? configured
    : spec.defaultDataDir(env);
  if (isDir(dir)) detected.push({ spec, dir });
  else {
    looked.push(
      `  ${spec.label}: ${dir} (point elsewhere with --${spec.sourceFlag} DIR or ${spec.name}.${spec.configKey} in the config file)`,
    );
  }
}

if (detected.length === 0) {
  console.error(
    `ai-sync: no AI conversation history found on this machine. Looked in:\n${looked.join("\n")}`,
  );
  Deno.exit(0);
}
for (const line of looked) console.error(`ai-sync: not found, skipped:${line.slice(1)}`);

const children = detected.map(({ spec, dir }) => {
  console.error(`ai-sync: starting ${spec.binary} on ${dir}`);
  return new Deno.Command(Deno.execPath(), {
    args: [...denoRunArgs(spec, repo), ...common, `--${spec.sourceFlag}`, dir],
    stdin: "null",
  }).spawn();
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    for (const child of children) {
      try {
        child.kill(signal);
      } catch {
        // Already exited.
      }
    }
  });
}
const codes = await Promise.all(children.map(async (c) => (await c.status).code));
Deno.exit(Math.max(0, ...codes));
