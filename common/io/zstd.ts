/**
 * Reading `.zst` files (Codex compresses old rollouts). Decompression uses the zstd decoder
 * built into Deno's `node:zlib` (libzstd itself, so no npm dependency, no WebAssembly, and the
 * speed of the reference C library). That decoder returns what it could decode from a truncated
 * file without an error, so the frames are walked first: a file is accepted only when every
 * frame ends with its last block (and checksum) inside the file. What a file may decompress to is
 * capped (a few KB of zstd can expand to gigabytes), and a worker streams the output instead of
 * holding it ({@link decompressZstdStream}).
 *
 * @module
 */
import { createZstdDecompress, zstdDecompressSync } from "node:zlib";
import { concatBytes } from "./bytes.ts";

const ZSTD_MAGIC = 0xfd2fb528;

/**
 * A `.zst` file that cannot be decompressed; the message says where and why.
 *
 * @example Catch a truncated file
 * ```ts
 * import { decompressZstd, ZstdError } from "./zstd.ts";
 * try {
 *   decompressZstd(new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0x00]));
 * } catch (error) {
 *   console.log(error instanceof ZstdError);
 * }
 * ```
 */
export class ZstdError extends Error {
  override name = "ZstdError";
}

/**
 * Checks that `bytes` hold only complete zstd frames (and skippable frames) and returns the
 * data frames; throws {@link ZstdError} naming the byte where a frame is cut short or malformed.
 *
 * @example A complete frame passes
 * ```ts
 * import { checkZstdFrames } from "./zstd.ts";
 * import { zstdCompressSync } from "node:zlib";
 * checkZstdFrames(zstdCompressSync(new TextEncoder().encode("hi\n")));
 * ```
 */
export function checkZstdFrames(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const frames: Uint8Array[] = [];
  if (bytes.length === 0) throw new ZstdError("empty file: expected a zstd frame");
  if (bytes.length < 4) {
    const magic = [0x28, 0xb5, 0x2f, 0xfd];
    throw new ZstdError(
      bytes.every((b, i) => b === magic[i])
        ? `truncated: frame header cut at byte ${bytes.length}`
        : `not a zstd frame at byte 0 (the file has only ${bytes.length} bytes)`,
    );
  }
  while (at < bytes.length) {
    if (at + 4 > bytes.length) throw new ZstdError(`truncated: frame header cut at byte ${at}`);
    const magic = view.getUint32(at, true);
    if ((magic & 0xfffffff0) === 0x184d2a50) {
      // A skippable frame: magic, 4-byte size, data.
      if (at + 8 > bytes.length) throw new ZstdError(`truncated: skippable frame at byte ${at}`);
      at += 8 + view.getUint32(at + 4, true);
      if (at > bytes.length) throw new ZstdError(`truncated: skippable frame ends past the file`);
      continue;
    }
    if (magic !== ZSTD_MAGIC) {
      throw new ZstdError(
        `not a zstd frame at byte ${at} (magic 0x${magic.toString(16)}, expected 0x${
          ZSTD_MAGIC.toString(16)
        })`,
      );
    }
    const frameStart = at;
    at += 4;
    if (at >= bytes.length) {
      throw new ZstdError(`truncated: frame at byte ${frameStart} has no header`);
    }
    const descriptor = bytes[at++];
    const contentSizeFlag = descriptor >> 6;
    const singleSegment = (descriptor >> 5) & 1;
    const checksum = (descriptor >> 2) & 1;
    const dictIdFlag = descriptor & 3;
    at += singleSegment ? 0 : 1; // window descriptor
    at += [0, 1, 2, 4][dictIdFlag];
    at += contentSizeFlag === 0 ? singleSegment : [1, 2, 4, 8][contentSizeFlag];
    while (true) {
      if (at + 3 > bytes.length) {
        throw new ZstdError(
          `truncated: the frame starting at byte ${frameStart} ends at byte ${bytes.length} inside a block header`,
        );
      }
      const header = bytes[at] | (bytes[at + 1] << 8) | (bytes[at + 2] << 16);
      const last = header & 1;
      const type = (header >> 1) & 3;
      const size = header >> 3;
      if (type === 3) throw new ZstdError(`corrupt: reserved block type at byte ${at}`);
      at += 3 + (type === 1 ? 1 : size);
      if (at > bytes.length) {
        throw new ZstdError(
          `truncated: a block of the frame starting at byte ${frameStart} ends past the file (${bytes.length} bytes)`,
        );
      }
      if (last) break;
    }
    if (checksum) {
      at += 4;
      if (at > bytes.length) {
        throw new ZstdError(`truncated: frame checksum cut at byte ${bytes.length}`);
      }
    }
    frames.push(bytes.subarray(frameStart, at));
  }
  return frames;
}

