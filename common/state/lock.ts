/**
 * One running worker per source and state directory. Two instances on the same state database
 * would read the same files and race each other's checkpoints and counters; the second one
 * exits with a message naming the first. The lock is an SQLite file held in exclusive locking
 * mode (the operating system releases it when the holder dies, even by SIGKILL); who holds it
 * is written beside it, since a locked database cannot be read.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { StateDatabaseError } from "./errors.ts";

/** Who holds a lock. */
export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
  command: string;
}

/**
 * Another instance holds the lock; the message names it and how to proceed.
 *
 * @example The message names the holder
 * ```ts
 * import { StateLockedError } from "./lock.ts";
 * const error = new StateLockedError("codex", "/s", {
 *   pid: 42, host: "laptop", startedAt: "2026-01-01T00:00:00Z", command: "codex-sync-worker",
 * });
 * console.log(error.message);
 * ```
 */
export class StateLockedError extends Error {
  override name = "StateLockedError";
  /** Creates the error for `worker` in `stateDir`, held by `holder` when known. */
  constructor(worker: string, stateDir: string, holder: LockHolder | undefined) {
    const who = holder
      ? `pid ${holder.pid} on ${holder.host}, started ${holder.startedAt} (${holder.command})`
      : "another process";
    super(
      `another ${worker} worker is running with the state directory ${stateDir}: ${who}; ` +
        `stop it first, or give this one its own --state-dir`,
    );
  }
}

/**
 * A held lock; {@link StateLock.release} (or the process ending) frees it.
 *
 * @example Take and release the lock
 * ```ts
 * import { StateLock } from "./lock.ts";
 * const dir = await Deno.makeTempDir();
 * const lock = StateLock.acquire(dir, "codex", "codex-sync-worker");
 * lock.release();
 * ```
 */
export class StateLock {
  #db: DatabaseSync | undefined;

  private constructor(db: DatabaseSync, readonly holderPath: string) {
    this.#db = db;
  }

  /**
   * Takes the lock of `worker` in `stateDir`; throws {@link StateLockedError} when another
   * instance holds it, and {@link StateDatabaseError} when the state directory cannot be written.
   */
  static acquire(stateDir: string, worker: string, command: string): StateLock {
    const path = join(stateDir, `${worker}.lock`);
    const holderPath = `${path}.holder.json`;
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(path);
    } catch (error) {
      throw new StateDatabaseError(path, error);
    }
    try {
      db.exec("PRAGMA busy_timeout=0; PRAGMA locking_mode=EXCLUSIVE;");
      // The first write takes the exclusive lock, and exclusive mode keeps it until close.
      db.exec(
        "BEGIN EXCLUSIVE; CREATE TABLE IF NOT EXISTS held (at TEXT); DELETE FROM held; " +
          "INSERT INTO held VALUES (datetime('now')); COMMIT;",
      );
    } catch (error) {
      db.close();
      if (!/locked|busy/i.test((error as Error).message)) throw new StateDatabaseError(path, error);
      throw new StateLockedError(worker, stateDir, readHolder(holderPath));
    }
    const holder: LockHolder = {
      pid: Deno.pid,
      host: Deno.hostname(),
      startedAt: new Date().toISOString(),
      command,
    };
    try {
      Deno.writeTextFileSync(holderPath, JSON.stringify(holder) + "\n");
    } catch {
      // Only a courtesy for the next instance's message; the lock itself is held.
    }
    return new StateLock(db, holderPath);
  }

  /**
   * Whether a worker holds the lock of `worker` in `stateDir`, found without taking it or
   * writing anything: `undefined` when none runs, else who holds it when it wrote that.
   *
   * @example No worker has run here
   * ```ts
   * import { StateLock } from "./lock.ts";
   * console.log(StateLock.heldBy(await Deno.makeTempDir(), "codex")); // undefined
   * ```
   */
  static heldBy(stateDir: string, worker: string): { holder?: LockHolder } | undefined {
    const path = join(stateDir, `${worker}.lock`);
    let db: DatabaseSync;
    try {
      // Only a file: SQLite's open of a FIFO waits for a writer (no worker can hold one anyway).
      if (!Deno.statSync(path).isFile) return undefined;
      db = new DatabaseSync(path, { readOnly: true });
    } catch {
      return undefined;
    }
    try {
      // A holder keeps the file locked exclusively: even a read is refused at once.
      db.exec("PRAGMA busy_timeout=0");
      db.prepare("SELECT * FROM held").all();
      return undefined;
    } catch (error) {
      if (!/locked|busy/i.test((error as Error).message)) return undefined;
      return { holder: readHolder(`${path}.holder.json`) };
    } finally {
      db.close();
    }
  }

  /** Frees the lock. */
  release(): void {
    if (!this.#db) return;
    try {
      Deno.removeSync(this.holderPath);
    } catch {
      // Already gone: the lock itself is what counts.
    }
    this.#db.close();
    this.#db = undefined;
  }
}

function readHolder(path: string): LockHolder | undefined {
  try {
    const holder = JSON.parse(Deno.readTextFileSync(path));
    return typeof holder?.pid === "number" ? holder as LockHolder : undefined;
  } catch {
    return undefined;
  }
}
