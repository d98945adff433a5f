/**
 * What the two readers of lines (an appended file and a compressed copy of one) share: where
 * reading resumes, inherited from a moved or continued unit when the source says so, and the
 * piece a chunk of complete lines makes.
 *
 * @module
 */
import type { FileIdentity, LineUnit, UnitState } from "./cursor.ts";
import { type ByteSource, type LineChunk, resumePoint } from "./lines.ts";
import type { FileRef, Piece, ReadContext } from "./unit.ts";

/**
 * Where reading of a file of lines resumes: its own checkpoint, else that of the unit it
 * continues (a compressed copy, as the source's rules say) or was moved from (same inode, the
 * old path gone), if the bytes agree; else the start. Says why it starts over when it does.
 *
 * @example Where a new file starts, as a reader asks it
 * ```ts
 * import { resumeLines } from "./line_reading.ts";
 * import type { FileRef, ReadContext } from "./unit.ts";
 * import type { GuardedFile } from "../io/guarded_file.ts";
 * async function start(ref: FileRef, file: GuardedFile, ctx: ReadContext) {
 *   return await resumeLines(ref, file, file.stat, file.stat.size, undefined, "appended", ctx);
 * }
 * ```
 */
export async function resumeLines<Hint>(
  ref: FileRef<Hint>,
  source: ByteSource,
  identity: FileIdentity,
  size: number | undefined,
  known: UnitState | undefined,
  kind: LineUnit["kind"],
  ctx: ReadContext<Hint>,
): Promise<LineUnit> {
  const { state, log } = ctx;
  let inherited = "";
  const continuedKey = known ? undefined : ctx.rules.continues?.(ref);
  const continued = continuedKey ? state.getUnit(continuedKey) : undefined;
  // A moved file (Codex archiving a rollout) keeps its inode and its checkpoint.
  const original = known ? undefined : continued ??
    state.unitsByInode(identity.dev, identity.ino).find((u) =>
      u.path !== ref.path && !isFile(u.path)
    );
  if (original) {
    known = {
      ...original,
      key: ref.path,
      path: ref.path,
      dev: identity.dev,
      ino: identity.ino,
      status: "active",
      movedFrom: original.path,
    };
    inherited = original.path;
  }
  // A file that reappears after a deletion is a new file, even on a reused inode (T14).
  const point = await resumePoint(
    ref.path,
    source,
    identity,
    size,
    known?.status === "active" ? known : undefined,
    kind,
  );
  const relation = continued
    ? `${kind === "compressed" ? "compressed copy" : "continuation"} of`
    : "moved from";
  if (inherited && !point.resetReason) {
    log.info(
      `${ref.path}: ${relation} ${inherited}; continuing from its checkpoint at byte ${point.unit.offset}`,
    );
  } else if (inherited) {
    log.info(`${ref.path}: not the same content as ${inherited}; reading it from the start`);
  } else if (point.resetReason) {
    log.warn(`${ref.path}: reading again from the start: ${point.resetReason}`);
    state.putUnit(point.unit);
  }
  return point.unit;
}

/**
 * The piece that a chunk of complete lines read at `cursor` makes: parsed, or, for a line over
 * `worker.max_line_bytes`, reported and skipped (the cursor moves past it either way).
 *
 * @example Parse the lines after a cursor and batch them, as a reader does
 * ```ts
 * import { linePiece } from "./line_reading.ts";
 * import type { FileRef, ReadContext } from "./unit.ts";
 * import type { LineUnit } from "./cursor.ts";
 * import type { LineChunk } from "./lines.ts";
 * async function batch(ref: FileRef, cursor: LineUnit, chunk: LineChunk, ctx: ReadContext) {
 *   const piece = linePiece(ref, cursor, chunk, ctx);
 *   ctx.countRead(chunk.end - cursor.offset);
 *   await ctx.add(piece);
 * }
 * ```
 */
export function linePiece<Hint>(
  ref: FileRef<Hint>,
  cursor: LineUnit,
  chunk: LineChunk,
  ctx: ReadContext<Hint>,
  replay = false,
): Piece<Hint> & { cursor: LineUnit } {
  const range: Piece["range"] = {
    unit: ref.path,
    from: cursor.offset,
    to: chunk.end,
    fromLine: cursor.line,
  };
  if (ref.form === "zstd") range.form = "zstd";
  // The line read up to `scanned` ends in this chunk, or was passed over.
  const { scanned: _ended, ...before } = cursor;
  const next: LineUnit = {
    ...before,
    offset: chunk.end,
    line: cursor.line + chunk.lines,
    tailHash: chunk.tail,
  };
  if (chunk.oversizedLine !== undefined) {
    range.oversized = true;
    if (!replay) {
      ctx.problem(
        `${ref.path}:${cursor.line + 1}: line of ${chunk.oversizedLine} bytes exceeds ` +
          `worker.max_line_bytes (${ctx.limits().maxLineBytes}); skipped`,
      );
    }
    return { range, ref, cursor: next, items: [], messages: 0, bytes: 0 };
  }
  const parsed = ctx.parse(
    ref,
    cursor,
    { bytes: chunk.bytes, firstLine: cursor.line + 1 },
    replay,
  );
  next.carry = parsed.carry;
  if (parsed.totals) next.totals = parsed.totals;
  return {
    range,
    ref,
    cursor: next,
    items: parsed.items,
    messages: parsed.messages,
    bytes: parsed.bytes,
  };
}

/** Whether `path` is a regular file now. */
export function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
