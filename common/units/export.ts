/**
 * The reader of exports (`FileRef.form` `export`): a zip archive, or one JSON or HTML file of an
 * export, dropped whole into a folder and never changed after. It is read once complete (its
 * size and mtime unchanged over `worker.export_settle_seconds`), in two passes:
 *
 * 1. a check of everything: the content hash (MD5), the zip's central directory, every member
 *    the source wants inflated with its size bounded and its CRC-32 checked, and the structure
 *    of every JSON member. An export that fails here sends nothing (it is never half-sent) and
 *    is read again when the file changes;
 * 2. the members, streamed: records split from the JSON as they are inflated and handed to the
 *    parser a part at a time, each conversation sent only if no export delivered it before
 *    (`export_delta.ts`).
 *
 * An export whose content hash was imported whole before, under any name, sends nothing. The
 * user's files are only read: nothing is moved, changed, deleted or extracted.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import type { GuardedFile } from "../io/guarded_file.ts";
import { JsonRecordSplitter } from "../io/json_records.ts";
import { readZipDirectory, readZipMember, readZipText, type ZipEntry } from "../io/zip.ts";
import { SIDE_FILE_MAX_BYTES } from "../io/guarded_file.ts";
import { type DocumentPart, setHeaderField } from "../source.ts";
import { concatBytes } from "../io/bytes.ts";
import type { SnapshotUnit } from "./cursor.ts";
import { chunks, MAX_RECORD_DEPTH, snapshotOf } from "./document.ts";
import type { FileStat } from "./lines.ts";
import {
  describeReport,
  exportKey,
  type ExportReport,
  newReport,
  selectNew,
} from "./export_delta.ts";
import {
  type ExportMember,
  type ExportPlan,
  type FileRef,
  type ReadContext,
  type ReadLimits,
  sameVersion,
  type UnitReader,
  wholeBacklog,
} from "./unit.ts";

const NO_BYTES = new Uint8Array(0);
const decoder = new TextDecoder();

/** An export opened for reading: the names it holds and a stream of each. */
interface OpenExport {
  names: string[];
  /** The content of member `name` in chunks (`""`: the file itself). */
  stream(name: string, limits: ReadLimits): AsyncGenerator<Uint8Array>;
  readText(name: string): Promise<string>;
}

/**
 * Reads exports.
 *
 * @example An export read before and unchanged is not read again
 * ```ts
 * import { exportReader } from "./export.ts";
 * const stat = { dev: 1, ino: 2, size: 10, mtimeMs: 5 };
 * console.log(exportReader.backlog(stat, { offset: 10, fileSize: 10, mtimeMs: 5 })); // 0
 * ```
 */
export const exportReader: UnitReader = {
  backlog: wholeBacklog,

  async read<Hint>(ref: FileRef<Hint>, stat: FileStat, ctx: ReadContext<Hint>): Promise<void> {
    const known = ctx.pending(ref.path) ?? ctx.state.getUnit(ref.path);
    if (known?.status === "active" && sameVersion(known, stat)) return;
    const limits = ctx.limits();
    if (!await settled(ref.path, stat, limits.settleMs, ctx)) return;
    await using file = await ctx.scope.open(ref.path);
    const opened = file.stat;
    const base = snapshotOf(ref.path, opened, "");
    const hash = await md5(file, limits.chunkBytes);
    const done: SnapshotUnit = { ...base, hash };
    const report = newReport(ref.path, hash);
    const before = ctx.fingerprint(exportKey(hash));
    if (before !== undefined) {
      ctx.log.info(
        `${ref.path}: the same export as ${before} was imported before; nothing to send`,
      );
      if (!ctx.pending(ref.path)) ctx.state.putUnit(done);
      return;
    }
    let source: OpenExport;
    let plan: ExportPlan<Hint>;
    try {
      source = await openExport(file, ref, ctx);
      plan = ctx.rules.exportPlan
        ? await ctx.rules.exportPlan(
          ref,
          source.names,
          (name) => source.readText(name),
          (name, visit) => eachRecord(source, name, limits, visit),
        )
        : { members: [], missing: [], notExport: "this source reads no exports" };
      if (plan.notExport === undefined) await checkMembers(source, plan.members, limits);
    } catch (error) {
      ctx.failOnce(
        ref.path,
        stat,
        `${ref.path}: not imported: ${(error as Error).message}; nothing was sent, and it is ` +
          `read again when the file changes`,
      );
      return;
    }
    if (plan.notExport !== undefined) {
      ctx.failOnce(ref.path, stat, `${ref.path}: skipped: ${plan.notExport}`);
      return;
    }
    for (const warning of plan.warnings ?? []) ctx.log.warn(`${ref.path}: ${warning}`);
    report.missing = plan.missing;
    if (plan.missing.length > 0) {
      report.complete = false;
      ctx.problem(
        `${ref.path}: the export lacks ${plan.missing.join(", ")} (listed in its manifest); ` +
          `the rest is imported`,
      );
    }
    let index = 0;
    for (const member of plan.members) {
      index = await readMember(ref, member, source, base, index, report, ctx);
      if (ctx.stopping()) return;
    }
    report.at = new Date().toISOString();
    ctx.log.info(describeReport(report));
    ctx.exportDone?.(report);
    await ctx.add({
      range: { unit: ref.path, from: index, to: index, fromLine: 0, form: "export" },
      ref,
      cursor: done,
      items: [],
      messages: 0,
      bytes: 0,
      marks: report.complete ? [[exportKey(hash), ref.path]] : [],
    });
  },

  replay<Hint>(_ref: FileRef<Hint>, range: { unit: string }): Promise<string> {
    return Promise.resolve(`${range.unit} is an export; it is read again`);
  },
};

