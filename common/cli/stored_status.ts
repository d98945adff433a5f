/**
 * `<binary> status` for a worker that serves no status port: what its state database says,
 * read beside it while it runs. Whether it runs (and who holds its lock), the messages it
 * delivered in all, the files it follows and the dead letters waiting. Live progress (the
 * current check, a pause and its cause) needs the status port.
 *
 * @module
 */
import { join } from "node:path";
import { StateLock } from "../state/lock.ts";
import { StateStore } from "../state/state.ts";

/** What the state database of one worker says. */
export interface StoredStatus {
  worker: string;
  /** Whether a worker holds its lock now. */
  running: boolean;
  /** Who runs it, when it wrote that: `pid 42 on laptop since …`. */
  held_by?: string;
  /** Messages delivered in all. */
  total_synced: number;
  /** Files (and exports) it follows. */
  files: number;
  /** Dead letters not replayed yet. */
  dead_letters: number;
  /** Whether a state database exists (`false`: nothing delivered yet). */
  has_state: boolean;
}

/**
 * What the state database of `worker` in `stateDir` says, without taking its lock.
 *
 * @example Nothing has run here
 * ```ts
 * import { storedStatus } from "./stored_status.ts";
 * console.log(storedStatus(await Deno.makeTempDir(), "codex").has_state); // false
 * ```
 */
export function storedStatus(stateDir: string, worker: string): StoredStatus {
  const held = StateLock.heldBy(stateDir, worker);
  const holder = held?.holder;
  const status: StoredStatus = {
    worker,
    running: held !== undefined,
    ...(holder ? { held_by: `pid ${holder.pid} on ${holder.host} since ${holder.startedAt}` } : {}),
    total_synced: 0,
    files: 0,
    dead_letters: 0,
    has_state: false,
  };
  const path = join(stateDir, `${worker}.state.db`);
  let file: Deno.FileInfo;
  try {
    file = Deno.statSync(path);
  } catch {
    return status;
  }
  // SQLite's open of a FIFO waits for a writer: the command would hang.
  if (!file.isFile) throw new Error(`${path} is not a file: not a state database`);
  const state = new StateStore(path);
  try {
    status.has_state = true;
    status.total_synced = state.counters().messages ?? 0;
    status.files = state.listUnits().length;
    status.dead_letters = state.deadLetters(Number.MAX_SAFE_INTEGER, true).length;
  } finally {
    state.close();
  }
  return status;
}

/**
 * A {@link StoredStatus} as text for a terminal.
 *
 * @example A worker that has not run
 * ```ts
 * import { formatStoredStatus } from "./stored_status.ts";
 * console.log(formatStoredStatus({
 *   worker: "codex", running: false, total_synced: 0, files: 0, dead_letters: 0, has_state: false,
 * }));
 * ```
 */
export function formatStoredStatus(s: StoredStatus): string {
  return [
    `${s.worker}: ${s.running ? `running${s.held_by ? ` (${s.held_by})` : ""}` : "not running"}`,
    s.has_state
      ? `  synced:       ${s.total_synced} messages in all\n` +
        `  files:        ${s.files}\n` +
        `  dead letters: ${s.dead_letters} waiting${
          s.dead_letters ? ` (dead-letters list, then replay)` : ""
        }`
      : "  nothing delivered yet",
    "  (live progress: start the worker with --status-port N or status.port, then status with the same)",
  ].join("\n");
}
