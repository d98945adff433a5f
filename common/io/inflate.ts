/**
 * Reading part of a file in chunks, and inflating chunks as a stream (raw deflate for a zip's
 * members, gzip for a `.tgz`), in pieces of at most {@link INFLATED_CHUNK} bytes.
 *
 * @module
 */
import { createGunzip, createInflateRaw } from "node:zlib";
import { pipeline, Readable } from "node:stream";
import type { GuardedFile } from "./guarded_file.ts";

/** The data does not inflate: corrupt, or cut short (gzip checks its own end). */
export class InflateError extends Error {
  override name = "InflateError";
}

/**
 * `length` bytes of `file` from `start`, in chunks of at most `chunkBytes`; throws
 * {@link InflateError} if the file ends first.
 *
 * @example A file in two chunks
 * ```ts
 * import { fileChunks } from "./inflate.ts";
 * import { ReadScope } from "./guarded_file.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a`, "abc");
 * await using file = await new ReadScope([dir]).open(`${dir}/a`);
 * for await (const chunk of fileChunks(file, 0, 3, 2)) console.log(chunk.length); // 2, then 1
 * ```
 */
export async function* fileChunks(
  file: GuardedFile,
  start: number,
  length: number,
  chunkBytes: number,
): AsyncGenerator<Uint8Array<ArrayBuffer>> {
  for (let offset = 0; offset < length;) {
    const bytes = new Uint8Array(Math.min(chunkBytes, length - offset));
    const filled = await file.readInto(bytes, start + offset);
    if (filled.length < bytes.length) throw new InflateError("the archive ended early");
    offset += bytes.length;
    yield bytes;
  }
}

/**
 * The most one inflated chunk holds. Deflate expands up to about 1,032 times, and the web's
 * `DecompressionStream` gives back what one read expands to as one chunk: a 1 MiB read of a
 * member that compresses that well (256 MiB of zeros in 256 KB, within any limit on its declared
 * size, or merely a repetitive 64 MB Takeout page) came back whole. zlib's stream writes into
 * buffers of this size instead.
 */
export const INFLATED_CHUNK = 1024 * 1024;

/**
 * `chunks` inflated, as raw deflate (a zip member) or gzip (a `.tgz`); throws
 * {@link InflateError} for data that does not inflate, or a gzip stream cut short. Chunks may
 * share a buffer: each is valid until the next one is asked for.
 *
 * @example Gzip, inflated
 * ```ts
 * import { inflated } from "./inflate.ts";
 * import { gzipSync } from "node:zlib";
 * async function* one() { yield new Uint8Array(gzipSync("hello")); }
 * for await (const chunk of inflated(one(), "gzip")) console.log(new TextDecoder().decode(chunk)); // hello
 * ```
 */
export async function* inflated(
  chunks: AsyncIterable<Uint8Array>,
  format: "raw" | "gzip",
): AsyncGenerator<Uint8Array> {
  const options = { chunkSize: INFLATED_CHUNK };
  const inflater = format === "gzip" ? createGunzip(options) : createInflateRaw(options);
  // A read that fails (the archive cut short) fails the inflater with it.
  pipeline(Readable.from(chunks), inflater, () => {});
  try {
    for await (const chunk of inflater as AsyncIterable<Uint8Array>) {
      // A plain view, not a Buffer, whose `slice` would not copy.
      yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    }
  } catch (error) {
    if (error instanceof InflateError) throw error;
    const message = (error as Error).message;
    throw new InflateError(
      /unexpected end/i.test(message)
        ? "the compressed data ends early: cut short"
        : `corrupt ${format === "gzip" ? "gzip" : "deflate"} data: ${message}`,
    );
  } finally {
    inflater.destroy();
  }
}
