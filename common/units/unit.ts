/**
 * What the core knows of a unit of work and how one is read: a source hands the core
 * {@link FileRef}s; a {@link UnitReader}, one per kind of unit, reads what is new in one and
 * turns it into {@link Piece}s through a {@link ReadContext}, and reads a recorded piece again
 * after a restart. The core (`common/delivery/pipeline.ts`) only batches, records, delivers and
 * commits.
 *
 * @module
 */
import type { ReadScope } from "../io/guarded_file.ts";
import type { Logger } from "../log.ts";
import type { DeliverySettings } from "../delivery/delivery.ts";
import type { Item } from "../delivery/item.ts";
import type { BatchRange, Mark, StateStore } from "../state/state.ts";
import type { UnitState } from "./cursor.ts";
import type { DocumentPart, DocumentShape } from "../source.ts";
import type { FileStat } from "./lines.ts";
import type { ExportReport } from "./export_delta.ts";

/**
 * How a file is written, which decides its reader:
 * - `lines`: appended line by line; read from the checkpoint's byte offset (the default);
 * - `zstd`: a compressed copy of such a file (`.jsonl.zst`), decompressed as a stream and read
 *   like one; it continues from the checkpoint of the unit its source says it continues
 *   ({@link UnitRules.continues}), so a delivered file that gets compressed sends nothing new;
 * - `whole`: rewritten whole; read again entirely when its size, mtime or inode changes and
 *   handed to the parser with the carry of the version delivered before it, so the parser can
 *   send only what changed;
 * - `export`: a whole export (a zip archive, or a JSON or HTML file of one); read once complete,
 *   member by member, sending only conversations and messages no export delivered before.
 */
export type FileForm = "lines" | "zstd" | "whole" | "export";

/** A file the source found, with the facts its path gives the parser. */
export interface FileRef<Hint = unknown> {
  path: string;
  /** Facts about the file for its parser, typed by the source. */
  hint: Hint;
  /** How the file is written; `lines` when absent. */
  form?: FileForm;
  /**
   * For a document (`whole`): how it holds its records, as its parser declares; absent, it is
   * read in one part.
   */
  shape?: DocumentShape;
}

/** A member of an export to parse: a file in the archive (or the export file itself). */
export interface ExportMember<Hint = unknown> {
  /** Its name in the archive (`""`: the export file itself). */
  name: string;
  hint: Hint;
  /** Its records, for JSON; absent, it is read whole (HTML), up to `worker.max_line_bytes`. */
  shape?: DocumentShape;
  /**
   * For a page of cells (HTML): the marker each cell starts with. The page is then read in
   * parts of whole cells, whatever its size; a cell is at most `worker.max_line_bytes`.
   */
  cellMarker?: string;
}

/** What a source reads of an export, from the names it holds. */
export interface ExportPlan<Hint = unknown> {
  members: ExportMember<Hint>[];
  /** Files the export says it holds and does not (a shard its manifest lists). */
  missing: string[];
  /** Why this is not the source's export, when it is not (nothing is read then). */
  notExport?: string;
  /** Side files that could not be used (the conversations are read without them). */
  warnings?: string[];
}

/** The rules of a source about how its units follow each other. */
export interface UnitRules<Hint = unknown> {
  /**
   * The key of the unit `ref` continues when it has no state of its own: a compressed copy
   * continues the file it was compressed from.
   */
  continues?(ref: FileRef<Hint>): string | undefined;
  /** Where reading goes on when the file at `path` disappears (its compressed copy). */
  successor?(path: string): string | undefined;
  /**
   * For an export: the members to read, given the names it holds, a reader of small members (a
   * manifest, a list of asset names) and one of a JSON member's records of any size, one at a
   * time (see {@link EachRecord}).
   */
  exportPlan?(
    ref: FileRef<Hint>,
    names: readonly string[],
    readText: (name: string) => Promise<string>,
    eachRecord: EachRecord,
  ): Promise<ExportPlan<Hint>>;
}

/**
 * Calls `visit` with each record of the JSON member `name` parsed (the elements of its root
 * array, or its root object whole), streamed: a member of any size costs one record at a time.
 * Records over `worker.max_line_bytes` are passed over.
 */
export type EachRecord = (name: string, visit: (record: unknown) => void) => Promise<void>;

/** A recorded range of a unit, as the pending batch keeps it. */
export type PieceRange = BatchRange & {
  /** The line at `from` was too long and skipped: the range holds no data. */
  oversized?: boolean;
  /** The unit's form when it is not `lines` (such ranges are read again, not replayed). */
  form?: FileForm;
};

/** One unit's part of a batch: what was read, the conversations it made, the cursor after it. */
export interface Piece<Hint = unknown> {
  range: PieceRange;
  ref: FileRef<Hint>;
  cursor: UnitState;
  items: Item[];
  messages: number;
  bytes: number;
  /** Fingerprints recorded with the checkpoint when the piece's batch is acknowledged. */
  marks?: Mark[];
}

/** What a reader asks the parser to read. */
export interface ParseRequest {
  bytes: Uint8Array;
  /** 1-based number of the first line in `bytes`. */
  firstLine: number;
  /** A whole document rather than lines (a failure then costs the document). */
  whole?: boolean;
  /** A part of a document read as records. */
  document?: DocumentPart;
  /**
   * A part that makes the parser throw is parsed again record by record, so only the record
   * at fault is lost. For a document not read again (an export): the carry is then copied
   * before each part, which a live document's carry (fingerprints of every message it
   * delivered) is too large for; such a document is read again at its next change instead.
   */
  recordByRecord?: boolean;
  /**
   * The carry the parse of the part before made (its {@link Parsed.carryValue}), handed on
   * within one pass through a document instead of being written out and read back.
   */
  carryValue?: unknown;
}

