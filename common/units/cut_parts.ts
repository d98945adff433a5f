/**
 * A text document of cells (an HTML page such as Takeout's `MyActivity.html`, one
 * `<div class="outer-cell` per record) cut into parts before its cells' marker, so that a page of
 * any size is read a part at a time, as JSON documents are read a record at a time: each part
 * holds whole cells, the text before the first cell going with the first part. Only bytes are
 * looked at: the marker is ASCII, which never occurs inside a multi-byte UTF-8 character.
 *
 * @module
 */
import { concatBytes } from "../io/bytes.ts";

/** A part: whole cells, and how many there are before it. */
export interface CutPart {
  bytes: Uint8Array;
  /** Cells in the parts before this one. */
  cellsBefore: number;
}

/**
 * A cell longer than the limit (no marker within that many bytes); `offset`: where it starts.
 *
 * @example A cell with no end in sight
 * ```ts
 * import { CellTooLongError, MarkerCutter } from "./cut_parts.ts";
 * const cutter = new MarkerCutter("<cell", 4, 8);
 * try {
 *   cutter.push(new TextEncoder().encode("<cell " + "x".repeat(20)));
 * } catch (error) {
 *   console.log(error instanceof CellTooLongError); // true
 * }
 * ```
 */
export class CellTooLongError extends Error {
  override name = "CellTooLongError";
  /** `limit`: the longest cell allowed, in bytes. */
  constructor(readonly offset: number, readonly limit: number) {
    super(`a cell at byte ${offset} is longer than ${limit} bytes`);
  }
}

/** Where `needle` occurs in `hay` at or after `from`, or -1. */
function indexOfBytes(hay: Uint8Array, needle: Uint8Array, from: number): number {
  for (let at = hay.indexOf(needle[0], from); at !== -1; at = hay.indexOf(needle[0], at + 1)) {
    let i = 1;
    while (i < needle.length && hay[at + i] === needle[i]) i++;
    if (i === needle.length) return at;
  }
  return -1;
}

/**
 * Cuts a document fed in chunks into parts of about `partBytes`, each ending right before a
 * marker; throws {@link CellTooLongError} when no marker comes within `maxCellBytes` of the last.
 *
 * @example Two cells per part
 * ```ts
 * import { MarkerCutter } from "./cut_parts.ts";
 * const cutter = new MarkerCutter("<c>", 6, 100);
 * const text = new TextEncoder().encode("head<c>a<c>b<c>c");
 * const parts = [...cutter.push(text), ...cutter.end()];
 * console.log(parts.map((p) => new TextDecoder().decode(p.bytes))); // ["head<c>a<c>b", "<c>c"]
 * ```
 */
export class MarkerCutter {
  readonly #marker: Uint8Array;
  #held: Uint8Array[] = [];
  #heldBytes = 0;
  /** Bytes of the document before what is held. */
  #base = 0;
  /** Markers in the parts given out. */
  #cells = 0;

  /** Cuts before `marker`. */
  constructor(marker: string, readonly partBytes: number, readonly maxCellBytes: number) {
    this.#marker = new TextEncoder().encode(marker);
  }

  /** Feeds the next bytes; returns the parts they completed. */
  push(chunk: Uint8Array): CutPart[] {
    // A copy: the caller may read the next chunk into the same buffer.
    this.#held.push(chunk.slice());
    this.#heldBytes += chunk.length;
    if (this.#heldBytes < this.partBytes) return [];
    const held = concatBytes(this.#held);
    const base = this.#base;
    // Cut before the first marker at least `partBytes` after the last cut, as often as the
    // bytes allow (a chunk may be many parts long); what is before a marker is whole cells.
    const parts: CutPart[] = [];
    let start = 0;
    let cell = 0;
    for (let at = indexOfBytes(held, this.#marker, 1); at !== -1;) {
      if (at - cell > this.maxCellBytes) {
        throw new CellTooLongError(base + cell, this.maxCellBytes);
      }
      cell = at;
      if (at - start >= this.partBytes) {
        parts.push(this.#part(held.subarray(start, at)));
        start = at;
      }
      at = indexOfBytes(held, this.#marker, at + 1);
    }
    if (held.length - cell > this.maxCellBytes) {
      throw new CellTooLongError(base + cell, this.maxCellBytes);
    }
    const rest = held.slice(start);
    this.#held = [rest];
    this.#heldBytes = rest.length;
    return parts;
  }

  /** Ends the document: the last part (whole cells, or nothing). */
  end(): CutPart[] {
    const last = this.#part(concatBytes(this.#held));
    this.#held = [];
    this.#heldBytes = 0;
    return [last];
  }

  #part(bytes: Uint8Array): CutPart {
    const part = { bytes, cellsBefore: this.#cells };
    for (let at = indexOfBytes(bytes, this.#marker, 0); at !== -1;) {
      this.#cells++;
      at = indexOfBytes(bytes, this.#marker, at + 1);
    }
    this.#base += bytes.length;
    return part;
  }
}
