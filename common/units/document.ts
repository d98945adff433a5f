/**
 * The reader of documents rewritten whole (`FileRef.form` `whole`): read again when the file's
 * size, mtime or inode moved, and handed to the parser as records, a part at a time, with the
 * carry of the version delivered before, so the parser sends only what changed; the document
 * is never held whole, whatever its size.
 *
 * Two passes over the file: the first hashes its content (an unchanged hash spares the parse
 * when only the mtime moved), checks its structure (a document caught half-written is reported
 * and read again when it changes) and gathers the fields beside the records, which every part
 * carries; the second hands the records over. Each part is a piece of a batch; only the last
 * one's cursor records the version as delivered, so a document cut short by a stop or a crash is
 * read again (the parser's carry says what was already sent). A recorded range is not replayed
 * but read again: its ids are deterministic and its carry did not move.
 *
 * @module
 */
import type { GuardedFile } from "../io/guarded_file.ts";
import { JsonRecordSplitter, JsonStructureError } from "../io/json_records.ts";
import { Fingerprint64 } from "../hash.ts";
import { type DocumentPart, type DocumentShape, setHeaderField } from "../source.ts";
import type { SnapshotUnit } from "./cursor.ts";
import type { FileStat } from "./lines.ts";
import {
  type FileRef,
  type ReadContext,
  type ReadLimits,
  sameVersion,
  type UnitReader,
  wholeBacklog,
} from "./unit.ts";

/**
 * Records nested deeper than this are passed over: nothing real nests so deep, and parsers
 * walk records recursively.
 *
 * @example The splitter's depth limit
 * ```ts
 * import { MAX_RECORD_DEPTH } from "./document.ts";
 * import { JsonRecordSplitter } from "../io/json_records.ts";
 * new JsonRecordSplitter({ recordKeys: [], maxRecordDepth: MAX_RECORD_DEPTH });
 * ```
 */
export const MAX_RECORD_DEPTH = 1000;

/** A document whose source says nothing of its records: one part, its root array's elements. */
const ONE_PART: DocumentShape = { recordKeys: [], inParts: false };
const NO_BYTES = new Uint8Array(0);
const decoder = new TextDecoder();

/**
 * The cursor of a unit read whole, for the version open as `opened`, its content hash to fill.
 *
 * @example A new document's cursor
 * ```ts
 * import { snapshotOf } from "./document.ts";
 * const cursor = snapshotOf("/d/a.json", { dev: 1, ino: 2, size: 10, mtimeMs: 5 }, "");
 * console.log(cursor.offset); // 10
 * ```
 */
export function snapshotOf(path: string, opened: FileStat, carry: string): SnapshotUnit {
  return {
    key: path,
    path,
    kind: "snapshot",
    dev: opened.dev,
    ino: opened.ino,
    offset: opened.size,
    hash: "",
    carry,
    status: "active",
    fileSize: opened.size,
    mtimeMs: opened.mtimeMs,
  };
}

/** What the first pass learns of a document. */
interface Survey {
  hash: string;
  /** The document's frame: every part carries it. */
  frame: Pick<DocumentPart, "root" | "header" | "recordsKey">;
  /** Bytes of all its records together. */
  recordBytes: number;
  /** Why it cannot be read as JSON, when it cannot. */
  malformed?: string;
}

/**
 * Reads documents rewritten whole.
 *
 * @example A document changed since its delivery is all to read
 * ```ts
 * import { documentReader } from "./document.ts";
 * const stat = { dev: 1, ino: 2, size: 10, mtimeMs: 6 };
 * console.log(documentReader.backlog(stat, { offset: 9, fileSize: 9, mtimeMs: 5 })); // 10
 * ```
 */
