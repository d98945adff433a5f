/**
 * Reading an export's members (export.ts opens the export and plans what to read): the check
 * pass over every member, the read pass that hands a member's records to the parser a part at a
 * time and batches what is new of them, and the records of a JSON member for the plan.
 *
 * @module
 */
import { JsonRecordSplitter } from "../io/json_records.ts";
import { type DocumentPart, pagePart, setHeaderField } from "../source.ts";
import { collectBytes } from "../io/bytes.ts";
import type { SnapshotUnit } from "./cursor.ts";
import { MAX_RECORD_DEPTH } from "./document.ts";
import { type CutPart, MarkerCutter } from "./cut_parts.ts";
import { type ExportReport, selectNew } from "./export_delta.ts";
import { Fingerprint64, fingerprint64 } from "../hash.ts";
import type { Mark } from "../state/state.ts";
import { VERSION } from "../version.ts";
import type { ExportMember, FileRef, ReadContext, ReadLimits } from "./unit.ts";

const NO_BYTES = new Uint8Array(0);
const decoder = new TextDecoder();

/** An export opened for reading: the names it holds and a stream of each. */
export interface OpenExport {
  names: string[];
  /** The content of member `name` in chunks (`""`: the file itself). */
  stream(name: string, limits: ReadLimits): AsyncGenerator<Uint8Array>;
  readText(name: string): Promise<string>;
}

/**
 * How a record of `member` is known once delivered, when its source's records each parse alone
 * into one conversation (`DocumentShape.recordPerConversation`): `r:` and a fingerprint of
 * its bytes, this version of ai-sync and the member's side information (an attachment's names,
 * a project's summary), any of which changes what the record is parsed into. A newer export
 * repeats most conversations byte for byte; they are passed over unparsed, and only the grown
 * and the new ones are parsed.
 */
function recordKeyOf<Hint>(
  member: ExportMember<Hint>,
): ((bytes: Uint8Array) => string) | undefined {
  if (!member.shape?.recordPerConversation) return undefined;
  const context = fingerprint64(`${VERSION}\u0000${JSON.stringify(member.hint) ?? ""}`);
  return (bytes) => `r:${new Fingerprint64().update(`${context}\u0000`).update(bytes).digest()}`;
}

/** A cutter of a page of cells into parts of about `worker.chunk_bytes`. */
function cutterOf(marker: string, limits: ReadLimits): MarkerCutter {
  return new MarkerCutter(marker, limits.chunkBytes, limits.maxLineBytes);
}

/** The records of a JSON member, parsed one at a time (the plan's {@link EachRecord}). */
export async function eachRecord(
  source: OpenExport,
  name: string,
  limits: ReadLimits,
  visit: (record: unknown) => void,
): Promise<void> {
  const splitter = new JsonRecordSplitter({
    recordKeys: [],
    maxRecordBytes: limits.maxLineBytes,
    maxRecordDepth: MAX_RECORD_DEPTH,
    maxFieldBytes: limits.maxLineBytes,
  });
  let root = "";
  const header: Record<string, unknown> = {};
  for await (const chunk of source.stream(name, limits)) {
    for (const event of splitter.push(chunk)) {
      if (event.type === "root") root = event.kind;
      else if (event.type === "record") visit(JSON.parse(decoder.decode(event.bytes)));
      else if (event.type === "field") {
        setHeaderField(header, event.key, JSON.parse(decoder.decode(event.value)));
      }
    }
  }
  splitter.end();
  if (root === "object") visit(header);
}

/**
 * The first pass over the members: each inflates within its limits to its CRC-32, and each
 * JSON member is well-formed. Throws what is wrong, naming the member.
 */
export async function checkMembers<Hint>(
  source: OpenExport,
  members: readonly ExportMember<Hint>[],
  limits: ReadLimits,
): Promise<void> {
  for (const member of members) {
    const label = member.name || "the file";
    let size = 0;
    const splitter = member.shape
      ? new JsonRecordSplitter({
        recordKeys: member.shape.recordKeys,
        keepRecords: false,
        keepFields: false,
      })
      : undefined;
    const cutter = member.cellMarker ? cutterOf(member.cellMarker, limits) : undefined;
    try {
      for await (const chunk of source.stream(member.name, limits)) {
        size += chunk.length;
        if (!splitter && !cutter && size > limits.maxLineBytes) {
          throw new Error(
            `${size} bytes or more exceeds worker.max_line_bytes (${limits.maxLineBytes}), the ` +
              `limit for an HTML file, which is read whole`,
          );
        }
        splitter?.push(chunk);
        cutter?.push(chunk);
      }
      splitter?.end();
    } catch (error) {
      const message = (error as Error).message;
      // Zip errors name their member already.
      throw new Error(message.startsWith(`${label}:`) ? message : `${label}: ${message}`);
    }
  }
}

/**
 * The second pass over one member: its records in parts to the parser, what is new of each
 * part to the batch. Returns the index after its records (pieces of one unit count on).
 */
