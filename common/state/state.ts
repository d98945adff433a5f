/**
 * A worker's own state database (docs/delivery.md): per-file checkpoints, batches with their
 * boundaries and Idempotency-Key, the dead-letter table and counters, on `node:sqlite` with WAL
 * and `synchronous=FULL`. A checkpoint moves only in {@link StateStore.commitBatch}, the same
 * transaction that records its batch as done.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { dirname } from "node:path";

/** Where reading of one file stands. */
export interface UnitState {
  /** The unit's key (its absolute path). */
  key: string;
  path: string;
  dev: number;
  ino: number;
  /** How many leading bytes `headHash` covers (grows until it reaches the head size). */
  headLen: number;
  headHash: string;
  /** Acknowledged byte offset, always at a line boundary. */
  offset: number;
  /** Lines before `offset`. */
  line: number;
  /** Hash of the bytes just before `offset`. */
  tailHash: string;
  /** The parser's carry at `offset`, as JSON. */
  carry: string;
  /** `active`, or `deleted` once the file is gone (what was delivered stays delivered). */
  status: "active" | "deleted";
  /**
   * Size and mtime of the file when it was last read to the end, for files whose offset is not
   * a position in the file itself (rewritten whole, or compressed); -1 when not recorded.
   */
  fileSize?: number;
  mtimeMs?: number;
  /**
   * What this file contributes to each conversation (JSON of `ParseOutput.totals`), for the
   * conversations that span several files; `""` when its parser reports none.
   */
  totals?: string;
  /** The unit this one continues (a moved or compressed file), which no longer counts. */
  movedFrom?: string;
}

/** One file's part of a batch: the bytes `[from, to)` and what the checkpoint becomes. */
export interface BatchRange {
  unit: string;
  from: number;
  to: number;
  fromLine: number;
}

/** A batch recorded before its first send. */
export interface PendingBatch {
  key: string;
  ranges: BatchRange[];
}

/** A record that the server refused for good, kept locally so nothing is lost. */
export interface DeadLetter {
  id: number;
  batchKey: string;
  conversationUuid: string;
  status: number;
  error: string;
  createdAt: string;
  /** When `dead-letters replay` delivered it, or `""`. */
  replayedAt: string;
}

/** What went wrong with the state database, which decides what the user is told to do. */
export type StateFault = "full" | "readonly" | "cantopen" | "corrupt" | "locked" | "other";

/** SQLite result codes (`errcode`) by fault. */
const FAULT_CODES: Record<number, StateFault> = {
  13: "full",
  8: "readonly",
  14: "cantopen",
  11: "corrupt",
  26: "corrupt",
  5: "locked",
  6: "locked",
};

function faultOf(error: unknown): StateFault {
  const code = (error as { errcode?: number }).errcode;
  if (code !== undefined && FAULT_CODES[code & 0xff]) return FAULT_CODES[code & 0xff];
  const message = error instanceof Error ? error.message : String(error);
  if (/disk is full|no space/i.test(message)) return "full";
  if (/readonly|read-only|permission denied|access denied/i.test(message)) return "readonly";
  if (/unable to open/i.test(message)) return "cantopen";
  if (/malformed|not a database|corrupt/i.test(message)) return "corrupt";
  if (/locked|busy/i.test(message)) return "locked";
  return "other";
}

/**
 * The state database cannot be used; the message names the file, what went wrong and what to
 * do (free space, fix permissions, move a damaged file aside), and `fault` says which.
 *
 * @example Tell a full disk from damage
 * ```ts
 * import { StateDatabaseError } from "./state.ts";
 * const error = new StateDatabaseError("/s/x.state.db", new Error("database or disk is full"));
 * console.log(error.fault, error.message);
 * ```
 */
export class StateDatabaseError extends Error {
  override name = "StateDatabaseError";
  /** What went wrong. */
  readonly fault: StateFault;