/**
 * Whether the file has kept its size and mtime for `settleMs`: an export still being copied
 * or downloaded is left until it has (waiting here once, at most `settleMs`).
 */
async function settled<Hint>(
  path: string,
  stat: FileStat,
  settleMs: number,
  ctx: ReadContext<Hint>,
): Promise<boolean> {
  const age = Date.now() - stat.mtimeMs;
  if (age >= settleMs) return true;
  await new Promise((resolve) => setTimeout(resolve, settleMs - age));
  const now = await Deno.stat(path).catch(() => null);
  if (now && now.size === stat.size && (now.mtime?.getTime() ?? 0) === stat.mtimeMs) return true;
  ctx.log.info(`${path}: still being written; read once it has not changed for ${settleMs} ms`);
  return false;
}

async function md5(file: GuardedFile, chunkBytes: number): Promise<string> {
  const hash = createHash("md5");
  for await (const bytes of chunks(file, chunkBytes)) hash.update(bytes);
  return hash.digest("hex");
}

/** The file as an export: a zip's members, or the file itself as the only one. */
async function openExport<Hint>(
  file: GuardedFile,
  ref: FileRef<Hint>,
  ctx: ReadContext<Hint>,
): Promise<OpenExport> {
  const head = await file.read(0, 4);
  const zip = head.length === 4 && head[0] === 0x50 && head[1] === 0x4b;
  if (!zip) {
    if (ref.path.toLowerCase().endsWith(".zip")) {
      throw new Error("not a zip archive (no zip signature at its start)");
    }
    const dir = dirname(ref.path);
    return {
      names: [basename(ref.path)],
      // Other files of an extracted export lie beside it, read through the worker's scope.
      stream: (name, limits) =>
        name === "" ? chunks(file, limits.chunkBytes) : besideChunks(join(dir, name), limits, ctx),
      readText: (name) => ctx.scope.readTextFile(join(dir, name)),
    };
  }
  const entries = new Map<string, ZipEntry>();
  for (const entry of await readZipDirectory(file)) {
    if (!entry.directory) entries.set(entry.name, entry);
  }
  const entry = (name: string) => {
    const found = entries.get(name);
    if (!found) throw new Error(`${name}: not in the archive`);
    return found;
  };
  return {
    names: [...entries.keys()],
    stream: (name, limits) =>
      readZipMember(file, entry(name), limits.maxMemberBytes, limits.chunkBytes),
    readText: (name) => readZipText(file, entry(name), SIDE_FILE_MAX_BYTES),
  };
}

/** The records of a JSON member, parsed one at a time (the plan's {@link EachRecord}). */
async function eachRecord(
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

/** A file beside an extracted export, in chunks. */
async function* besideChunks<Hint>(
  path: string,
  limits: ReadLimits,
  ctx: ReadContext<Hint>,
): AsyncGenerator<Uint8Array> {
  await using file = await ctx.scope.open(path);
  yield* chunks(file, limits.chunkBytes);
}

/**
 * The first pass over the members: each inflates within its limits to its CRC-32, and each
 * JSON member is well-formed. Throws what is wrong, naming the member.
 */
async function checkMembers<Hint>(
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
    try {
      for await (const chunk of source.stream(member.name, limits)) {
        size += chunk.length;
        if (!splitter && size > limits.maxLineBytes) {
          throw new Error(
            `${size} bytes or more exceeds worker.max_line_bytes (${limits.maxLineBytes}), the ` +
              `limit for an HTML file, which is read whole`,
          );
        }
        splitter?.push(chunk);
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
async function readMember<Hint>(
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
  const deliver = async (input: { bytes: Uint8Array; document?: DocumentPart }) => {
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
    const count = input.document?.records.length ?? 1;
    await ctx.add({
      range: { unit: ref.path, from: index, to: index + count, fromLine: 0, form: "export" },
      ref,
      cursor,
      items: fresh.items,
      messages: fresh.messages,
      bytes: fresh.items.reduce((n, i) => n + i.bytes, 0),
      marks: fresh.marks,
    });
    index += count;
  };
  if (!member.shape) {
    const parts: Uint8Array[] = [];
    for await (const chunk of source.stream(member.name, limits)) parts.push(chunk.slice());
    await deliver({ bytes: concatBytes(parts) });
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
  let first = index;
  let held = 0;
  let firstPart = true;
  const flush = async (last: boolean) => {
    const part: DocumentPart = { ...frame, records, index: first, first: firstPart, last };
    firstPart = false;
    records = [];
    held = 0;
    await deliver({ bytes: NO_BYTES, document: part });
  };
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
        if (held >= limits.chunkBytes) await flush(false);
        if (records.length === 0) first = event.index;
        records.push(JSON.parse(decoder.decode(event.bytes)));
        held += event.size;
      }
    }
    if (ctx.stopping()) return index;
  }
  splitter.end();
  await flush(true);
  return index;
}