export async function readMember<Hint>(
  ref: FileRef<Hint>,
  member: ExportMember<Hint>,
  source: OpenExport,
  base: SnapshotUnit,
  start: number,
  report: ExportReport,
  ctx: ReadContext<Hint>,
): Promise<number> {
  const limits = ctx.limits();
  const memberRef: FileRef<Hint> = {
    ...ref,
    path: member.name ? `${ref.path}:${member.name}` : ref.path,
    hint: member.hint,
  };
  let index = start;
  // Not delivered whole yet: a stop or a crash reads the export again.
  const cursor: SnapshotUnit = { ...base, offset: 0, fileSize: -1, mtimeMs: -1 };
  let carryValue: { value: unknown } | undefined;
  /** Parses a part and batches what is new of it; `records`: how many it counts for. */
  const deliver = async (
    input: { bytes: Uint8Array; document?: DocumentPart },
    records?: number,
    recordKeys: readonly string[] = [],
  ) => {
    const parsed = ctx.parse(memberRef, cursor, {
      ...input,
      firstLine: 1,
      whole: true,
      // An export is not read again: a record that throws must cost only itself.
      recordByRecord: true,
      ...(carryValue ? { carryValue: carryValue.value } : {}),
    });
    carryValue = { value: parsed.carryValue };
    if (parsed.failed) report.errors.push(`${memberRef.path}: the parser failed on a part`);
    for (const what of parsed.unprocessable ?? []) report.errors.push(`${memberRef.path}: ${what}`);
    for (const [why, n] of Object.entries(parsed.skipped ?? {})) {
      report.skipped[why] = (report.skipped[why] ?? 0) + n;
    }
    const fresh = selectNew(parsed.items, (key) => ctx.fingerprint(key), report);
    const count = records ?? input.document?.records.length ?? 1;
    // Each record made its one conversation, all of them whole: each is known by its bytes now.
    const whole = !parsed.failed && !parsed.unprocessable?.length &&
      parsed.items.length === recordKeys.length;
    const recordMarks = whole
      ? recordKeys.map((key, i): Mark => [key, `${parsed.items[i].conversation.messages.length}`])
      : [];
    await ctx.add({
      range: { unit: ref.path, from: index, to: index + count, fromLine: 0, form: "export" },
      ref,
      cursor,
      items: fresh.items,
      messages: fresh.messages,
      bytes: fresh.items.reduce((n, i) => n + i.bytes, 0),
      marks: [...fresh.marks, ...recordMarks],
    });
    index += count;
  };
  if (member.cellMarker) {
    // A page of cells, a part of whole cells at a time (the parser reads `bytes` as the part).
    const cutter = cutterOf(member.cellMarker, limits);
    const page = (part: CutPart, first: boolean, last: boolean) =>
      deliver({ bytes: part.bytes, document: pagePart(part.cellsBefore, first, last) }, 1);
    let first = true;
    for await (const chunk of source.stream(member.name, limits)) {
      ctx.countRead(chunk.length);
      for (const part of cutter.push(chunk)) {
        await page(part, first, false);
        first = false;
      }
      if (ctx.stopping()) return index;
    }
    for (const part of cutter.end()) await page(part, first, true);
    return index;
  }
  if (!member.shape) {
    await deliver({ bytes: await collectBytes(source.stream(member.name, limits)) });
    return index;
  }
  const splitter = new JsonRecordSplitter({
    recordKeys: member.shape.recordKeys,
    keepFields: true,
    maxRecordBytes: limits.maxLineBytes,
    maxRecordDepth: MAX_RECORD_DEPTH,
    maxFieldBytes: limits.maxLineBytes,
  });
  const frame: Pick<DocumentPart, "root" | "header" | "recordsKey"> = {
    root: "other",
    header: {},
    recordsKey: null,
  };
  let records: unknown[] = [];
  let recordKeys: string[] = [];
  let first = index;
  let held = 0;
  let firstPart = true;
  const flush = async (last: boolean) => {
    const part: DocumentPart = { ...frame, records, index: first, first: firstPart, last };
    const keys = recordKeys;
    firstPart = false;
    records = [];
    recordKeys = [];
    held = 0;
    await deliver({ bytes: NO_BYTES, document: part }, undefined, keys);
  };
  const keyOf = recordKeyOf(member);
  for await (const chunk of source.stream(member.name, limits)) {
    ctx.countRead(chunk.length);
    for (const event of splitter.push(chunk)) {
      if (event.type === "root") frame.root = event.kind;
      else if (event.type === "records") frame.recordsKey = event.key;
      else if (event.type === "field") {
        setHeaderField(frame.header, event.key, JSON.parse(decoder.decode(event.value)));
      } else if (event.type === "refused") {
        const why = event.size > limits.maxLineBytes
          ? `of ${event.size} bytes exceeds worker.max_line_bytes (${limits.maxLineBytes})`
          : event.why;
        report.errors.push(`${memberRef.path}: record ${event.index} ${why}`);
        ctx.problem(`${memberRef.path}: record ${event.index} ${why}; skipped`);
        report.skipped["record refused"] = (report.skipped["record refused"] ?? 0) + 1;
      } else if (event.type === "record") {
        const key = keyOf?.(event.bytes);
        const messages = key === undefined ? undefined : ctx.fingerprint(key);
        if (messages !== undefined) {
          // Delivered before, byte for byte: passed over unparsed. A part holds records in a
          // row (parsers name a record by its place), so the one before it ends here.
          if (records.length > 0) await flush(false);
          report.conversations++;
          report.unchanged++;
          report.messages += Number(messages);
          continue;
        }
        if (held >= limits.chunkBytes) await flush(false);
        if (records.length === 0) first = event.index;
        records.push(JSON.parse(decoder.decode(event.bytes)));
        if (key !== undefined) recordKeys.push(key);
        held += event.size;
      }
    }
    if (ctx.stopping()) return index;
  }
  splitter.end();
  await flush(true);
  return index;
}
