/**
 * The reader of compressed copies of appended files (`FileRef.form` `zstd`, `.jsonl.zst`):
 * decompressed as a stream, at most `worker.max_decompressed_bytes`, and read from the cursor
 * like the file it was, counted in its content. A copy with no state of its own continues the
 * unit its source says it continues, so a delivered file that gets compressed sends nothing new.
 * Its content is only ever read forward: a recorded range is not replayed but read again.
 *
 * @module
 */
import { checkZstdFrames, decompressZstdStream, ZstdError, ZstdLimitError } from "../io/zstd.ts";
import { isLineUnit, type LineUnit } from "./cursor.ts";
import { linePiece, resumeLines } from "./line_reading.ts";
import { type FileStat, readCompleteLines, StreamSource } from "./lines.ts";
import {
  type FileRef,
  type ReadContext,
  sameVersion,
  type UnitReader,
  wholeBacklog,
} from "./unit.ts";

/**
 * Reads compressed copies.
 *
 * @example Nothing is left to read in a copy read to its end
 * ```ts
 * import { compressedFileReader } from "./compressed_file.ts";
 * const stat = { dev: 1, ino: 2, size: 10, mtimeMs: 5 };
 * console.log(compressedFileReader.backlog(stat, { offset: 40, fileSize: 10, mtimeMs: 5 })); // 0
 * ```
 */
export const compressedFileReader: UnitReader = {
  // Decompressed whole when changed: all of it is to read, or nothing.
  backlog: wholeBacklog,

  async read<Hint>(ref: FileRef<Hint>, stat: FileStat, ctx: ReadContext<Hint>): Promise<void> {
    try {
      await readCompressed(ref, stat, ctx);
    } catch (error) {
      if (!(error instanceof ZstdError)) throw error;
      ctx.failOnce(
        ref.path,
        stat,
        `${ref.path}: cannot decompress (${error.message}); read again when the file changes`,
      );
    }
  },

  replay<Hint>(_ref: FileRef<Hint>, range: { unit: string }): Promise<string> {
    // Its ids are deterministic and its carry did not move: reading it again sends the same.
    return Promise.resolve(`${range.unit} is read whole; it is read again`);
  },
};

async function readCompressed<Hint>(
  ref: FileRef<Hint>,
  stat: FileStat,
  ctx: ReadContext<Hint>,
): Promise<void> {
  const { state } = ctx;
  const pending = ctx.pending(ref.path);
  const ahead = isLineUnit(pending) ? pending : undefined;
  const known = ahead ? undefined : state.getUnit(ref.path);
  const last = ahead ?? known;
  if (last?.status === "active" && sameVersion(last, stat)) return;
  const limits = ctx.limits();
  const limit = limits.maxDecompressedBytes;
  let frames: Uint8Array[];
  let identity: FileStat;
  {
    await using file = await ctx.scope.open(ref.path);
    identity = file.stat;
    frames = checkZstdFrames(await file.readAll(limit, " (worker.max_decompressed_bytes)"));
  }
  const decompress = () => new StreamSource(decompressZstdStream(frames, limit));
  let source = decompress();
  /** The next lines, or where the decompression limit stopped them. */
  const next = async (offset: number) => {
    try {
      return {
        chunk: await readCompleteLines(source, offset, limits.chunkBytes, limits.maxLineBytes),
      };
    } catch (error) {
      if (error instanceof ZstdLimitError) return { chunk: null, limit: error };
      throw error;
    }
  };
  try {
    let cursor: LineUnit = ahead ??
      await resumeLines(ref, source, identity, undefined, known, "compressed", ctx);
    if (!ahead && cursor.offset === 0) {
      // Starting over needs the content from its start, which the stream has passed.
      await source.close();
      source = decompress();
    }
    let step = await next(cursor.offset);
    let read = false;
    while (step.chunk && !ctx.stopping()) {
      const piece = linePiece(ref, cursor, step.chunk, ctx);
      cursor = piece.cursor;
      // One step ahead, to know whether this piece reaches the end.
      const following = await next(cursor.offset);
      if (!following.chunk) {
        // Read to the end: the stat says so from now on (a partial read leaves it unset).
        cursor.fileSize = stat.size;
        cursor.mtimeMs = stat.mtimeMs;
      }
      read = true;
      await ctx.add(piece);
      step = following;
    }
    // Progress counts file bytes: a compressed file counts its size on disk once read.
    ctx.countRead(stat.size);
    if (step.limit) {
      ctx.failOnce(
        ref.path,
        stat,
        `${ref.path}: ${step.limit.message}; everything before byte ${cursor.offset} of its ` +
          `content was read; raise the limit and restart to read the rest`,
      );
    } else if (!read && !ctx.pending(ref.path)) {
      // Nothing new: remember this file as read, so it is not decompressed again.
      state.putUnit({ ...cursor, fileSize: stat.size, mtimeMs: stat.mtimeMs });
    }
  } finally {
    await source.close();
  }
}
