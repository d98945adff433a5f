/**
 * The check, at an engine's start, that its narrowed permissions hold.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { EngineInit } from "./protocol.ts";

/**
 * Verifies that the narrowing holds: a path outside the scope is not readable and a host other
 * than the API host is not reachable. A failure is logged loudly; it would mean the engine runs
 * with the main thread's wider grant.
 *
 * @example Check the current thread
 * ```ts
 * import { checkSandbox } from "./sandbox.ts";
 * import { Logger } from "../log.ts";
 * checkSandbox(new Logger("doc", "error"), {
 *   sandboxProbe: { outsidePath: "/", outsideHost: "192.0.2.1:9" },
 * });
 * ```
 */
export function checkSandbox(log: Logger, init: Pick<EngineInit, "sandboxProbe">): void {
  const read =
    Deno.permissions.querySync({ name: "read", path: init.sandboxProbe.outsidePath }).state;
  const net =
    Deno.permissions.querySync({ name: "net", host: init.sandboxProbe.outsideHost }).state;
  const env = Deno.permissions.querySync({ name: "env", variable: "HOME" }).state;
  const confined = read !== "granted" && net !== "granted" && env !== "granted";
  const fields = {
    read_outside: read,
    net_other_host: net,
    env: env,
    probe_path: init.sandboxProbe.outsidePath,
    probe_host: init.sandboxProbe.outsideHost,
  };
  if (confined) {
    log.debug(
      "sandbox: engine confined to its data, config and state paths and the API host",
      fields,
    );
  } else log.error("sandbox: engine is NOT confined; check --unstable-worker-options", fields);
}