export const documentReader: UnitReader = {
  backlog: wholeBacklog,

  async read<Hint>(ref: FileRef<Hint>, stat: FileStat, ctx: ReadContext<Hint>): Promise<void> {
    const known = ctx.pending(ref.path) ?? ctx.state.getUnit(ref.path);
    if (known?.status === "active" && sameVersion(known, stat)) return;
    const shape = ref.shape ?? ONE_PART;
    const limits = ctx.limits();
    await using file = await ctx.scope.open(ref.path);
    const opened = file.stat;
    if (opened.size > limits.maxDocumentBytes) {
      ctx.failOnce(
        ref.path,
        stat,
        `${ref.path}: ${opened.size} bytes exceeds worker.max_document_bytes ` +
          `(${limits.maxDocumentBytes}), the limit for a document; skipped until it changes`,
      );
      return;
    }
    // The carry is kept across rewrites, replacements and deletions: it says what the server
    // already has.
    const base = snapshotOf(ref.path, opened, known?.carry ?? "");
    const survey = await surveyDocument(file, shape, limits);
    if (known?.kind === "snapshot" && known.hash === survey.hash) {
      if (!ctx.pending(ref.path)) ctx.state.putUnit({ ...known, ...base, hash: survey.hash });
      return;
    }
    if (survey.malformed !== undefined) {
      ctx.problem(
        `${ref.path}:1: invalid JSON (${survey.malformed}) (a file rewritten in place may be ` +
          `caught half-written: it is read again when it changes)`,
      );
      // This version is done with: nothing sent, the carry as it was.
      ctx.countRead(opened.size);
      await ctx.add({
        range: { unit: ref.path, from: 0, to: 0, fromLine: 0, form: "whole" },
        ref,
        cursor: { ...base, hash: survey.hash },
        items: [],
        messages: 0,
        bytes: 0,
      });
      return;
    }
    if (!shape.inParts && survey.recordBytes > limits.maxLineBytes) {
      ctx.failOnce(
        ref.path,
        stat,
        `${ref.path}: its records (${survey.recordBytes} bytes) exceed worker.max_line_bytes ` +
          `(${limits.maxLineBytes}), the limit for a document read in one part; skipped until ` +
          `it changes`,
      );
      return;
    }
    await readParts(ref, file, base, shape, survey, ctx);
  },

  replay<Hint>(_ref: FileRef<Hint>, range: { unit: string }): Promise<string> {
    return Promise.resolve(`${range.unit} is read whole; it is read again`);
  },
};

/** The first pass: the hash, the frame and the size of the records, or why it is malformed. */
async function surveyDocument(
  file: GuardedFile,
  shape: DocumentShape,
  limits: ReadLimits,
): Promise<Survey> {
  const hash = new Fingerprint64();
  const splitter = new JsonRecordSplitter({
    recordKeys: shape.recordKeys,
    keepRecords: false,
    maxFieldBytes: limits.maxLineBytes,
  });
  const survey: Survey = {
    hash: "",
    frame: { root: "other", header: {}, recordsKey: null },
    recordBytes: 0,
  };
  const header: Record<string, unknown> = {};
  for await (const bytes of chunks(file, limits.chunkBytes)) {
    hash.update(bytes);
    if (survey.malformed !== undefined) continue;
    try {
      for (const event of splitter.push(bytes)) {
        if (event.type === "root") survey.frame.root = event.kind;
        else if (event.type === "records") survey.frame.recordsKey = event.key;
        else if (event.type === "record") survey.recordBytes += event.size;
        else if (event.type === "field") {
          setHeaderField(header, event.key, JSON.parse(decoder.decode(event.value)));
        }
      }
    } catch (error) {
      survey.malformed = error instanceof Error ? error.message : String(error);
    }
  }
  if (survey.malformed === undefined) {
    try {
      splitter.end();
    } catch (error) {
      if (!(error instanceof JsonStructureError)) throw error;
      survey.malformed = error.message;
    }
  }
  survey.hash = hash.digest();
  survey.frame.header = header;
  return survey;
}

/**
 * The second pass: the records, parsed one by one, handed to the parser in parts of about
 * `worker.chunk_bytes` (one part for a document not read in parts), the parser's carry handed
 * from part to part as it is. A record that is not valid JSON, over `worker.max_line_bytes` or
 * nested deeper than {@link MAX_RECORD_DEPTH} is reported and passed over.
 *
 * The parts before the last keep the carry of the version delivered before: after a stop in
 * the middle, the document is read again from it and what those parts sent goes again, under
 * the same ids (so the carry is written out once per reading, not once per part).
 */
