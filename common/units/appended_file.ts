/**
 * The reader of files written by appending lines (`FileRef.form` `lines`): the complete lines
 * after the acknowledged offset, chunk by chunk; after a restart, a recorded range is read again
 * byte for byte, so the same batch (same Idempotency-Key) goes out again.
 *
 * @module
 */
import type { LineUnit, UnitState } from "./cursor.ts";
import { isLineUnit } from "./cursor.ts";
import { linePiece, resumeLines } from "./line_reading.ts";
import {
  countLines,
  type FileStat,
  type LineChunk,
  readCompleteLines,
  resumePoint,
  tailHashAt,
} from "./lines.ts";
import type { FileRef, Piece, PieceRange, ReadContext, UnitReader, UnitSummary } from "./unit.ts";

/**
 * Reads appended files.
 *
 * @example Read a file through a pipeline
 * ```ts
 * import { Pipeline } from "../delivery/pipeline.ts";
 * import { StateStore } from "../state/state.ts";
 * import { EmbeddedSink } from "../delivery/store_sinks.ts";
 * import { ReadScope } from "../io/guarded_file.ts";
 * import { Logger } from "../log.ts";
 * import { ConfigSchema } from "../config.ts";
 * import { deliverySettings } from "../engine/settings.ts";
 * import { ConversationStore } from "../../store/store.ts";
 * import { parseClaudeCode } from "../../parsers/claude_code.ts";
 * const path = await Deno.makeTempFile({ suffix: ".jsonl" });
 * await Deno.writeTextFile(path, '{"type":"user","uuid":"u1","sessionId":"s1","message":{"role":"user","content":"hi"}}\n');
 * const state = new StateStore(":memory:");
 * const pipeline = new Pipeline({
 *   sourceType: "claude_code", parser: parseClaudeCode, state,
 *   sink: new EmbeddedSink(new ConversationStore(":memory:")), log: new Logger("doc"), host: "h",
 *   scope: new ReadScope([path]), settings: () => deliverySettings(ConfigSchema.parse({}), false),
 * });
 * await pipeline.syncFile({ path, hint: { kind: "session", sessionId: "s1" }, form: "lines" });
 * await pipeline.flush();
 * console.log(state.getUnit(path)?.kind); // "appended"
 * ```
 */
export const appendedFileReader: UnitReader = {
  backlog(stat: FileStat, known: UnitSummary | undefined): number {
    return Math.max(0, stat.size - (known?.offset ?? 0));
  },

  async read<Hint>(ref: FileRef<Hint>, stat: FileStat, ctx: ReadContext<Hint>): Promise<void> {
    const { state } = ctx;
    const pending = ctx.pending(ref.path);
    const ahead = isLineUnit(pending) ? pending : undefined;
    const known = ahead ? undefined : state.getUnit(ref.path);
    ctx.sizeSeen(ref.path, stat.size);
    // Up to date: skip opening the file (a tick over thousands of idle files reads nothing). The
    // mtime is part of it: a rewrite of the same size is read.
    if (
      !ahead && known?.status === "active" &&
      (known.offset === stat.size || (isLineUnit(known) && known.scanned === stat.size)) &&
      known.dev === stat.dev && known.ino === stat.ino && known.mtimeMs === stat.mtimeMs
    ) return;
    await using file = await ctx.scope.open(ref.path);
    const opened = file.stat;
    let cursor: LineUnit = ahead ??
      await resumeLines(ref, file, opened, opened.size, known, "appended", ctx);
    const limits = ctx.limits();
    let read = false;
    // Where the line not ended at the last check was read up to, unless the file is shorter now.
    const scan = { scanned: Math.min(cursor.scanned ?? cursor.offset, opened.size) };
    while (cursor.offset < opened.size && !ctx.stopping()) {
      // No bigger than what the file held when opened: a buffer is allocated and zeroed per
      // read, and most sessions are far smaller than a chunk.
      const chunk = await readCompleteLines(
        file,
        cursor.offset,
        Math.min(limits.chunkBytes, opened.size - cursor.offset),
        limits.maxLineBytes,
        scan,
      );
      if (!chunk) break;
      const piece = linePiece(ref, cursor, chunk, ctx);
      const next = piece.cursor;
      next.fileSize = opened.size;
      next.mtimeMs = opened.mtimeMs;
      read = true;
      ctx.countRead(chunk.end - piece.range.from);
      await ctx.add(piece);
      cursor = next;
      scan.scanned = cursor.offset;
    }
    const scanned = scan.scanned > cursor.offset ? scan.scanned : undefined;
    if (
      !read && !ctx.pending(ref.path) && (cursor.offset === opened.size || scanned) &&
      (cursor.mtimeMs !== opened.mtimeMs || cursor.fileSize !== opened.size ||
        cursor.path !== known?.path || cursor.scanned !== scanned)
    ) {
      // Checked and unchanged, or only a line not ended yet grew: remember this version (and how
      // far that line was read), so the next check need not open it (or read the line again).
      const { scanned: _before, ...checked } = cursor;
      state.putUnit({
        ...checked,
        fileSize: opened.size,
        mtimeMs: opened.mtimeMs,
        ...(scanned ? { scanned } : {}),
      });
    }
  },

  async replay<Hint>(
    ref: FileRef<Hint>,
    range: PieceRange,
    before: UnitState | undefined,
    ctx: ReadContext<Hint>,
  ): Promise<Piece<Hint> | string> {
    await using file = await ctx.scope.open(range.unit);
    const size = file.stat.size;
    let cursor = before ?? ctx.state.getUnit(range.unit);
    if (!cursor && range.from === 0) {
      cursor = (await resumePoint(range.unit, file, file.stat, size, undefined)).unit;
    }
    if (!cursor || cursor.offset !== range.from) return `${range.unit} moved on`;
    if (size < range.to) return `${range.unit} shrank or vanished`;
    const point = await resumePoint(
      range.unit,
      file,
      file.stat,
      size,
      cursor.offset === 0 ? undefined : cursor,
    );
    if (point.resetReason) return `${range.unit}: ${point.resetReason}`;
    const bytes = range.oversized
      ? new Uint8Array(0)
      : await file.read(range.from, range.to - range.from);
    const chunk: LineChunk = {
      bytes,
      end: range.to,
      lines: range.oversized ? 1 : countLines(bytes),
      tail: await tailHashAt(file, range.to),
    };
    if (range.oversized) chunk.oversizedLine = range.to - range.from;
    return linePiece(ref, point.unit, chunk, ctx, true);
  },
};
