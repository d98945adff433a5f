/**
 * `deno task start`: syncs every source found on this machine, each by its own worker process
 * started exactly as its binary runs (the permission table's flags), into the embedded store of
 * the shared state directory (or the configured server), and keeps watching.
 *
 * ```
 * deno task start [--config FILE] [--state-dir DIR] [--projects-dir DIR] [--once] [--json] ...
 * deno task start --help | --version
 * ```
 *
 * On a terminal it draws one progress line per worker (the workers report progress as JSON
 * lines, so their bars never overwrite each other) with their logs above, and ends a `--once`
 * run with one summary table; piped, it passes the logs through and prints each worker's JSON
 * summary, labelled by source, in a stable order. Each worker gets its own status port: the
 * base (`--status-port` or `status.port`) plus its place in the table.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import {
  configPathOf,
  dataDirOf,
  defaultStateDir,
  isDirectory,
  otherDefaultDirsOf,
  parseCli,
} from "../common/cli/context.ts";
import { VERSION } from "../common/version.ts";
import { EXPORT_FLAGS, exportConversations, exportOptionsOf } from "../common/cli/export.ts";
import { type Config, ConfigError, loadConfig } from "../common/config.ts";
import { errorMessage, LOG_LEVELS } from "../common/log.ts";
import { denoRunArgs, PROCESS_ENV } from "../common/permissions.ts";
import type { SourceSpec } from "../common/source_spec.ts";
import { SOURCES } from "./registry.ts";
import { progressLine, type ProgressState } from "../common/progress.ts";
import { type RunSummary, summaryTable } from "../common/summary.ts";
import {
  removeService,
  serviceDefinition,
  ServiceSetupError,
  startServiceCommand,
  writeService,
} from "../common/cli/service.ts";
import { embeddedStorePath } from "../common/delivery/store_sinks.ts";
import { resync } from "../common/cli/resync.ts";

const repo = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const encoder = new TextEncoder();

/** A source with where its data would be and whether it is there. */
interface Plan {
  spec: SourceSpec;
  /** Its place in the table: its status port is the base plus this. */
  index: number;
  dir: string;
  /** The flag's value, when given (the worker is then told the folder). */
  flag: string | undefined;
  /** Its other default folders that exist, read besides `dir`. */
  others: string[];
  found: boolean;
}

/** The flag `start` takes for a source's data folder. */
function startFlag(spec: SourceSpec): string {
  return spec.startFlag ?? spec.sourceFlag;
}

function usage(plans: Plan[] | undefined): string {
  const flags = SOURCES.map((s) => `--${startFlag(s)} DIR (${s.name})`).join(", ");
  const found = plans
    ? plans.map((p) =>
      `  ${p.spec.name.padEnd(12)} ${p.found ? "found    " : "not found"} ${p.dir}  (--${
        startFlag(p.spec)
      })`
    ).join("\n")
    : "  (deno task start --help lists them)";
  return `usage: deno task start [options]            (npx -y deno@2.9.6 task start [options])
       deno task start install-service [--print] [options] | uninstall-service
       deno task start export [--out DIR] [--format md|jsonl] [--q WORDS] [--project P]
                              [--from DATE] [--to DATE]
       deno task start status [--json] (each worker: running, synced, files, dead letters)
       deno task start doctor           (checks each source's setup, as its worker would run)
       deno task start resync           (every source's next run sends everything again)
       deno task start --help | --version

Finds the AI history on this machine and syncs each source with its own worker process, into
the embedded store (or server.base_url), then keeps watching. --once does one pass and exits.

sources on this machine, and the flag that points each elsewhere:
${found}

options, passed on to every worker:
  --config FILE        config file (default: ~/.config/ai-sync/config.yaml when present)
  --state-dir DIR      state directory, shared by the workers (default: ~/.local/state/ai-sync)
  --once               one pass, then a summary table (a terminal) or JSON lines (piped)
  --json               with --once: JSON lines, one per source, even on a terminal
  --dry-run            print what would be sent; send and record nothing
  --log-level LEVEL    ${LOG_LEVELS.join(", ")}
  --status-port N      serve each worker's status on 127.0.0.1: ${
    SOURCES.map((s, i) => `${s.name} on N${i ? `+${i}` : ""}`).join(", ")
  }
  source flags         ${flags}

exit codes: 0 ok (malformed lines are counted and named, not failures), 1 a worker failed,
2 usage or configuration error.`;
}

