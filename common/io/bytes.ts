/**
 * Joining byte chunks, which several readers collect before they decode.
 *
 * @module
 */

/**
 * The chunks joined into one array (the chunk itself when there is one), at most `limit` bytes.
 *
 * @example Join two chunks
 * ```ts
 * import { concatBytes } from "./bytes.ts";
 * const joined = concatBytes([new Uint8Array([1, 2]), new Uint8Array([3])]);
 * console.log(joined); // Uint8Array(3) [ 1, 2, 3 ]
 * ```
 */
export function concatBytes(chunks: readonly Uint8Array[], limit = Infinity): Uint8Array {
  const size = Math.min(limit, chunks.reduce((n, c) => n + c.byteLength, 0));
  if (chunks.length === 1 && chunks[0].byteLength === size) return chunks[0];
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    if (at >= size) break;
    const part = chunk.subarray(0, size - at);
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/**
 * Every chunk of `chunks` joined, each copied as it comes (a reader may hand out the same buffer
 * again for its next chunk).
 *
 * @example Collect a stream
 * ```ts
 * import { collectBytes } from "./bytes.ts";
 * async function* two() {
 *   yield new Uint8Array([1]);
 *   yield new Uint8Array([2]);
 * }
 * console.log(await collectBytes(two())); // Uint8Array(2) [ 1, 2 ]
 * ```
 */
export async function collectBytes(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const chunk of chunks) parts.push(chunk.slice());
  return concatBytes(parts);
}