/**
 * What a parse made: the conversations as items (in the form the sink sends), and the carry and
 * totals after it.
 */
export interface Parsed {
  items: Item[];
  messages: number;
  /** The parser's carry after these bytes, as JSON (written when first asked for). */
  readonly carry: string;
  /** The parser's carry as it is, for the next part of the same pass (see `carryValue`). */
  carryValue: unknown;
  /**
   * The parser failed on this input (a fault of the parser, reported as a problem): nothing came
   * of it, and the carry is the one it was given.
   */
  failed?: boolean;
  /**
   * The lines or records of this input that made the parser throw, each with why (reported as
   * problems): the rest of the input came through.
   */
  unprocessable?: string[];
  /** What the parser passed over on purpose, by reason. */
  skipped?: Record<string, number>;
  /** This unit's totals after these bytes, as JSON, when its parser reports them. */
  totals?: string;
  /** The size of `items` as sent (their `bytes`). */
  bytes: number;
}

/** What the delivery settings say about reading. */
export type ReadLimits = Pick<
  DeliverySettings,
  | "chunkBytes"
  | "maxLineBytes"
  | "maxDecompressedBytes"
  | "maxDocumentBytes"
  | "maxMemberBytes"
  | "settleMs"
>;

/** What a reader may use of the core while it reads one unit. */
export interface ReadContext<Hint = unknown> {
  state: StateStore;
  /** Where files may be read from; every read goes through it. */
  scope: ReadScope;
  log: Logger;
  limits(): ReadLimits;
  rules: UnitRules<Hint>;
  /** Whether the worker is stopping (a reader stops between pieces). */
  stopping(): boolean;
  /** The cursor of a unit read and batched but not acknowledged yet. */
  pending(key: string): UnitState | undefined;
  /**
   * Parses what was read at `cursor` (complete lines from `firstLine`, or a whole document) and
   * reports what the parser found, unless `replay` (read again after a restart: reported then).
   * Input that makes the parser throw costs only itself: a line, or the document.
   */
  parse(ref: FileRef<Hint>, cursor: UnitState, input: ParseRequest, replay?: boolean): Parsed;
  /** Reports a problem with the input: skipped, counted and named. */
  problem(message: string): void;
  /**
   * The fingerprint recorded under `key`: by a batch read but not acknowledged yet, or by an
   * acknowledged one.
   */
  fingerprint(key: string): string | undefined;
  /** Reports what an export held and what of it was sent. */
  exportDone?(report: ExportReport): void;
  /** Adds a piece to the batch; its cursor becomes the unit's pending cursor. */
  add(piece: Piece<Hint>): Promise<void>;
  /**
   * Notes the size of a file of lines when it was last seen, so that its deletion can tell
   * what it took with it unread.
   */
  sizeSeen(path: string, size: number): void;
  /** Counts bytes of the file as read, for progress. */
  countRead(bytes: number): void;
  /** Reports a unit that cannot or may not be read, once per version of it. */
  failOnce(path: string, stat: FileStat | undefined, message: string): void;
}

/** What the state says of a unit in its cheap scan ({@link StateStore.offsets}). */
export interface UnitSummary {
  offset: number;
  fileSize: number;
  mtimeMs: number;
}

/** A reader of one kind of unit. */
export interface UnitReader {
  /** Bytes still to read in the file, from its committed state (for progress). */
  backlog(stat: FileStat, known: UnitSummary | undefined): number;
  /** Reads what is new in the unit and adds it to the batch through `ctx`. */
  read<Hint>(ref: FileRef<Hint>, stat: FileStat, ctx: ReadContext<Hint>): Promise<void>;
  /**
   * The piece a recorded range holds, read again after a restart from `before` (the cursor the
   * batch's earlier ranges of the unit reached), or why it can no longer be.
   */
  replay<Hint>(
    ref: FileRef<Hint>,
    range: PieceRange,
    before: UnitState | undefined,
    ctx: ReadContext<Hint>,
  ): Promise<Piece<Hint> | string>;
}

/**
 * Whether a unit was last read from a file with exactly this stat (a unit read whole when
 * changed needs no reading then).
 *
 * @example Same size, mtime and inode
 * ```ts
 * import { sameVersion } from "./unit.ts";
 * const stat = { dev: 1, ino: 2, size: 10, mtimeMs: 5 };
 * console.log(sameVersion({ dev: 1, ino: 2, fileSize: 10, mtimeMs: 5 }, stat)); // true
 * ```
 */
export function sameVersion(
  unit: { fileSize?: number; mtimeMs?: number; dev: number; ino: number },
  stat: FileStat,
): boolean {
  return unit.fileSize === stat.size && unit.mtimeMs === stat.mtimeMs && unit.dev === stat.dev &&
    unit.ino === stat.ino;
}

/**
 * The backlog of a unit read whole when it changed: all of it, or nothing when the state says
 * this version was read.
 *
 * @example A changed file is all to read
 * ```ts
 * import { wholeBacklog } from "./unit.ts";
 * const stat = { dev: 1, ino: 2, size: 10, mtimeMs: 6 };
 * console.log(wholeBacklog(stat, { offset: 9, fileSize: 9, mtimeMs: 5 })); // 10
 * ```
 */
export function wholeBacklog(stat: FileStat, known: UnitSummary | undefined): number {
  return known?.fileSize === stat.size && known.mtimeMs === stat.mtimeMs ? 0 : stat.size;
}
