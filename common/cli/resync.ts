/**
 * `<binary> resync`: the worker forgets what it delivered, so that its next run reads the whole
 * history again and sends it, and the target keeps each message once. For a server, or an
 * embedded store, restored from an older backup: the worker cannot tell one from the target it
 * delivered to, and would never send what the backup lacks (a store copied over in place keeps
 * its file's identity). The mailbox intake's own bookkeeping is kept.
 *
 * @module
 */
import { join } from "node:path";
import { StateLock } from "../state/lock.ts";
import { StateDatabaseError, StateStore } from "../state/state.ts";
import { forgetDeliveries } from "../engine/target.ts";
import type { CliContext } from "./context.ts";

/**
 * Runs `resync` for the worker of `ctx`; returns the exit code (1 while the worker runs: it is
 * to be stopped first, as its checkpoints would be written over).
 *
 * @example Nothing delivered yet
 * ```ts
 * import { resync } from "./resync.ts";
 * import { parseCli } from "./context.ts";
 * import { sourceSpec } from "../../workers/registry.ts";
 * const stateDir = await Deno.makeTempDir();
 * console.log(resync(parseCli(sourceSpec("codex"), ["resync", "--state-dir", stateDir]))); // 0
 * ```
 */
export function resync(ctx: CliContext): number {
  const path = join(ctx.stateDir, `${ctx.spec.name}.state.db`);
  try {
    Deno.statSync(path);
  } catch {
    console.log(`${ctx.spec.name}: nothing delivered yet (no ${path})`);
    return 0;
  }
  let lock: StateLock;
  try {
    lock = StateLock.acquire(ctx.stateDir, ctx.spec.name, ctx.spec.binary);
  } catch (error) {
    if (!(error instanceof StateDatabaseError)) throw error;
    console.error(`${ctx.spec.binary}: resync: ${error.message}; stop it first`);
    return 1;
  }
  try {
    const state = new StateStore(path);
    try {
      forgetDeliveries(state);
    } finally {
      state.close();
    }
  } finally {
    lock.release();
  }
  console.log(
    `${ctx.spec.name}: its next run reads the whole history again and sends it; the target ` +
      `keeps each message once`,
  );
  return 0;
}
