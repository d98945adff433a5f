/**
 * A worker's own state database (docs/delivery.md): each unit's cursor and carry, batches with
 * their boundaries and Idempotency-Key, the dead-letter table and counters, on `node:sqlite`
 * with WAL and `synchronous=FULL`. A cursor moves only in {@link StateStore.commitBatch}, the
 * same transaction that records its batch as done. The schema and its migrations are in
 * `schema.ts`.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { StateDatabaseError } from "./errors.ts";
import { copyDatabase, cursorColumns, migrate, unitFromRow } from "./schema.ts";
import { cursorOf, type UnitState } from "../units/cursor.ts";

export { NewerSchemaError, StateDatabaseError, type StateFault } from "./errors.ts";
export type { UnitState } from "../units/cursor.ts";

export type { BatchRange, DeadLetter, Mark, PendingBatch } from "./records.ts";
import type { BatchRange, DeadLetter, Mark, PendingBatch } from "./records.ts";

/** A dead letter's columns, named as {@link DeadLetter}'s fields. */
const DEAD_LETTER = `id, batch_key AS batchKey, conversation_uuid AS conversationUuid, status,
  error, created_at AS createdAt, replayed_at AS replayedAt`;

/**
 * The state database.
 *
 * @example Commit a checkpoint with its batch
 * ```ts
 * import { StateStore } from "./state.ts";
 * const state = new StateStore(":memory:");
 * state.recordBatch("b_1", [{ unit: "/a.jsonl", from: 0, to: 10, fromLine: 0 }]);
 * state.commitBatch("b_1", [{
 *   key: "/a.jsonl", path: "/a.jsonl", kind: "appended", dev: 1, ino: 2, headLen: 10,
 *   headHash: "h", offset: 10, line: 1, tailHash: "t", carry: "{}", status: "active",
 * }], { messages: 1, conversations: 1 });
 * console.log(state.getUnit("/a.jsonl")?.offset); // 10
 * state.close();
 * ```
 */
export class StateStore {
  readonly #db: DatabaseSync;
  /** Statements by their SQL: preparing one costs more than running it. */
  readonly #statements = new Map<string, StatementSync>();

  /** Opens (creating or migrating if needed) the database at `path`; {@link StateDatabaseError} if it cannot. */
  constructor(readonly path: string, seed?: (db: DatabaseSync) => void) {
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(path);
      this.#db = db;
      seed?.(db);
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
   * A state in memory, holding a copy of the database at `path` if there is one (migrated in
   * memory when it is older): what a dry run works on, so that it shows what would be sent from
   * the real checkpoints and records nothing (no database is created, none is written).
   */
  static copyInMemory(path: string): StateStore {
    try {
      Deno.statSync(path);
    } catch {
      return new StateStore(":memory:");
    }
    let disk: DatabaseSync;
    try {
      disk = new DatabaseSync(path, { readOnly: true });
    } catch (error) {
      throw new StateDatabaseError(path, error);
    }
    try {
      return new StateStore(":memory:", (memory) => copyDatabase(disk, memory));
    } catch (error) {
      throw error instanceof StateDatabaseError ? new StateDatabaseError(path, error.cause) : error;
    } finally {
      disk.close();
    }
  }

  #open(): void {
    this.#db.exec("PRAGMA busy_timeout=10000; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;");
    // Read every page once: a damaged file is reported now, with its name, not mid-run.
    const check = this.#prepare("PRAGMA quick_check").all() as Record<string, string>[];
    const verdict = Object.values(check[0] ?? {})[0];
    if (verdict !== "ok") throw new Error(`database disk image is malformed (${verdict})`);
    migrate(this.#db);
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

  /** The state of one unit, if known. */
  getUnit(key: string): UnitState | undefined {
    return this.#guard(() => {
      const row = this.#prepare("SELECT * FROM units WHERE key = ?").get(key);
      return row ? unitFromRow(row as Record<string, string | number>) : undefined;
    });
  }

