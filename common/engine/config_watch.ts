/**
 * Reloading the configuration while a worker runs: what changed is applied at once, except
 * what shapes the engine's permissions or sockets, which needs a restart.
 *
 * @module
 */
import { type Config, loadConfig } from "../config.ts";
import { errorMessage, type Logger } from "../log.ts";
import type { EngineInit } from "./protocol.ts";

/** Config keys that only a restart can change (they shape the engine's permissions or sockets). */
const RESTART_KEYS = [
  ["server", "base_url"],
  ["status", "port"],
  ["log", "file"],
] as const;

/**
 * Polls the config file every second (cheap, and robust to editors that replace the file) and
 * hands a changed, valid configuration to `apply`, with the keys only a restart can change kept
 * as they were (each named in a warning). An invalid edit is reported and changes nothing.
 *
 * @example Watch a config file
 * ```ts
 * import { watchConfig } from "./config_watch.ts";
 * import { ConfigSchema } from "../config.ts";
 * import { Logger } from "../log.ts";
 * let config = ConfigSchema.parse({});
 * const timer = watchConfig({ configPath: "", env: {} }, new Logger("doc"), () => config, (next) => {
 *   config = next;
 * });
 * clearInterval(timer);
 * ```
 */
export function watchConfig(
  init: Pick<EngineInit, "configPath" | "env">,
  log: Logger,
  current: () => Config,
  apply: (next: Config) => void,
): ReturnType<typeof setInterval> {
  let mtime = 0;
  const stamp = () => {
    try {
      return Deno.statSync(init.configPath).mtime?.getTime() ?? 0;
    } catch {
      return 0;
    }
  };
  if (init.configPath) mtime = stamp();
  return setInterval(async () => {
    if (!init.configPath) return;
    const now = stamp();
    if (now === mtime) return;
    mtime = now;
    let next: Config;
    try {
      next = await loadConfig(init.configPath, init.env);
    } catch (error) {
      log.error(`${errorMessage(error)}; keeping the previous configuration`);
      return;
    }
    const old = current();
    for (const [section, key] of RESTART_KEYS) {
      const before = (old[section] as Record<string, unknown>)[key];
      const after = (next[section] as Record<string, unknown>)[key];
      if (before !== after) {
        log.warn(
          `${section}.${key} changed; restart the worker to apply it (keeping ${
            JSON.stringify(before)
          })`,
        );
        (next[section] as Record<string, unknown>)[key] = before;
      }
    }
    apply(next);
    log.info(`configuration reloaded from ${init.configPath}`);
  }, 1000);
}