/** What `start` does besides running the workers (`run`). */
const COMMANDS = [
  "run",
  "status",
  "doctor",
  "install-service",
  "uninstall-service",
  "export",
  "resync",
];

class UsageError extends Error {
  override name = "UsageError";
}

function parse(args: string[]) {
  const sourceFlags = Object.fromEntries(
    SOURCES.map((s) => [startFlag(s), { type: "string" as const }]),
  );
  try {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        ...sourceFlags,
        config: { type: "string" },
        "state-dir": { type: "string" },
        once: { type: "boolean", default: false },
        "dry-run": { type: "boolean", default: false },
        json: { type: "boolean", default: false },
        "log-level": { type: "string" },
        "status-port": { type: "string" },
        print: { type: "boolean", default: false },
        ...EXPORT_FLAGS,
        help: { type: "boolean", short: "h", default: false },
        version: { type: "boolean", short: "V", default: false },
      },
    });
    const command = positionals[0] ?? "run";
    if (!COMMANDS.includes(command)) {
      throw new UsageError(
        `unknown command ${JSON.stringify(command)}: expected ${
          COMMANDS.slice(1, -1).join(", ")
        } or ${COMMANDS.at(-1)}`,
      );
    }
    if (positionals.length > 1) {
      throw new UsageError(`unexpected argument ${JSON.stringify(positionals[1])}`);
    }
    const level = values["log-level"] as string | undefined;
    if (level !== undefined && !(LOG_LEVELS as readonly string[]).includes(level)) {
      throw new UsageError(
        `--log-level: expected one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level)}`,
      );
    }
    const port = values["status-port"] as string | undefined;
    const statusPort = port === undefined ? undefined : Number(port);
    if (
      statusPort !== undefined &&
      (!Number.isInteger(statusPort) || statusPort < 1 ||
        statusPort + SOURCES.length - 1 > 65535)
    ) {
      throw new UsageError(
        `--status-port: expected a port from 1 to ${65536 - SOURCES.length}, got ${
          JSON.stringify(port)
        }`,
      );
    }
    if (values.once && values["dry-run"]) {
      throw new UsageError("--once and --dry-run exclude each other");
    }
    return {
      values: values as Record<string, string | boolean | undefined>,
      statusPort,
      command,
    };
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(errorMessage(error));
  }
}

/**
 * The worker of `p` as its binary runs (its permission flags, the services' environment), with
 * `args`, its status port (`statusBase` plus its place in the table) and its folder when a flag
 * named one; without the flag, the worker finds the same folders itself, its other defaults too.
 */
function workerCommand(
  p: Plan,
  args: string[],
  statusBase: number | undefined,
  stdio: Pick<Deno.CommandOptions, "stdout" | "stderr">,
): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: [
      ...denoRunArgs(p.spec, repo),
      ...args,
      ...(statusBase ? ["--status-port", String(statusBase + p.index)] : []),
      ...(p.flag ? [`--${p.spec.sourceFlag}`, p.dir] : []),
    ],
    env: { ...PROCESS_ENV, ...Deno.env.toObject() },
    stdin: "null",
    ...stdio,
  });
}

/**
 * Runs a worker command (`doctor`, `status`) for each source found, as its worker runs it (with
 * its permission flags, so `doctor` checks what the worker may do), each answer under its
 * source's name, or, with `json`, all of them as one object by source. The highest exit code.
 */
