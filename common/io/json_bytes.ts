/**
 * Byte scans of JSON text in UTF-8, for readers that split a document without parsing it: where
 * a string closes, and what is blank. Every byte they look for is ASCII, which never occurs
 * inside a multi-byte UTF-8 character.
 *
 * @module
 */

/** `"` */
export const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether `b` is JSON whitespace (space, tab, line feed, carriage return).
 *
 * @example A space and a letter
 * ```ts
 * import { isSpace } from "./json_bytes.ts";
 * console.log(isSpace(0x20), isSpace(0x61)); // true false
 * ```
 */
export function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/**
 * The index of the next quote in `chunk` from `from`, or -1. Most strings of a document are
 * short (its keys), and for them a loop is faster than a call of `indexOf`.
 *
 * @example The quote that closes a key
 * ```ts
 * import { nextQuote } from "./json_bytes.ts";
 * console.log(nextQuote(new TextEncoder().encode('"id": 1'), 1)); // 3
 * ```
 */
export function nextQuote(chunk: Uint8Array, from: number): number {
  const n = chunk.length;
  const near = Math.min(from + 24, n);
  for (let i = from; i < near; i++) if (chunk[i] === QUOTE) return i;
  return near < n ? chunk.indexOf(QUOTE, near) : -1;
}

/**
 * How many backslashes stand right before `end`, not looking before `lo`: a quote after an odd
 * number of them is escaped.
 *
 * @example An escaped quote
 * ```ts
 * import { backslashesBefore } from "./json_bytes.ts";
 * const text = new TextEncoder().encode('"a\\"');
 * console.log(backslashesBefore(text, 3, 1)); // 1
 * ```
 */
export function backslashesBefore(chunk: Uint8Array, end: number, lo: number): number {
  let n = 0;
  for (let j = end - 1; j >= lo && chunk[j] === BACKSLASH; j--) n++;
  return n;
}
