/**
 * The state database's schema and its migrations. The version is SQLite's `user_version`:
 *
 * - 0 with a `units` table: version 1, written before the schema had a number. One row per file
 *   with the line position in columns (`head_len`, `offset`, `tail_hash`, ...), whole documents
 *   marked by an empty `head_hash`; the oldest files lack `file_size`/`mtime_ms`,
 *   `totals`/`moved_from` and `dead_letters.replayed_at`.
 * - 2: each unit has a `kind` and its cursor as JSON ({@link Cursor}); the columns beside it
 *   (`dev`, `ino`, `offset`, `file_size`, `mtime_ms`) are copies kept for lookups by inode and
 *   for the cheap scan that skips unchanged files.
 * - 3: `fingerprints`, what exports delivered (an export's content hash, each conversation's and
 *   message's fingerprint), so that the same content under any file name sends nothing again.
 *
 * A migration runs in one transaction on first open: either the whole database is converted or
 * nothing is. A database from a newer version is refused, untouched.
 *
 * @module
 */
import type { DatabaseSync } from "node:sqlite";
import { NewerSchemaError } from "./errors.ts";
import type { Cursor, UnitState } from "../units/cursor.ts";

/** The schema version this code writes. */
export const SCHEMA_VERSION = 3;

const UNITS_V2 = `
  CREATE TABLE units (
    key TEXT PRIMARY KEY, path TEXT NOT NULL, kind TEXT NOT NULL, cursor TEXT NOT NULL,
    carry TEXT NOT NULL, status TEXT NOT NULL, totals TEXT NOT NULL DEFAULT '',
    moved_from TEXT NOT NULL DEFAULT '', dev INTEGER, ino INTEGER, offset INTEGER NOT NULL,
    file_size INTEGER NOT NULL DEFAULT -1, mtime_ms REAL NOT NULL DEFAULT -1,
    updated_at TEXT NOT NULL);
  CREATE INDEX units_inode ON units (dev, ino);`;

/** Tables whose shape is the same in every version (created when missing). */
const SHARED_TABLES = `
  CREATE TABLE IF NOT EXISTS pending_batches (
    key TEXT PRIMARY KEY, ranges TEXT NOT NULL, created_at TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT, batch_key TEXT NOT NULL, conversation_uuid TEXT NOT NULL,
    status INTEGER NOT NULL, error TEXT NOT NULL, payload TEXT NOT NULL, created_at TEXT NOT NULL,
    replayed_at TEXT NOT NULL DEFAULT '');
  CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS conversation_units (
    conversation TEXT NOT NULL, unit TEXT NOT NULL, PRIMARY KEY (conversation, unit));
  CREATE TABLE IF NOT EXISTS fingerprints (key TEXT PRIMARY KEY, value TEXT NOT NULL)
    WITHOUT ROWID;`;

/**
 * The cursor of a version 1 row, as SQL: a row with an empty `head_hash` was a document read
 * whole (its `tail_hash` the hash of its content); a `.zst` file a compressed copy, the only
 * kind of compressed unit version 1 had; any other an appended file.
 */
const V1_CURSOR = `
  CASE
    WHEN head_hash = '' THEN json_object('kind', 'snapshot', 'dev', dev, 'ino', ino,
      'offset', offset, 'fileSize', file_size, 'mtimeMs', mtime_ms, 'hash', tail_hash)
    ELSE json_object('kind', CASE WHEN key LIKE '%.zst' THEN 'compressed' ELSE 'appended' END,
      'dev', dev, 'ino', ino, 'offset', offset, 'fileSize', file_size, 'mtimeMs', mtime_ms,
      'headLen', head_len, 'headHash', head_hash, 'line', line, 'tailHash', tail_hash)
  END`;

/**
 * Brings the database to {@link SCHEMA_VERSION}, creating it when empty; returns the version it
 * found (0 for a new database, 1 for one written before versions were numbered).
 *
 * @example Create a new database
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import { migrate, SCHEMA_VERSION } from "./schema.ts";
 * const db = new DatabaseSync(":memory:");
 * console.log(migrate(db), SCHEMA_VERSION); // 0 3
 * ```
 */
export function migrate(db: DatabaseSync): number {
  const found = schemaVersion(db);
  if (found > SCHEMA_VERSION) throw new NewerSchemaError(found, SCHEMA_VERSION);
  if (found === SCHEMA_VERSION) return found;
  db.exec("BEGIN IMMEDIATE");
  try {
    if (found === 1) fromVersion1(db);
    else if (found === 0) db.exec(UNITS_V2);
    // Version 2 to 3 adds a table: the shared tables below create it.
    db.exec(SHARED_TABLES);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    db.exec("COMMIT");
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK");
    throw error;
  }
  return found;
}

