/**
 * `install-service` / `uninstall-service`: a systemd user unit on Linux or a launchd agent on
 * macOS that runs the worker with the same permission flags as its binary (DENO.md §6).
 *
 * @module
 */
import { basename, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { CliContext } from "./cli.ts";
import { errorMessage } from "./log.ts";
import { denoRunArgs } from "./permissions.ts";

/** The file a service definition goes to, and its text. */
export interface ServiceFile {
  path: string;
  text: string;
  /** Commands that load it. */
  enable: string;
}

function home(): string {
  return Deno.env.get("HOME") ?? ".";
}

/**
 * The command a service runs: the compiled binary itself, or `deno run` with the table's flags.
 *
 * @example The command for a `deno run` setup
 * ```ts ignore
 * console.log(serviceCommand(ctx, new URL("../workers/claude_code/engine.ts", import.meta.url)));
 * ```
 */
export function serviceCommand(ctx: CliContext, engineUrl: URL): string[] {
  const exec = Deno.execPath();
  const args = ["run", "--config", ctx.configPath, "--state-dir", ctx.stateDir];
  if (!ctx.configPath) args.splice(1, 2);
  if (ctx.dataDirFlag) args.push(`--${ctx.spec.sourceFlag}`, ctx.dataDirFlag);
  if (ctx.statusPort) args.push("--status-port", String(ctx.statusPort));
  if (ctx.logLevel) args.push("--log-level", ctx.logLevel);
  if (basename(exec) !== "deno") return [exec, ...args];
  const repoRoot = dirname(dirname(dirname(fileURLToPath(engineUrl))));
  return [exec, ...denoRunArgs(ctx.spec, repoRoot), ...args];
}

function systemdQuote(arg: string): string {
  return /[\s"\\]/.test(arg) ? `"${arg.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"` : arg;
}

function xml(text: string): string {
  return text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
}

/**
 * The service definition for this platform.
 *
 * @example Render the unit without writing it
 * ```ts ignore
 * console.log(serviceFile(ctx, engineUrl).text);
 * ```
 */
export function serviceFile(ctx: CliContext, engineUrl: URL, os = Deno.build.os): ServiceFile {
  const command = serviceCommand(ctx, engineUrl);
  const name = ctx.spec.binary;
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
    };
  }
  const path = `${
    Deno.env.get("XDG_CONFIG_HOME") || `${home()}/.config`
  }/systemd/user/${name}.service`;
  const text = `[Unit]
Description=ai-sync: ${ctx.spec.label} worker
After=network-online.target

[Service]
Type=simple
ExecStart=${command.map(systemdQuote).join(" ")}
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
  };
}

/**
 * Writes (or with `--print` prints) the service definition.
 *
 * @example Install
 * ```ts ignore
 * Deno.exit(await installService(ctx, engineUrl));
 * ```
 */
export async function installService(ctx: CliContext, engineUrl: URL): Promise<number> {
  const file = serviceFile(ctx, engineUrl);
  if (ctx.print) {
    console.log(file.text);
    return 0;
  }
  try {
    await Deno.mkdir(dirname(file.path), { recursive: true });
    await Deno.writeTextFile(file.path, file.text);
  } catch (error) {
    console.error(`${ctx.spec.binary}: cannot write ${file.path}: ${errorMessage(error)}`);
    return 1;
  }
  console.log(`wrote ${file.path}\nto start it now and at login: ${file.enable}`);
  return 0;
}

/**
 * Removes the service definition written by {@link installService}.
 *
 * @example Uninstall
 * ```ts ignore
 * Deno.exit(await uninstallService(ctx));
 * ```
 */
export async function uninstallService(ctx: CliContext): Promise<number> {
  const file = serviceFile(ctx, new URL(import.meta.url));
  try {
    await Deno.remove(file.path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      console.log(`no service file at ${file.path}`);
      return 0;
    }
    console.error(`${ctx.spec.binary}: cannot remove ${file.path}: ${errorMessage(error)}`);
    return 1;
  }
  const stop = Deno.build.os === "darwin"
    ? `launchctl bootout gui/$(id -u)/dev.ai-sync.${ctx.spec.binary}`
    : `systemctl --user disable --now ${ctx.spec.binary}.service`;
  console.log(`removed ${file.path}\nif it is loaded, also run: ${stop}`);
  return 0;
}