async function eachWorker(
  plans: Plan[],
  args: string[],
  statusBase: number | undefined,
  json: boolean,
): Promise<number> {
  let code = 0;
  const answers: Record<string, unknown> = {};
  for (const p of plans) {
    if (!p.found) {
      if (!json) {
        console.log(`${p.spec.name}: not found in ${p.dir} (--${startFlag(p.spec)} DIR)`);
      }
      continue;
    }
    const output = await workerCommand(p, args, statusBase, { stdout: "piped", stderr: "piped" })
      .output();
    code = Math.max(code, output.code);
    const out = new TextDecoder().decode(output.stdout).trimEnd();
    const err = new TextDecoder().decode(output.stderr).trimEnd();
    if (!json) {
      console.log(`${p.spec.name} (${p.spec.binary}):\n${[out, err].filter(Boolean).join("\n")}\n`);
      continue;
    }
    try {
      answers[p.spec.name] = JSON.parse(out);
    } catch {
      answers[p.spec.name] = { error: err || out };
    }
  }
  if (json) console.log(JSON.stringify(answers, null, 2));
  return code;
}

/** Progress lines, one per worker, kept at the bottom of a terminal with the logs above. */
class Board {
  #lines = new Map<string, string>();
  #drawn = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly order: string[]) {
    for (const name of order) this.#lines.set(name, `${name}  starting`);
  }

  /** Sets a worker's line; a worker started later gets a line of its own. */
  set(name: string, text: string): void {
    if (!this.#lines.has(name)) this.order.push(name);
    this.#lines.set(name, text);
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      this.#redraw();
    }, 100);
  }

  log(text: string): void {
    this.#clear();
    Deno.stderr.writeSync(encoder.encode(text + "\n"));
    this.#redraw();
  }

  end(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#redraw();
  }

  #clear(): void {
    if (this.#drawn > 0) Deno.stderr.writeSync(encoder.encode(`\x1b[${this.#drawn}F\x1b[J`));
    this.#drawn = 0;
  }

  #redraw(): void {
    this.#clear();
    const columns = Deno.consoleSize?.().columns ?? 0;
    const width = (columns >= 20 ? columns : 100) - 1;
    const text = this.order.map((n) => this.#lines.get(n)!.slice(0, width)).join("\n");
    Deno.stderr.writeSync(encoder.encode(text + "\n"));
    this.#drawn = this.order.length;
  }
}

/** The service of `start` (every source found, one unit), running `command`. */
function startService(command: string[]) {
  return serviceDefinition({
    name: "ai-sync",
    description: "every AI history source on this machine (deno task start)",
    command,
  });
}

/** Paths in flags are made absolute: a service does not run in this directory. */
function resolveArg(key: string, value: string | boolean | undefined): string {
  const text = String(value);
  return key === "log-level" ? text : resolve(text);
}

async function eachLine(stream: ReadableStream<Uint8Array>, fn: (line: string) => void) {
  const decoder = new TextDecoder();
  let rest = "";
  for await (const chunk of stream) {
    rest += decoder.decode(chunk, { stream: true });
    let nl;
    while ((nl = rest.indexOf("\n")) !== -1) {
      fn(rest.slice(0, nl));
      rest = rest.slice(nl + 1);
    }
  }
  if (rest) fn(rest);
}

