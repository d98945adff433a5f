/**
 * The reader of exports (`FileRef.form` `export`): a zip archive (or a `.tgz`, Takeout's other
 * type), or one JSON or HTML file of an export, dropped whole into a folder and never changed
 * after. It is read once complete (its
 * size and mtime unchanged over `worker.export_settle_seconds`), in two passes:
 *
 * 1. a check of everything: the content hash (MD5), the zip's central directory, every member
 *    the source wants inflated with its size bounded and its CRC-32 checked, and the structure
 *    of every JSON member. An export that fails here sends nothing (it is never half-sent) and
 *    is read again when the file changes;
 * 2. the members, streamed: records split from the JSON as they are inflated and handed to the
 *    parser a part at a time, each conversation sent only if no export delivered it before
 *    (`export_delta.ts`). Both passes are in `export_members.ts`.
 *
 * An export whose content hash was imported whole before, under any name, sends nothing. One
 * imported with errors (a record the parser could not process, or one over
 * `worker.max_line_bytes`) is read again once what it was read under changes: another version of
 * ai-sync, or another limit. Only what it did not deliver then is sent. The user's files are only
 * read: nothing is moved, changed, deleted or extracted.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import type { GuardedFile } from "../io/guarded_file.ts";
import { readZipDirectory, readZipMember, readZipText, type ZipEntry } from "../io/zip.ts";
import { listTar, readTarMember } from "../io/tar.ts";
import { collectBytes } from "../io/bytes.ts";
import { SIDE_FILE_MAX_BYTES } from "../io/guarded_file.ts";
import { VERSION } from "../version.ts";
import type { SnapshotUnit } from "./cursor.ts";
import { chunks, snapshotOf } from "./document.ts";
import type { FileStat } from "./lines.ts";
import { describeReport, exportKey, newReport } from "./export_delta.ts";
import { checkMembers, eachRecord, type OpenExport, readMember } from "./export_members.ts";
import {
  type ExportPlan,
  type FileRef,
  type ReadContext,
  type ReadLimits,
  sameVersion,
  type UnitReader,
  wholeBacklog,
} from "./unit.ts";

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
    const limits = ctx.limits();
    const conditions = readingConditions(limits);
    if (known?.status === "active" && sameVersion(known, stat)) {
      const lacking = known.kind === "snapshot" ? known.incompleteUnder : undefined;
      if (lacking === undefined || lacking === conditions) return;
      ctx.log.info(
        `${ref.path}: read again: imported with errors under ${lacking}, now ${conditions}`,
      );
    }
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
    if (report.errors.length > 0) {
      report.complete = false;
      done.incompleteUnder = conditions;
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

/** How often a wait for an export to settle looks whether the worker is stopping. */
const STOP_POLL_MS = 100;

/**
 * What an import depends on besides the export: an export imported with errors is read again
 * when this changes, since a newer parser or a larger limit may read what failed.
 */
function readingConditions(limits: ReadLimits): string {
  return `ai-sync ${VERSION} with worker.max_line_bytes ${limits.maxLineBytes}`;
}

/**
 * Whether the file has kept its size and mtime for `settleMs`: an export still being copied
 * or downloaded is left until it has (waiting here once, at most `settleMs`, and not past a
 * stop). An mtime ahead of the clock (a copy that kept it, another machine's clock) counts as
 * no age: waiting until then held the whole source for as long, and past any stop.
 */
async function settled<Hint>(
  path: string,
  stat: FileStat,
  settleMs: number,
  ctx: ReadContext<Hint>,
): Promise<boolean> {
  const age = Math.max(0, Date.now() - stat.mtimeMs);
  if (age >= settleMs) return true;
  const until = Date.now() + settleMs - age;
  while (Date.now() < until) {
    if (ctx.stopping()) return false;
    await new Promise((resolve) => setTimeout(resolve, Math.min(STOP_POLL_MS, until - Date.now())));
  }
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

/** The file as an export: a zip's or a `.tgz`'s members, or the file itself as the only one. */
async function openExport<Hint>(
  file: GuardedFile,
  ref: FileRef<Hint>,
  ctx: ReadContext<Hint>,
): Promise<OpenExport> {
  const head = await file.read(0, 4);
  const zip = head.length === 4 && head[0] === 0x50 && head[1] === 0x4b;
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return await openTar(file, ctx);
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

/** A `.tgz`'s regular members (each read from the archive's start: a tar has no directory). */
async function openTar<Hint>(file: GuardedFile, ctx: ReadContext<Hint>): Promise<OpenExport> {
  const tarLimits = (limits: ReadLimits) => ({
    maxInflatedBytes: limits.maxDecompressedBytes,
    maxMemberBytes: limits.maxMemberBytes,
    chunkBytes: limits.chunkBytes,
  });
  const entries = await listTar(file, tarLimits(ctx.limits()));
  return {
    names: entries.filter((e) => e.regular).map((e) => e.name),
    stream: (name, limits) => readTarMember(file, name, tarLimits(limits)),
    readText: async (name) => {
      const limits = { ...tarLimits(ctx.limits()), maxMemberBytes: SIDE_FILE_MAX_BYTES };
      return new TextDecoder().decode(await collectBytes(readTarMember(file, name, limits)));
    },
  };
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