/** The schema version of `db`: its `user_version`, or 1 for an unnumbered database with units. */
function schemaVersion(db: DatabaseSync): number {
  const version = Number(
    (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
  );
  if (version !== 0) return version;
  return columns(db, "units").length > 0 ? 1 : 0;
}

function columns(db: DatabaseSync, table: string): string[] {
  return (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);
}

/** Version 1 to 2: the columns the oldest files lack, then each unit's kind and cursor. */
function fromVersion1(db: DatabaseSync): void {
  const have = columns(db, "units");
  if (!have.includes("file_size")) {
    db.exec(`ALTER TABLE units ADD COLUMN file_size INTEGER NOT NULL DEFAULT -1;
             ALTER TABLE units ADD COLUMN mtime_ms REAL NOT NULL DEFAULT -1;`);
  }
  if (!have.includes("totals")) {
    db.exec(`ALTER TABLE units ADD COLUMN totals TEXT NOT NULL DEFAULT '';
             ALTER TABLE units ADD COLUMN moved_from TEXT NOT NULL DEFAULT '';`);
  }
  if (
    columns(db, "dead_letters").length > 0 && !columns(db, "dead_letters").includes("replayed_at")
  ) {
    db.exec("ALTER TABLE dead_letters ADD COLUMN replayed_at TEXT NOT NULL DEFAULT ''");
  }
  db.exec(`
    DROP INDEX IF EXISTS units_inode;
    ALTER TABLE units RENAME TO units_v1;
    ${UNITS_V2}
    INSERT INTO units (key, path, kind, cursor, carry, status, totals, moved_from, dev, ino,
                       offset, file_size, mtime_ms, updated_at)
      SELECT key, path, json_extract(c, '$.kind'), c, carry, status, totals, moved_from, dev, ino,
             offset, file_size, mtime_ms, updated_at
      FROM (SELECT *, ${V1_CURSOR} AS c FROM units_v1);
    DROP TABLE units_v1;`);
}

/**
 * The row of the `units` table that holds a cursor: the cursor as JSON and the copies of its
 * fields the lookups use.
 *
 * @example The columns of a snapshot
 * ```ts
 * import { cursorColumns } from "./schema.ts";
 * cursorColumns({ kind: "snapshot", dev: 1, ino: 2, offset: 3, fileSize: 3, mtimeMs: 4, hash: "h" });
 * ```
 */
export function cursorColumns(cursor: Cursor): {
  kind: string;
  cursor: string;
  dev: number;
  ino: number;
  offset: number;
  fileSize: number;
  mtimeMs: number;
} {
  return {
    kind: cursor.kind,
    cursor: JSON.stringify(cursor),
    dev: cursor.dev,
    ino: cursor.ino,
    offset: cursor.offset,
    fileSize: cursor.fileSize ?? -1,
    mtimeMs: cursor.mtimeMs ?? -1,
  };
}

/**
 * A unit's state from its row in the `units` table.
 *
 * @example Read a row back
 * ```ts
 * import { unitFromRow } from "./schema.ts";
 * const unit = unitFromRow({
 *   key: "/a.json", path: "/a.json", carry: "", status: "active", totals: "", moved_from: "",
 *   file_size: 3, mtime_ms: 4,
 *   cursor: '{"kind":"snapshot","dev":1,"ino":2,"offset":3,"hash":"h"}',
 * });
 * console.log(unit.kind); // "snapshot"
 * ```
 */
export function unitFromRow(r: Record<string, string | number>): UnitState {
  const cursor = JSON.parse(String(r.cursor)) as Cursor;
  return {
    ...cursor,
    // The columns say -1 where the cursor left the version unrecorded.
    fileSize: Number(r.file_size),
    mtimeMs: Number(r.mtime_ms),
    key: String(r.key),
    path: String(r.path),
    carry: String(r.carry),
    status: r.status === "deleted" ? "deleted" : "active",
    totals: String(r.totals),
    movedFrom: String(r.moved_from),
  };
}

/**
 * Copies every table of `from` into the empty `to` as it is, schema version included, so that
 * opening `to` migrates the copy and never the original.
 *
 * @example Copy a database into memory
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import { copyDatabase } from "./schema.ts";
 * const from = new DatabaseSync(":memory:");
 * from.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1); PRAGMA user_version = 1");
 * const to = new DatabaseSync(":memory:");
 * copyDatabase(from, to);
 * ```
 */
export function copyDatabase(from: DatabaseSync, to: DatabaseSync): void {
  const objects = from.prepare(
    `SELECT type, name, sql FROM sqlite_master
     WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY type = 'index', rowid`,
  ).all() as { type: string; name: string; sql: string }[];
  for (const object of objects) to.exec(object.sql);
  for (const { name } of objects.filter((o) => o.type === "table")) {
    const rows = from.prepare(`SELECT * FROM "${name}"`).all() as Record<string, unknown>[];
    if (rows.length === 0) continue;
    const names = Object.keys(rows[0]);
    const insert = to.prepare(
      `INSERT INTO "${name}" (${names.map((n) => `"${n}"`).join(", ")}) VALUES (${
        names.map(() => "?").join(", ")
      })`,
    );
    for (const row of rows) insert.run(...names.map((n) => row[n] as string | number | null));
  }
  const version = (from.prepare("PRAGMA user_version").get() as { user_version: number })
    .user_version;
  to.exec(`PRAGMA user_version = ${Number(version)}`);
}