async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parse(args);
  } catch (error) {
    console.error(`start: ${errorMessage(error)}\n\n${usage(undefined)}`);
    return 2;
  }
  const { values, statusPort, command } = parsed;
  if (values.version) {
    console.log(`ai-sync ${VERSION}`);
    return 0;
  }
  if (command === "uninstall-service") {
    return await removeService(startService([]), "start");
  }
  // The store and the states the workers share, for the commands that read or change them.
  const stateDir = resolve((values["state-dir"] as string | undefined) ?? defaultStateDir());
  if (command === "resync") {
    return Math.max(
      ...SOURCES.map((spec) => resync(parseCli(spec, ["resync", "--state-dir", stateDir]))),
    );
  }
  if (command === "export") {
    try {
      const options = exportOptionsOf(values, embeddedStorePath(stateDir));
      await Deno.stat(options.storePath);
      const { count, path } = await exportConversations(options);
      console.log(`exported ${count} conversation(s) to ${path}`);
      return 0;
    } catch (error) {
      console.error(`start: export: ${errorMessage(error)}`);
      return error instanceof Error && error.message.startsWith("--") ? 2 : 1;
    }
  }
  const configPath = configPathOf(values.config as string | undefined);
  let config: Config;
  try {
    config = await loadConfig(configPath || undefined, {
      SYNC_WORKER_TOKEN: Deno.env.get("SYNC_WORKER_TOKEN"),
      SYNC_SERVER_URL: Deno.env.get("SYNC_SERVER_URL"),
    });
  } catch (error) {
    console.error(`start: ${errorMessage(error)}`);
    return error instanceof ConfigError ? 2 : 1;
  }
  const plans: Plan[] = SOURCES.map((spec, index) => {
    const flag = values[startFlag(spec)] as string | undefined;
    const dir = dataDirOf(spec, flag, config, configPath);
    const others = otherDefaultDirsOf(spec, flag, config, dir).filter(isDirectory);
    return { spec, index, dir, flag, others, found: isDirectory(dir) };
  });
  if (values.help) {
    console.log(usage(plans));
    return 0;
  }
  if (command === "doctor" || command === "status") {
    // Without a port, each worker says what its state database holds.
    const base = statusPort ?? (config.status.port || undefined);
    const args = [command];
    if (configPath) args.push("--config", configPath);
    if (typeof values["state-dir"] === "string") args.push("--state-dir", stateDir);
    // Only status answers in JSON.
    const json = command === "status" && Boolean(values.json);
    if (json) args.push("--json");
    return await eachWorker(plans, args, base, json);
  }
  if (command === "install-service") {
    // The service runs start on its own: a config, a state directory and source flags carry over.
    const args: string[] = [];
    if (configPath) args.push("--config", configPath);
    for (const key of ["state-dir", "log-level", ...SOURCES.map(startFlag)]) {
      if (typeof values[key] === "string") args.push(`--${key}`, resolveArg(key, values[key]));
    }
    if (statusPort) args.push("--status-port", String(statusPort));
    try {
      return await writeService(
        startService(startServiceCommand(repo, args)),
        Boolean(values.print),
        "start",
      );
    } catch (error) {
      if (!(error instanceof ServiceSetupError)) throw error;
      console.error(`start: install-service: ${error.message}`);
      return 1;
    }
  }
  const detected = plans.filter((p) => p.found);
  if (detected.length === 0) {
    console.error(
      `ai-sync: no AI conversation history found on this machine. Looked in:\n${
        plans.map((p) =>
          `  ${p.spec.label}: ${
            [p.dir, ...otherDefaultDirsOf(p.spec, p.flag, config, p.dir)].join(" or ")
          } (point elsewhere with --${
            startFlag(p.spec)
          } DIR or ${p.spec.name}.${p.spec.configKey} in the config file)`
        ).join("\n")
      }`,
    );
    // A single pass is over; watching (a service, say) waits for the first to appear.
    if (values.once || values["dry-run"]) return 0;
    console.error(
      `ai-sync: waiting for one to appear (looked for every ${config.worker.poll_interval} s); ` +
        `Ctrl-C stops`,
    );
  }
  // Watching, a folder made later is picked up (see `appear` below); a single pass is over then.
  const later = values.once || values["dry-run"] ? "start again" : "it is picked up";
  for (const p of plans.filter((p) => !p.found && detected.length > 0)) {
    // A drop folder is the user's to make: say how, rather than that nothing was there.
    console.error(
      p.spec.dropFolder
        ? `ai-sync: no drop folder for ${p.spec.label}, skipped: to sync them, mkdir -p ${p.dir}, ` +
          `put the export there and ${later} (or --${startFlag(p.spec)} DIR)`
        : `ai-sync: not found, skipped: ${p.spec.label} in ${p.dir} (--${startFlag(p.spec)} DIR)`,
    );
  }

  const common: string[] = [];
  if (configPath) common.push("--config", configPath);
  for (const key of ["state-dir", "log-level"]) {
    if (typeof values[key] === "string") common.push(`--${key}`, values[key] as string);
  }
  for (const key of ["once", "dry-run", "json"]) if (values[key]) common.push(`--${key}`);
  const tty = Deno.stderr.isTerminal() && !values["dry-run"];
  if (tty) common.push("--report", "json", "--log-format", "text");
  const base = statusPort ?? (config.status.port || undefined);

  const board = tty ? new Board(detected.map((p) => p.spec.name)) : undefined;
  const summaries = new Map<string, RunSummary>();
  const launch = (p: Plan) => {
    const line = `ai-sync: starting ${p.spec.binary} on ${[p.dir, ...p.others].join(" and ")}${
      base ? `, status on 127.0.0.1:${base + p.index}` : ""
    }`;
    if (board) board.log(line);
    else console.error(line);
    const child = workerCommand(p, common, base, {
      stdout: values["dry-run"] ? "inherit" : "piped",
      stderr: board ? "piped" : "inherit",
    }).spawn();
    const name = p.spec.name;
    const done: Promise<void>[] = [];
    if (!values["dry-run"]) {
      done.push(eachLine(child.stdout, (text) => {
        let event: ProgressState & { type?: string };
        try {
          event = JSON.parse(text);
        } catch {
          return board ? board.log(`[${name}] ${text}`) : console.log(text);
        }
        if (event.type === "progress") board?.set(name, progressLine(event, 200));
        else {
          const summary = event as unknown as RunSummary;
          summaries.set(name, summary);
          board?.set(
            name,
            `${name}  done: ${summary.conversations} conversations, ${summary.messages} messages`,
          );
        }
      }));
    }
    if (board) done.push(eachLine(child.stderr, (text) => board.log(`[${name}] ${text}`)));
    return { child, done: Promise.all(done) };
  };
  const children = detected.map(launch);
  let launched = () => {};
  const launchedOne = new Promise<void>((resolve) => launched = resolve);
  // A source that appears while it runs (Codex installed after the service was) is started
  // then, looked for every worker.poll_interval: a service runs for months, and a restart
  // should not be what brings it in.
  const waiting = values.once || values["dry-run"] ? [] : plans.filter((p) => !p.found);
  let stopping = false;
  const appear = waiting.length === 0 ? undefined : setInterval(() => {
    for (const p of [...waiting]) {
      const dir = dataDirOf(p.spec, p.flag, config, configPath);
      if (stopping || !isDirectory(dir)) continue;
      waiting.splice(waiting.indexOf(p), 1);
      const others = otherDefaultDirsOf(p.spec, p.flag, config, dir).filter(isDirectory);
      children.push(launch({ ...p, dir, others, found: true }));
      launched();
    }
    if (waiting.length === 0) clearInterval(appear);
  }, config.worker.poll_interval * 1000);
  let stopped = () => {};
  const stop = new Promise<void>((resolve) => stopped = resolve);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(signal, () => {
      stopping = true;
      stopped();
      clearInterval(appear);
      for (const { child } of children) {
        try {
          child.kill(signal);
        } catch {
          // Exited already.
        }
      }
    });
  }
  // Nothing found yet: the first worker, or a stop.
  if (children.length === 0) await Promise.race([stop, launchedOne]);
  const codes: number[] = [];
  // Children started while it waits are waited for too: the loop sees the array grow.
  for (let i = 0; i < children.length; i++) {
    const status = await children[i].child.status;
    await children[i].done.catch(() => {});
    codes.push(status.code);
  }
  stopping = true;
  clearInterval(appear);
  board?.end();
  if (values.once) {
    const rows = detected.map((p) => summaries.get(p.spec.name)).filter((r) => r !== undefined);
    if (Deno.stdout.isTerminal() && !values.json) console.log(summaryTable(rows));
    else for (const row of rows) console.log(JSON.stringify(row));
  }
  return Math.max(0, ...codes);
}

Deno.exit(await main(Deno.args));