async function readParts<Hint>(
  ref: FileRef<Hint>,
  file: GuardedFile,
  base: SnapshotUnit,
  shape: DocumentShape,
  survey: Survey,
  ctx: ReadContext<Hint>,
): Promise<void> {
  const limits = ctx.limits();
  const splitter = new JsonRecordSplitter({
    recordKeys: shape.recordKeys,
    keepFields: false,
    maxRecordBytes: limits.maxLineBytes,
    maxRecordDepth: MAX_RECORD_DEPTH,
  });
  const hash = new Fingerprint64();
  let records: unknown[] = [];
  let index = 0;
  let held = 0;
  let read = 0;
  let first = true;
  let carryValue: { value: unknown } | undefined;
  /** Hands the records gathered to the parser and the piece they make to the batch. */
  const flush = async (last: boolean): Promise<boolean> => {
    const part: DocumentPart = { ...survey.frame, records, index, first, last };
    const parsed = ctx.parse(ref, base, {
      bytes: NO_BYTES,
      firstLine: 1,
      whole: true,
      document: part,
      ...(carryValue ? { carryValue: carryValue.value } : {}),
    });
    first = false;
    carryValue = { value: parsed.carryValue };
    const range = { unit: ref.path, from: index, to: index + records.length, fromLine: 0 };
    records = [];
    held = 0;
    let cursor: SnapshotUnit;
    if (parsed.failed) {
      // This version cannot be read: done with until it changes, the carry as it was.
      cursor = { ...base, hash: survey.hash };
    } else if (last) {
      cursor = { ...base, carry: parsed.carry, hash: hash.digest() };
      // Changed between the passes: what was parsed is delivered, and it is read again.
      if (cursor.hash !== survey.hash) cursor.fileSize = cursor.mtimeMs = -1;
    } else {
      // Not delivered whole yet: a stop reads the document again.
      cursor = { ...base, offset: read, fileSize: -1, mtimeMs: -1 };
    }
    if (parsed.totals) cursor.totals = parsed.totals;
    await ctx.add({
      range: { ...range, form: "whole" },
      ref,
      cursor,
      items: parsed.items,
      messages: parsed.messages,
      bytes: parsed.bytes,
    });
    return !parsed.failed;
  };
  for await (const bytes of chunks(file, limits.chunkBytes)) {
    hash.update(bytes);
    read += bytes.length;
    ctx.countRead(bytes.length);
    for (const event of splitter.push(bytes)) {
      if (event.type !== "record" && event.type !== "refused") continue;
      if (shape.inParts && held >= limits.chunkBytes && !await flush(false)) return;
      let record: unknown;
      let problem = "";
      if (event.type === "refused") {
        problem = event.size > limits.maxLineBytes
          ? `of ${event.size} bytes exceeds worker.max_line_bytes (${limits.maxLineBytes})`
          : event.why;
      } else {
        try {
          record = JSON.parse(decoder.decode(event.bytes));
        } catch (error) {
          problem = `is not valid JSON (${(error as Error).message})`;
        }
      }
      if (problem) {
        ctx.problem(`${ref.path}: record ${event.index} ${problem}; skipped`);
        // A part holds consecutive records: the next one starts after this one.
        if (!shape.inParts) records.push(null);
        else if (records.length > 0 && !await flush(false)) return;
        continue;
      }
      if (records.length === 0) index = event.index;
      records.push(record);
      held += event.size;
    }
    if (ctx.stopping()) return;
  }
  splitter.end();
  await flush(true);
}

/**
 * The file's content in chunks of `size` bytes, from its start to its size when it was opened
 * (a file that keeps growing is read up to there, and again at its next change). Each chunk is
 * read into the same buffer: it is valid until the next one is asked for.
 *
 * @example Count a file's bytes
 * ```ts
 * import { chunks } from "./document.ts";
 * import { ReadScope } from "../io/guarded_file.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/f`, "hello");
 * await using file = await new ReadScope([dir]).open(`${dir}/f`);
 * let n = 0;
 * for await (const bytes of chunks(file, 2)) n += bytes.length;
 * console.log(n); // 5
 * ```
 */
export async function* chunks(file: GuardedFile, size: number): AsyncGenerator<Uint8Array> {
  const end = file.stat.size;
  const buffer = new Uint8Array(Math.min(size, end));
  for (let offset = 0; offset < end;) {
    const bytes = await file.readInto(buffer.subarray(0, Math.min(size, end - offset)), offset);
    if (bytes.length === 0) return;
    offset += bytes.length;
    yield bytes;
  }
}