  /** Wraps `cause`, an error of the database at `path`. */
  constructor(readonly path: string, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    const fault = faultOf(cause);
    const dir = dirname(path);
    const advice: Record<StateFault, string> = {
      full: `cannot be written: the disk is full (${why}); free some space: delivery waits ` +
        `and nothing is lost`,
      readonly: `cannot be written (${why}); make ${dir} writable again (permissions, a ` +
        `read-only mount): the database itself is intact, keep it`,
      cantopen: `cannot be opened (${why}); check that ${dir} exists and is writable`,
      corrupt: `is unreadable: it is damaged (${why}); move it aside to start over: ` +
        `everything is then read again and the server keeps each message once`,
      locked: `is locked by another process (${why})`,
      other: why,
    };
    super(`state database ${path} ${fault === "other" ? ": " : ""}${advice[fault]}`);
    this.fault = fault;
  }
}

/**
 * The state database.
 *
 * @example Commit a checkpoint with its batch
 * ```ts
 * import { StateStore } from "./state.ts";
 * const state = new StateStore(":memory:");
 * state.recordBatch("b_1", [{ unit: "/a.jsonl", from: 0, to: 10, fromLine: 0 }]);
 * state.commitBatch("b_1", [{
 *   key: "/a.jsonl", path: "/a.jsonl", dev: 1, ino: 2, headLen: 10, headHash: "h",
 *   offset: 10, line: 1, tailHash: "t", carry: "{}", status: "active",
 * }], { messages: 1, conversations: 1 });
 * console.log(state.getUnit("/a.jsonl")?.offset); // 10
 * state.close();
 * ```
 */
export class StateStore {
  readonly #db: DatabaseSync;

