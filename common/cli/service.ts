/**
 * `install-service` / `uninstall-service`: a systemd user unit on Linux or a launchd agent on
 * macOS that runs the worker with the same permission flags as its binary.
 *
 * @module
 */
import { basename, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { CliContext } from "./context.ts";
import { errorMessage } from "../log.ts";
import { denoRunArgs, PROCESS_ENV } from "../permissions.ts";

/** The file a service definition goes to, and its text. */
export interface ServiceFile {
  path: string;
  text: string;
  /** Commands that load it. */
  enable: string;
  /** Commands that unload it. */
  disable: string;
}

function home(): string {
  return Deno.env.get("HOME") ?? ".";
}

/**
 * A service cannot be written as asked; the message says why and what to do instead.
 *
 * @example Tell a setup error from a bug
 * ```ts
 * import { ServiceSetupError, TransientDenoError } from "./service.ts";
 * console.log(new TransientDenoError("/x") instanceof ServiceSetupError); // true
 * ```
 */
export class ServiceSetupError extends Error {
  override name = "ServiceSetupError";
}

/**
 * A word of the service's command that the service manager cannot carry: a control character
 * (a newline would start another line of the unit: another directive), or in the program's path
 * a quote (single or double) or backslash, which systemd refuses to run.
 *
 * @example The message names the path
 * ```ts
 * import { ServiceWordError } from "./service.ts";
 * console.log(new ServiceWordError("/opt/a\nb", true).message.includes("/opt/a\\nb")); // true
 * ```
 */
export class ServiceWordError extends ServiceSetupError {
  override name = "ServiceWordError";
  /** `word`: what cannot be carried; `program`: whether it is the program's path. */
  constructor(readonly word: string, readonly program: boolean) {
    super(
      program
        ? `the program's path ${JSON.stringify(word)} holds a control character, a quote or a ` +
          `backslash, which the service manager cannot run: move it to a path without them`
        : `the argument ${JSON.stringify(word)} holds a control character (a newline, a tab), ` +
          `which a service file cannot carry: use a path without one`,
    );
  }
}

/**
 * A service file cannot point at this Deno: it runs from the npx cache, which npm may clean.
 *
 * @example The message says how to install durably
 * ```ts
 * import { TransientDenoError } from "./service.ts";
 * console.log(new TransientDenoError("/home/me/.npm/_npx/1/node_modules/deno/deno").message);
 * ```
 */
export class TransientDenoError extends ServiceSetupError {
  override name = "TransientDenoError";
  /** Creates the error for the Deno at `exec`. */
  constructor(exec: string) {
    super(
      `this Deno runs from the npx cache (${exec}), which npm may clean at any time, so a ` +
        `service started from it would break; install durably first: \`npm install -g deno@2.9.6\` ` +
        `and run the same command with \`deno task …\`, or build the binaries with ` +
        `\`deno task compile\` and run install-service from bin/`,
    );
  }
}

/**
 * Whether a Deno executable lives in the npx cache (`~/.npm/_npx/<hash>/…`), which npm cleans.
 *
 * @example The npx cache, and a global install
 * ```ts
 * import { isTransientDeno } from "./service.ts";
 * isTransientDeno("/home/me/.npm/_npx/9f2e/node_modules/deno/deno"); // true
 * isTransientDeno("/usr/lib/node_modules/deno/deno"); // false
 * ```
 */
export function isTransientDeno(exec: string): boolean {
  return /[\\/]_npx[\\/]/.test(exec);
}

/** The Deno running this, checked to be a durable install. */
function durableDeno(): string {
  const exec = Deno.execPath();
  if (isTransientDeno(exec)) throw new TransientDenoError(exec);
  return exec;
}

/**
 * The command a service runs: the compiled binary itself, or `deno run` with the table's flags.
 *
 * @example The command for a `deno run` setup (not under npx: it refuses a temporary Deno)
 * ```ts
 * import { serviceCommand } from "./service.ts";
 * import type { CliContext } from "./context.ts";
 * function command(ctx: CliContext): string[] {
 *   return serviceCommand(ctx, new URL("../../workers/codex/engine.ts", import.meta.url));
 * }
 * ```
 */
export function serviceCommand(ctx: CliContext, engineUrl: URL): string[] {
  const exec = durableDeno();
  const args = ["run", "--config", ctx.configPath, "--state-dir", ctx.stateDir];
  if (!ctx.configPath) args.splice(1, 2);
  if (ctx.dataDirFlag) args.push(`--${ctx.spec.sourceFlag}`, ctx.dataDirFlag);
  if (ctx.statusPort) args.push("--status-port", String(ctx.statusPort));
  if (ctx.logLevel) args.push("--log-level", ctx.logLevel);
  if (basename(exec) !== "deno") return [exec, ...args];
  const repoRoot = dirname(dirname(dirname(fileURLToPath(engineUrl))));
  return [exec, ...denoRunArgs(ctx.spec, repoRoot), ...args];
}

/**
 * The command of the service that runs `deno task start` (every source found): the repo's
 * `workers/start.ts` under a durable Deno, with `args` (config, state dir, source flags).
 *
 * @example The command (not under npx: it refuses a temporary Deno)
 * ```ts
 * import { startServiceCommand } from "./service.ts";
 * function command(): string[] {
 *   return startServiceCommand("/src/ai-sync", ["--state-dir", "/s"]);
 * }
 * ```
 */
export function startServiceCommand(repoRoot: string, args: string[]): string[] {
  return [durableDeno(), "run", "-A", `${repoRoot}/workers/start.ts`, ...args];
}

/**
 * A word of `ExecStart` as systemd reads it: quoted when it holds spaces, quotes (single quotes
 * quote too: an apostrophe in `Bob's projects` was dropped) or backslashes, `%` doubled (a
 * specifier, `%h`, otherwise: a folder named `100%done` ran another path), and in the arguments,
 * not the program's path, which systemd does not expand, `$` too (a variable, `$HOME`).
 */
function systemdQuote(arg: string, program: boolean): string {
  const percent = arg.replaceAll("%", "%%");
  const plain = program ? percent : percent.replaceAll("$", "$$$$");
  return /[\s"'\\]/.test(plain)
    ? `"${plain.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`
    : plain;
}

/** Throws {@link ServiceWordError} for a word of `command` a service cannot carry. */
function checkWords(command: readonly string[], os: string): void {
  command.forEach((word, i) => {
    // deno-lint-ignore no-control-regex
    const refused = i === 0 && os !== "darwin" ? /[\x00-\x1f\x7f"'\\]/ : /[\x00-\x1f\x7f]/;
    if (refused.test(word)) throw new ServiceWordError(word, i === 0);
  });
}

function xml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/** What a service is: its name (the file's), what it says it is, and what it runs. */
export interface ServiceSpec {
  name: string;
  description: string;
  command: string[];
}

/**
 * The service definition for this platform: a systemd user unit, or a launchd agent on macOS.
 *
 * @example Render a unit
 * ```ts
 * import { serviceDefinition } from "./service.ts";
 * const unit = serviceDefinition({
 *   name: "codex-sync-worker", description: "Codex rollouts", command: ["/usr/bin/codex-sync-worker"],
 * }, "linux");
 * console.log(unit.text.includes("ExecStart=/usr/bin/codex-sync-worker"));
 * ```
 */
export function serviceDefinition(service: ServiceSpec, os = Deno.build.os): ServiceFile {
  const { name, command } = service;
  checkWords(command, os);
  if (os === "darwin") {
    const label = `dev.ai-sync.${name}`;
    const log = `${home()}/Library/Logs/ai-sync/${name}.log`;
    const path = `${home()}/Library/LaunchAgents/${label}.plist`;
    const text = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key><string>${label}</string>
  <key>ProgramArguments</key>
  <array>
${command.map((a) => `    <string>${xml(a)}</string>`).join("\n")}
  </array>
  <key>RunAtLoad</key><true/>
  <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>
  <key>ThrottleInterval</key><integer>10</integer>
  <key>ProcessType</key><string>Background</string>
  <key>StandardErrorPath</key><string>${xml(log)}</string>
</dict>
</plist>
`;
    return {
      path,
      text,
      enable: `mkdir -p ~/Library/Logs/ai-sync && launchctl bootstrap gui/$(id -u) ${path}`,
      disable: `launchctl bootout gui/$(id -u)/${label}`,
    };
  }
  const path = `${
    Deno.env.get("XDG_CONFIG_HOME") || `${home()}/.config`
  }/systemd/user/${name}.service`;
  const text = `[Unit]
Description=ai-sync: ${service.description}
After=network-online.target

[Service]
Type=simple
# Credentials (SYNC_WORKER_TOKEN, OPENAI_EMAIL_PASSWORD, ...) as VAR=value lines, mode 0600.
EnvironmentFile=-%h/.config/ai-sync/secrets.env
${Object.entries(PROCESS_ENV).map(([k, v]) => `Environment=${k}=${v}\n`).join("")}ExecStart=${
    command.map((word, i) => systemdQuote(word, i === 0)).join(" ")
  }
Restart=on-failure
RestartSec=10
KillSignal=SIGTERM
TimeoutStopSec=30

[Install]
WantedBy=default.target
`;
  return {
    path,
    text,
    enable: `systemctl --user daemon-reload && systemctl --user enable --now ${name}.service`,
    disable: `systemctl --user disable --now ${name}.service`,
  };
}

/**
 * The service definition of a worker.
 *
 * @example Render the unit without writing it (not under npx: it refuses a temporary Deno)
 * ```ts
 * import { serviceFile } from "./service.ts";
 * import type { CliContext } from "./context.ts";
 * function unit(ctx: CliContext, engineUrl: URL): string {
 *   return serviceFile(ctx, engineUrl).text;
 * }
 * ```
 */
export function serviceFile(ctx: CliContext, engineUrl: URL, os = Deno.build.os): ServiceFile {
  return serviceDefinition({
    name: ctx.spec.binary,
    description: `${ctx.spec.label} worker`,
    command: serviceCommand(ctx, engineUrl),
  }, os);
}

/**
 * Writes (or with `print` prints) a service definition; returns the exit code.
 *
 * @example Print a unit
 * ```ts
 * import { serviceDefinition, writeService } from "./service.ts";
 * const file = serviceDefinition({ name: "codex-sync-worker", description: "d", command: ["x"] });
 * await writeService(file, true, "codex-sync-worker");
 * ```
 */
export async function writeService(
  file: ServiceFile,
  print: boolean,
  who: string,
): Promise<number> {
  if (print) {
    console.log(file.text);
    return 0;
  }
  try {
    await Deno.mkdir(dirname(file.path), { recursive: true });
    await Deno.writeTextFile(file.path, file.text);
  } catch (error) {
    console.error(`${who}: cannot write ${file.path}: ${errorMessage(error)}`);
    return 1;
  }
  console.log(`wrote ${file.path}\nto start it now and at login: ${file.enable}`);
  return 0;
}

/**
 * Removes a service definition written by {@link writeService}; returns the exit code.
 *
 * @example Remove a unit that is not there
 * ```ts
 * import { removeService } from "./service.ts";
 * const file = { path: "/nonexistent/x.service", text: "", enable: "", disable: "" };
 * console.log(await removeService(file, "codex-sync-worker")); // 0: nothing to remove
 * ```
 */
export async function removeService(file: ServiceFile, who: string): Promise<number> {
  try {
    await Deno.remove(file.path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      console.log(`no service file at ${file.path}`);
      return 0;
    }
    console.error(`${who}: cannot remove ${file.path}: ${errorMessage(error)}`);
    return 1;
  }
  console.log(`removed ${file.path}\nif it is loaded, also run: ${file.disable}`);
  return 0;
}

/**
 * `install-service` of a worker: writes (or with `--print` prints) its service definition.
 *
 * @example Print what would be installed
 * ```ts
 * import { installService } from "./service.ts";
 * import type { CliContext } from "./context.ts";
 * // With `print`, nothing is written (defined here, not run: the unit names this machine's Deno).
 * async function print(ctx: CliContext, engineUrl: URL): Promise<number> {
 *   return await installService({ ...ctx, print: true }, engineUrl);
 * }
 * ```
 */
export async function installService(ctx: CliContext, engineUrl: URL): Promise<number> {
  let file: ServiceFile;
  try {
    file = serviceFile(ctx, engineUrl);
  } catch (error) {
    if (!(error instanceof ServiceSetupError)) throw error;
    console.error(`${ctx.spec.binary}: install-service: ${error.message}`);
    return 1;
  }
  return await writeService(file, ctx.print, ctx.spec.binary);
}

/**
 * `uninstall-service` of a worker.
 *
 * @example Uninstall (defined here, not run: it removes this user's service file)
 * ```ts
 * import { uninstallService } from "./service.ts";
 * import type { CliContext } from "./context.ts";
 * async function uninstall(ctx: CliContext): Promise<number> {
 *   return await uninstallService(ctx);
 * }
 * ```
 */
export async function uninstallService(ctx: CliContext): Promise<number> {
  const file = serviceDefinition({ name: ctx.spec.binary, description: "", command: [] });
  return await removeService(file, ctx.spec.binary);
}