/**
 * The content would exceed the decompression limit (`worker.max_decompressed_bytes`).
 *
 * @example The message names the limit
 * ```ts
 * import { ZstdLimitError } from "./zstd.ts";
 * console.log(new ZstdLimitError(1024).message);
 * ```
 */
export class ZstdLimitError extends ZstdError {
  override name = "ZstdLimitError";
  /** Creates the error for `limit` bytes. */
  constructor(readonly limit: number) {
    super(
      `decompresses to more than ${limit} bytes (worker.max_decompressed_bytes); ` +
        `the rest is not read`,
    );
  }
}

/**
 * Decompresses a whole `.zst` file's bytes after {@link checkZstdFrames}, into at most `limit`
 * bytes ({@link ZstdLimitError} beyond); a checksum mismatch or other decoder error becomes a
 * {@link ZstdError}.
 *
 * @example Round trip
 * ```ts
 * import { decompressZstd } from "./zstd.ts";
 * import { zstdCompressSync } from "node:zlib";
 * const out = decompressZstd(zstdCompressSync(new TextEncoder().encode("hi\n")));
 * console.log(new TextDecoder().decode(out)); // "hi\n"
 * ```
 */
export function decompressZstd(bytes: Uint8Array, limit = 1 << 30): Uint8Array {
  let left = limit;
  // Frame by frame: the decoder stops after the first frame of a multi-frame file.
  const parts = checkZstdFrames(bytes).map((frame) => {
    try {
      const part = zstdDecompressSync(frame, { maxOutputLength: Math.max(1, left) });
      left -= part.byteLength;
      if (left < 0) throw new ZstdLimitError(limit);
      return part;
    } catch (error) {
      if (error instanceof ZstdError) throw error;
      if (error instanceof RangeError) throw new ZstdLimitError(limit);
      throw new ZstdError(`corrupt: ${(error as Error).message}`);
    }
  });
  return concatBytes(parts.map((p) => new Uint8Array(p.buffer, p.byteOffset, p.byteLength)));
}

/**
 * The content of checked frames ({@link checkZstdFrames}) as a stream of chunks, so a large
 * file is never held whole; stops with {@link ZstdLimitError} once more than `limit` bytes came
 * out, and turns decoder errors into {@link ZstdError}.
 *
 * @example Count the decompressed bytes
 * ```ts
 * import { checkZstdFrames, decompressZstdStream } from "./zstd.ts";
 * import { zstdCompressSync } from "node:zlib";
 * const frames = checkZstdFrames(zstdCompressSync(new Uint8Array(100_000)));
 * let n = 0;
 * for await (const chunk of decompressZstdStream(frames, 1 << 20)) n += chunk.length;
 * console.log(n); // 100000
 * ```
 */
export async function* decompressZstdStream(
  frames: readonly Uint8Array[],
  limit: number,
): AsyncGenerator<Uint8Array> {
  let total = 0;
  for (const frame of frames) {
    const decoder = createZstdDecompress();
    decoder.end(frame);
    try {
      for await (const chunk of decoder as AsyncIterable<Uint8Array>) {
        total += chunk.byteLength;
        if (total > limit) throw new ZstdLimitError(limit);
        yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      }
    } catch (error) {
      if (error instanceof ZstdError) throw error;
      throw new ZstdError(`corrupt: ${(error as Error).message}`);
    } finally {
      decoder.destroy();
    }
  }
}