  /** Opens (creating if needed) the database at `path`; {@link StateDatabaseError} if it cannot. */
  constructor(readonly path: string) {
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(path);
      this.#db = db;
      this.#open();
    } catch (error) {
      try {
        db?.close();
      } catch {
        // The error being reported matters, not this one.
      }
      throw new StateDatabaseError(path, error);
    }
  }

  /**
   * A state in memory, holding a copy of the database at `path` if there is one: what a dry run
   * works on, so that it shows what would be sent from the real checkpoints and records
   * nothing (no database is created, none is written).
   */
  static copyInMemory(path: string): StateStore {
    const store = new StateStore(":memory:");
    try {
      Deno.statSync(path);
    } catch {
      return store;
    }
    let disk: DatabaseSync;
    try {
      disk = new DatabaseSync(path, { readOnly: true });
    } catch (error) {
      throw new StateDatabaseError(path, error);
    }
    try {
      for (const table of ["units", "pending_batches", "dead_letters", "counters"]) {
        const rows = disk.prepare(`SELECT * FROM ${table}`).all() as Record<string, unknown>[];
        if (rows.length === 0) continue;
        const columns = Object.keys(rows[0]);
        const insert = store.#db.prepare(
          `INSERT INTO ${table} (${columns.join(", ")}) VALUES (${
            columns.map(() => "?").join(", ")
          })`,
        );
        for (const row of rows) {
          insert.run(...columns.map((c) => row[c] as string | number | null));
        }
      }
    } catch (error) {
      throw new StateDatabaseError(path, error);
    } finally {
      disk.close();
    }
    return store;
  }

  #open(): void {
    this.#db.exec(`
      PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=10000;
      CREATE TABLE IF NOT EXISTS units (
        key TEXT PRIMARY KEY, path TEXT NOT NULL, dev INTEGER NOT NULL, ino INTEGER NOT NULL,
        head_len INTEGER NOT NULL, head_hash TEXT NOT NULL, offset INTEGER NOT NULL,
        line INTEGER NOT NULL, tail_hash TEXT NOT NULL, carry TEXT NOT NULL, status TEXT NOT NULL,
        updated_at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS pending_batches (
        key TEXT PRIMARY KEY, ranges TEXT NOT NULL, created_at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT, batch_key TEXT NOT NULL, conversation_uuid TEXT NOT NULL,
        status INTEGER NOT NULL, error TEXT NOT NULL, payload TEXT NOT NULL, created_at TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS conversation_units (
        conversation TEXT NOT NULL, unit TEXT NOT NULL, PRIMARY KEY (conversation, unit));
    `);
    // Read every page once: a damaged file is reported now, with its name, not mid-run.
    const check = this.#db.prepare("PRAGMA quick_check").all() as Record<string, string>[];
    const verdict = Object.values(check[0] ?? {})[0];
    if (verdict !== "ok") throw new Error(`database disk image is malformed (${verdict})`);
    // A new file is looked up by inode, to tell a moved file from a new one.
    this.#db.exec("CREATE INDEX IF NOT EXISTS units_inode ON units (dev, ino)");
    const columns = (this.#db.prepare("PRAGMA table_info(units)").all() as { name: string }[])
      .map((c) => c.name);
    // Databases written before whole-file and compressed units lack these two columns.
    if (!columns.includes("file_size")) {
      this.#db.exec(`
        ALTER TABLE units ADD COLUMN file_size INTEGER NOT NULL DEFAULT -1;
        ALTER TABLE units ADD COLUMN mtime_ms REAL NOT NULL DEFAULT -1;
      `);
    }
    if (!columns.includes("totals")) {
      this.#db.exec(`
        ALTER TABLE units ADD COLUMN totals TEXT NOT NULL DEFAULT '';
        ALTER TABLE units ADD COLUMN moved_from TEXT NOT NULL DEFAULT '';
      `);
    }
    const dlColumns = (this.#db.prepare("PRAGMA table_info(dead_letters)").all() as {
      name: string;
    }[]).map((c) => c.name);
    if (!dlColumns.includes("replayed_at")) {
      this.#db.exec("ALTER TABLE dead_letters ADD COLUMN replayed_at TEXT NOT NULL DEFAULT ''");
    }
  }

  /** Runs `fn`, turning a database error into a {@link StateDatabaseError} naming the file. */
  #guard<T>(fn: () => T): T {
    try {
      return fn();
    } catch (error) {
      if (error instanceof StateDatabaseError) throw error;
      throw new StateDatabaseError(this.path, error);
    }
  }

  /** The state of one file, if known. */
  getUnit(key: string): UnitState | undefined {
    return this.#guard(() => {
      const row = this.#db.prepare("SELECT * FROM units WHERE key = ?").get(key);
      return row ? rowToUnit(row as Record<string, string | number>) : undefined;
    });
  }

  /** The acknowledged offset of every known file, without its carried state (cheap to scan). */
  offsets(): Map<string, { offset: number; active: boolean; fileSize: number; mtimeMs: number }> {
    const rows = this.#guard(() =>
      this.#db.prepare("SELECT key, offset, status, file_size, mtime_ms FROM units").all() as {
        key: string;
        offset: number;
        status: string;
        file_size: number;
        mtime_ms: number;
      }[]
    );
    return new Map(
      rows.map((r) => [r.key, {
        offset: r.offset,
        active: r.status === "active",
        fileSize: r.file_size,
        mtimeMs: r.mtime_ms,
      }]),
    );
  }

  /** Known files with this device and inode (a moved file keeps them). */
  unitsByInode(dev: number, ino: number): UnitState[] {
    return this.#guard(() =>
      (this.#db.prepare("SELECT * FROM units WHERE dev = ? AND ino = ?").all(dev, ino) as Record<
        string,
        string | number
      >[]).map(rowToUnit)
    );
  }

  /** Every known file. */
  listUnits(): UnitState[] {
    return this.#guard(() =>
      (this.#db.prepare("SELECT * FROM units ORDER BY key").all() as Record<
        string,
        string | number
      >[]).map(rowToUnit)
    );
  }

  /** Writes a unit outside a batch: a reset to 0, a rename, or a deletion mark. */
  putUnit(unit: UnitState): void {
    this.#transaction(() => this.#putUnit(unit));
  }

  /** Records a batch's boundaries before its first send. */
  recordBatch(key: string, ranges: BatchRange[]): void {
    this.#guard(() =>
      this.#db.prepare(
        "INSERT OR REPLACE INTO pending_batches (key, ranges, created_at) VALUES (?, ?, ?)",
      ).run(key, JSON.stringify(ranges), new Date().toISOString())
    );
  }

  /** Batches recorded but never acknowledged (a crash or stop mid-send). */
  pendingBatches(): PendingBatch[] {
    return this.#guard(() =>
      (this.#db.prepare(
        "SELECT key, ranges FROM pending_batches ORDER BY rowid",
      ).all() as { key: string; ranges: string }[]).map((r) => ({
        key: r.key,
        ranges: JSON.parse(r.ranges),
      }))
    );
  }

  /** Drops a pending batch whose files changed since (the data is then read again normally). */
  abandonBatch(key: string): void {
    this.#guard(() => this.#db.prepare("DELETE FROM pending_batches WHERE key = ?").run(key));
  }

  /**
   * After the server acknowledged batch `key`: moves the checkpoints of its files and retires
   * the batch record, adding `counts` to the counters, all in one transaction.
   */
  commitBatch(key: string, units: UnitState[], counts: Record<string, number>): void {
    this.#transaction(() => {
      for (const unit of units) this.#putUnit(unit);
      // Only pending batches matter after a crash; a done one is dropped with its commit.
      this.#db.prepare("DELETE FROM pending_batches WHERE key = ?").run(key);
      for (const [name, n] of Object.entries(counts)) this.#add(name, n);
    });
  }

  /** Keeps a conversation the server refused for good. */
  deadLetter(
    batchKey: string,
    conversationUuid: string,
    status: number,
    error: string,
    payload: string,
  ): void {
    this.#transaction(() => {
      this.#db.prepare(
        "INSERT INTO dead_letters (batch_key, conversation_uuid, status, error, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      ).run(batchKey, conversationUuid, status, error, payload, new Date().toISOString());
      this.#add("dead_lettered", 1);
    });
  }

  /** Dead-lettered records, newest first; with `pendingOnly`, those not replayed yet. */
  deadLetters(limit = 100, pendingOnly = false): DeadLetter[] {
    return this.#guard(() =>
      (this.#db.prepare(
        `SELECT id, batch_key, conversation_uuid, status, error, created_at, replayed_at
         FROM dead_letters ${pendingOnly ? "WHERE replayed_at = ''" : ""}
         ORDER BY id DESC LIMIT ?`,
      ).all(limit) as Record<string, string | number>[]).map(rowToDeadLetter)
    );
  }

  /** One dead letter with its payload (the conversation as it was sent), if it exists. */
  deadLetterById(id: number): (DeadLetter & { payload: string }) | undefined {
    return this.#guard(() => {
      const row = this.#db.prepare(
        `SELECT id, batch_key, conversation_uuid, status, error, created_at, replayed_at, payload
         FROM dead_letters WHERE id = ?`,
      ).get(id) as Record<string, string | number> | undefined;
      return row ? { ...rowToDeadLetter(row), payload: String(row.payload) } : undefined;
    });
  }

  /** Marks a dead letter as delivered by a replay. */
  markReplayed(id: number): void {
    this.#guard(() =>
      this.#db.prepare("UPDATE dead_letters SET replayed_at = ? WHERE id = ?").run(
        new Date().toISOString(),
        id,
      )
    );
  }

  /**
   * What each file contributes to a conversation (`ParseOutput.totals` of its last commit),
   * by unit key, leaving out files that another file continues (moved or compressed).
   */
  contributions(conversation: string): Map<string, string> {
    const rows = this.#guard(() =>
      this.#db.prepare(
        `SELECT u.key, u.totals FROM conversation_units c JOIN units u ON u.key = c.unit
         WHERE c.conversation = ?
           AND NOT EXISTS (SELECT 1 FROM units m WHERE m.moved_from = u.key)`,
      ).all(conversation) as { key: string; totals: string }[]
    );
    return new Map(rows.map((r) => [r.key, r.totals]));
  }

  /** All counters. */
  counters(): Record<string, number> {
    const out: Record<string, number> = {};
    const rows = this.#guard(() =>
      this.#db.prepare("SELECT name, value FROM counters").all() as {
        name: string;
        value: number;
      }[]
    );
    for (const r of rows) out[r.name] = r.value;
    return out;
  }

  /** Closes the database. */
  close(): void {
    this.#db.close();
  }

  /** Adds `n` to the counter `name`. */
  addCounter(name: string, n: number): void {
    this.#guard(() => this.#add(name, n));
  }

  #add(name: string, n: number): void {
    this.#db.prepare(
      "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
    ).run(name, n);
  }

  #putUnit(u: UnitState): void {
    const totals = u.totals ?? "";
    if (totals) {
      this.#db.prepare("DELETE FROM conversation_units WHERE unit = ?").run(u.key);
      const link = this.#db.prepare(
        "INSERT OR IGNORE INTO conversation_units (conversation, unit) VALUES (?, ?)",
      );
      for (const conversation of Object.keys(JSON.parse(totals))) link.run(conversation, u.key);
    }
    this.#db.prepare(
      `INSERT OR REPLACE INTO units (key, path, dev, ino, head_len, head_hash, offset, line, tail_hash, carry, status, updated_at, file_size, mtime_ms, totals, moved_from)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      u.key,
      u.path,
      u.dev,
      u.ino,
      u.headLen,
      u.headHash,
      u.offset,
      u.line,
      u.tailHash,
      u.carry,
      u.status,
      new Date().toISOString(),
      u.fileSize ?? -1,
      u.mtimeMs ?? -1,
      totals,
      u.movedFrom ?? "",
    );
  }

  /**
   * Runs `fn` in one transaction. When it fails, the failure itself is reported: a rollback
   * that cannot run (SQLite already rolled back, say after a full disk) does not hide it.
   */
  #transaction(fn: () => void): void {
    this.#guard(() => {
      this.#db.exec("BEGIN IMMEDIATE");
      try {
        fn();
        this.#db.exec("COMMIT");
      } catch (error) {
        if (this.#db.isTransaction) {
          try {
            this.#db.exec("ROLLBACK");
          } catch {
            // The cause is what matters; SQLite ends the transaction when the connection closes.
          }
        }
        throw error;
      }
    });
  }
}

function rowToDeadLetter(r: Record<string, string | number>): DeadLetter {
  return {
    id: Number(r.id),
    batchKey: String(r.batch_key),
    conversationUuid: String(r.conversation_uuid),
    status: Number(r.status),
    error: String(r.error),
    createdAt: String(r.created_at),
    replayedAt: String(r.replayed_at ?? ""),
  };
}

function rowToUnit(r: Record<string, string | number>): UnitState {
  return {
    key: String(r.key),
    path: String(r.path),
    dev: Number(r.dev),
    ino: Number(r.ino),
    headLen: Number(r.head_len),
    headHash: String(r.head_hash),
    offset: Number(r.offset),
    line: Number(r.line),
    tailHash: String(r.tail_hash),
    carry: String(r.carry),
    status: r.status === "deleted" ? "deleted" : "active",
    fileSize: r.file_size === undefined ? -1 : Number(r.file_size),
    mtimeMs: r.mtime_ms === undefined ? -1 : Number(r.mtime_ms),
    totals: r.totals === undefined ? "" : String(r.totals),
    movedFrom: r.moved_from === undefined ? "" : String(r.moved_from),
  };
}