  /** The acknowledged offset of every known file, without its carried state (cheap to scan). */
  offsets(): Map<string, { offset: number; active: boolean; fileSize: number; mtimeMs: number }> {
    // Named as the summary's fields, so each row is one without copying.
    const rows = this.#guard(() =>
      this.#prepare(
        `SELECT key, offset, status = 'active' AS active, file_size AS fileSize,
           mtime_ms AS mtimeMs FROM units`,
      ).all() as {
        key: string;
        offset: number;
        active: number;
        fileSize: number;
        mtimeMs: number;
      }[]
    );
    return new Map(rows.map(({ key, active, ...r }) => [key, { ...r, active: active === 1 }]));
  }

  /** Known files with this device and inode (a moved file keeps them). */
  unitsByInode(dev: number, ino: number): UnitState[] {
    return this.#guard(() =>
      (this.#prepare("SELECT * FROM units WHERE dev = ? AND ino = ?").all(dev, ino) as Record<
        string,
        string | number
      >[]).map(unitFromRow)
    );
  }

  /** Every known file. */
  listUnits(): UnitState[] {
    return this.#guard(() =>
      (this.#prepare("SELECT * FROM units ORDER BY key").all() as Record<
        string,
        string | number
      >[]).map(unitFromRow)
    );
  }

  /** Writes a unit outside a batch: a reset to 0, a rename, or a deletion mark. */
  putUnit(unit: UnitState): void {
    this.#transaction(() => this.#putUnit(unit));
  }

  /** Records a batch's boundaries before its first send. */
  recordBatch(key: string, ranges: BatchRange[]): void {
    // Not synced on its own (a sync per batch was a tenth of a backfill's parsing thread): the
    // batch's commit syncs it with its checkpoints. A crash of the process keeps it (the system
    // holds the write); only a crash of the system can lose it, and with it only the batch's key:
    // the batch is then read again from its checkpoints with the same ids, which the server
    // deduplicates.
    this.#guard(() => {
      this.#db.exec("PRAGMA synchronous=NORMAL");
      try {
        this.#prepare(
          "INSERT OR REPLACE INTO pending_batches (key, ranges, created_at) VALUES (?, ?, ?)",
        ).run(key, JSON.stringify(ranges), new Date().toISOString());
      } finally {
        this.#db.exec("PRAGMA synchronous=FULL");
      }
    });
  }

  /** Batches recorded but never acknowledged (a crash or stop mid-send). */
  pendingBatches(): PendingBatch[] {
    return this.#guard(() =>
      (this.#prepare(
        "SELECT key, ranges FROM pending_batches ORDER BY rowid",
      ).all() as { key: string; ranges: string }[]).map((r) => ({
        key: r.key,
        ranges: JSON.parse(r.ranges),
      }))
    );
  }

  /** Drops a pending batch whose files changed since (the data is then read again normally). */
  abandonBatch(key: string): void {
    this.#guard(() => this.#prepare("DELETE FROM pending_batches WHERE key = ?").run(key));
  }

  /**
   * After the server acknowledged batch `key`: moves the checkpoints of its files, records its
   * `marks` (what it delivered of an export) and retires the batch record, adding `counts` to
   * the counters, all in one transaction.
   */
  commitBatch(
    key: string,
    units: UnitState[],
    counts: Record<string, number>,
    marks: readonly Mark[] = [],
  ): void {
    this.#transaction(() => {
      for (const unit of units) this.#putUnit(unit);
      const put = this.#prepare("INSERT OR REPLACE INTO fingerprints VALUES (?, ?)");
      for (const [name, value] of marks) put.run(name, value);
      // Only pending batches matter after a crash; a done one is dropped with its commit.
      this.#prepare("DELETE FROM pending_batches WHERE key = ?").run(key);
      for (const [name, n] of Object.entries(counts)) this.#add(name, n);
    });
  }

  /** What was recorded under `key` when a batch that carried it was acknowledged. */
  fingerprint(key: string): string | undefined {
    return this.#guard(() =>
      (this.#prepare("SELECT value FROM fingerprints WHERE key = ?").get(key) as
        | { value: string }
        | undefined)?.value
    );
  }

  /** The fingerprints whose key starts with `prefix`. */
  fingerprintsLike(prefix: string): [string, string][] {
    const rows = this.#guard(() =>
      this.#prepare("SELECT key, value FROM fingerprints WHERE key >= ? AND key < ?")
        .all(prefix, `${prefix}\uffff`) as { key: string; value: string }[]
    );
    return rows.map((r) => [r.key, r.value]);
  }

  /** Records `value` under `key` outside a batch (an intake's own bookkeeping). */
  putFingerprint(key: string, value: string): void {
    this.#guard(() =>
      this.#prepare("INSERT OR REPLACE INTO fingerprints VALUES (?, ?)").run(key, value)
    );
  }

  /** Forgets what was delivered, counts too, but the fingerprints under `keep` and dead letters. */
  startOver(keep: readonly string[]): void {
    this.#transaction(() => {
      this.#db.exec(`DELETE FROM units; DELETE FROM pending_batches; DELETE FROM conversation_units;
        DELETE FROM counters WHERE name <> 'dead_lettered'`);
      const kept = keep.map(() => "substr(key, 1, length(?)) <> ?").join(" AND ") || "1";
      this.#prepare(`DELETE FROM fingerprints WHERE ${kept}`).run(...keep.flatMap((k) => [k, k]));
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
      this.#prepare(
        "INSERT INTO dead_letters (batch_key, conversation_uuid, status, error, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)",
      ).run(batchKey, conversationUuid, status, error, payload, new Date().toISOString());
      this.#add("dead_lettered", 1);
    });
  }

  /** Dead-lettered records, newest first; with `pendingOnly`, those not replayed yet. */
  deadLetters(limit = 100, pendingOnly = false): DeadLetter[] {
    return this.#guard(() => (this.#prepare(
      `SELECT ${DEAD_LETTER} FROM dead_letters ${pendingOnly ? "WHERE replayed_at = ''" : ""}
         ORDER BY id DESC LIMIT ?`,
    ).all(limit) as unknown as DeadLetter[]));
  }

  /** One dead letter with its payload (the conversation as it was sent), if it exists. */
  deadLetterById(id: number): (DeadLetter & { payload: string }) | undefined {
    return this.#guard(() =>
      this.#prepare(`SELECT ${DEAD_LETTER}, payload FROM dead_letters WHERE id = ?`)
        .get(id) as unknown as (DeadLetter & { payload: string }) | undefined
    );
  }

  /** Marks a dead letter as delivered by a replay. */
  markReplayed(id: number): void {
    this.#guard(() =>
      this.#prepare("UPDATE dead_letters SET replayed_at = ? WHERE id = ?").run(
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
      this.#prepare(
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
      this.#prepare("SELECT name, value FROM counters").all() as {
        name: string;
        value: number;
      }[]
    );
    for (const r of rows) out[r.name] = r.value;
    return out;
  }

  #prepare(sql: string): StatementSync {
    let statement = this.#statements.get(sql);
    if (!statement) this.#statements.set(sql, statement = this.#db.prepare(sql));
    return statement;
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
    this.#prepare(
      "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
    ).run(name, n);
  }

  #putUnit(u: UnitState): void {
    const totals = u.totals ?? "";
    if (totals) {
      this.#prepare("DELETE FROM conversation_units WHERE unit = ?").run(u.key);
      const link = this.#prepare(
        "INSERT OR IGNORE INTO conversation_units (conversation, unit) VALUES (?, ?)",
      );
      for (const conversation of Object.keys(JSON.parse(totals))) link.run(conversation, u.key);
    }
    const c = cursorColumns(cursorOf(u));
    this.#prepare(
      `INSERT OR REPLACE INTO units (key, path, kind, cursor, carry, status, totals, moved_from,
         dev, ino, offset, file_size, mtime_ms, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      u.key,
      u.path,
      c.kind,
      c.cursor,
      u.carry,
      u.status,
      totals,
      u.movedFrom ?? "",
      c.dev,
      c.ino,
      c.offset,
      c.fileSize,
      c.mtimeMs,
      new Date().toISOString(),
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
