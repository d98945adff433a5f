/**
 * Where reading of a unit stands: a typed cursor, one kind per kind of unit (after Vector's
 * file-source checkpoints: a versioned state whose entries say what kind of fingerprint they
 * hold).
 *
 * - `appended`: a file written by appending lines. The file's identity (device, inode, a hash
 *   of its first bytes), the acknowledged byte offset at a line boundary, and a hash of the bytes
 *   just before it, which must still match for reading to resume there.
 * - `compressed`: a compressed copy of such a file (`.jsonl.zst`): the same position, counted in
 *   the decompressed content, with the compressed file's identity.
 * - `snapshot`: a document rewritten whole: the version last delivered (its size, mtime and a
 *   hash of its content). What was delivered of it, a fingerprint per record, is in the carry
 *   the parser keeps, so a new version sends only the records that changed.
 *
 * A unit's state is its key and path, its cursor, the parser's carry and what it contributes to
 * conversations spanning several units ({@link UnitState}).
 *
 * @module
 */

/** A file's identity as `stat` gives it. */
export interface FileIdentity {
  dev: number;
  ino: number;
}

/** What every cursor has: how far the unit has been delivered, and the version last checked. */
export interface CursorBase extends FileIdentity {
  /**
   * Bytes of the unit's content delivered: a position in the lines of an appended or
   * compressed file, the size of the version delivered for a snapshot.
   */
  offset: number;
  /**
   * Size and mtime of the file when it was last read to the end or checked unchanged, so that a
   * check can skip it unopened; -1 (or absent) when not recorded.
   */
  fileSize?: number;
  mtimeMs?: number;
}

/** An acknowledged position in a file of lines. */
export interface LinePosition extends CursorBase {
  /** How many leading bytes `headHash` covers (grows until it reaches the head size). */
  headLen: number;
  headHash: string;
  /** Lines before `offset`. */
  line: number;
  /** Hash of the bytes just before `offset`. */
  tailHash: string;
  /**
   * Where the line after `offset`, not ended yet, was read up to (absent: not read): the next
   * check looks for its end from there.
   */
  scanned?: number;
}

/** The cursor of a file written by appending lines. */
export interface AppendedCursor extends LinePosition {
  kind: "appended";
}

/** The cursor of a compressed copy of such a file, counted in its decompressed content. */
export interface CompressedCursor extends LinePosition {
  kind: "compressed";
}

/** The cursor of a document rewritten whole: the version delivered. */
export interface SnapshotCursor extends CursorBase {
  kind: "snapshot";
  /** A hash of the whole content of the version delivered. */
  hash: string;
  /**
   * For an export imported with errors: what it was read under (the version of ai-sync, the
   * record size limit). It is read again under other conditions.
   */
  incompleteUnder?: string;
}

/** The cursor of a unit, by its kind. */
export type Cursor = AppendedCursor | CompressedCursor | SnapshotCursor;

/** The kinds of unit. */
export type CursorKind = Cursor["kind"];

/** What every unit's state has besides its cursor. */
export interface UnitBase {
  /** The unit's key (a file's absolute path). */
  key: string;
  path: string;
  /** The parser's carry at the cursor, as JSON (`""` before the first parse). */
  carry: string;
  /** `active`, or `deleted` once the file is gone (what was delivered stays delivered). */
  status: "active" | "deleted";
  /**
   * What this unit contributes to each conversation (JSON of `ParseOutput.totals`), for
   * conversations that span several units; `""` when its parser reports none.
   */
  totals?: string;
  /** The unit this one continues (a moved or compressed file), which no longer counts. */
  movedFrom?: string;
}

/** A unit's state: its key, path, carry and cursor. */
export type UnitState = UnitBase & Cursor;

/** The state of a unit of lines (appended or compressed). */
export type LineUnit = UnitBase & (AppendedCursor | CompressedCursor);

/** The state of a document rewritten whole. */
export type SnapshotUnit = UnitBase & SnapshotCursor;

/**
 * Whether a unit is one of lines (its cursor has a position in the file's lines).
 *
 * @example Tell the kinds apart
 * ```ts
 * import { isLineUnit } from "./cursor.ts";
 * const unit = {
 *   key: "/a.json", path: "/a.json", carry: "", status: "active", kind: "snapshot",
 *   dev: 1, ino: 2, offset: 3, fileSize: 3, mtimeMs: 4, hash: "h",
 * } as const;
 * console.log(isLineUnit(unit)); // false
 * ```
 */
export function isLineUnit(unit: UnitState | undefined): unit is LineUnit {
  return unit?.kind === "appended" || unit?.kind === "compressed";
}

/**
 * The fields of a unit's state that make up its cursor, as the state database keeps them.
 *
 * @example Split a unit's state
 * ```ts
 * import { cursorOf } from "./cursor.ts";
 * const cursor = cursorOf({
 *   key: "/a.json", path: "/a.json", carry: "{}", status: "active", kind: "snapshot",
 *   dev: 1, ino: 2, offset: 3, fileSize: 3, mtimeMs: 4, hash: "h",
 * });
 * console.log(cursor); // { kind: "snapshot", dev: 1, ino: 2, offset: 3, fileSize: 3, ... }
 * ```
 */
export function cursorOf(unit: UnitState): Cursor {
  const { key: _k, path: _p, carry: _c, status: _s, totals: _t, movedFrom: _m, ...cursor } = unit;
  return cursor;
}
