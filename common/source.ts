/**
 * The contract between the shared pipeline and a source's parser: complete lines of one file,
 * or a document as records, in; canonical conversations and an updated carry out. Parsers
 * implement it without I/O.
 *
 * A document (a file rewritten whole) reaches its parser in parts ({@link DocumentPart}): its
 * records, the elements of its record array, a few at a time, so that a document of any size
 * is never held whole. The parts of one reading make a pass: the first starts it, the last ends
 * it, and the carry goes from each part to the next. Parsing a document in parts must give
 * what parsing it in one part gives: the union of the messages, and from the last part the
 * conversations' final metadata.
 *
 * @module
 */
import type { Conversation } from "./types.ts";

/** A problem with one input line, reported with its 1-based line number. */
export interface LineIssue {
  /** 1-based line number in the file. */
  line: number;
  /** What was wrong and what was expected. */
  message: string;
}

/** What the pipeline knows about a file when it asks a parser to read it. */
export interface FileContext<Hint = unknown> {
  /** The file's path, for messages only: ids never depend on it. */
  path: string;
  /** Facts the source derived from the path (session id, agent id, ...), typed by the source. */
  hint: Hint;
  /** The machine's host name, added to conversation metadata. */
  host: string;
}

/** How a document holds its records, which decides how it is read. */
export interface DocumentShape {
  /** Top-level keys whose array holds the records (a root array's elements always are). */
  recordKeys: readonly string[];
  /** Whether its parser takes it in parts; if not, all its records come in one part. */
  inParts: boolean;
  /**
   * Each record parses alone into at most one conversation of its own (an export's
   * conversations): a record an export delivered before, byte for byte, is passed over
   * unparsed by a newer export.
   */
  recordPerConversation?: boolean;
}

/** A part of a document: some of its records, in document order, and its other fields. */
export interface DocumentPart {
  /**
   * The root's kind (`other`: neither an object nor an array, or a page of cells read in parts,
   * whose text is the input's `bytes`: see {@link pagePart}).
   */
  root: "object" | "array" | "other";
  /** The root object's fields other than its records (`{}` for an array), in every part. */
  header: Record<string, unknown>;
  /** The key of the array the records come from (`""`: the root array), `null` if none. */
  recordsKey: string | null;
  /** The records, parsed. */
  records: unknown[];
  /** The index in the document of `records[0]`. */
  index: number;
  /** The first part of a pass: the parser starts one (its carry holds the previous version). */
  first: boolean;
  /** The last part: the parser ends the pass (what the document no longer holds is gone). */
  last: boolean;
}

/**
 * The input of one parse: whole lines of an append-only file from a checkpoint, or a part of a
 * document rewritten whole (`FileRef.form === "whole"`), with the carry of the parse before (for
 * a document's first part, that of the version delivered before it). A document may also come
 * as `bytes`, the whole of it, which is one part.
 */
export interface ParseInput<Carry, Hint = unknown> {
  /** Complete lines (each ending in `\n`), starting at a line boundary; or a whole document. */
  bytes: Uint8Array;
  /** A part of a document, read as records (then `bytes` is empty). */
  document?: DocumentPart;
  /** 1-based number of the first line in `bytes`. */
  firstLine: number;
  /** State carried from the previous parse of the same file, or `undefined` at offset 0. */
  carry: Carry | undefined;
  /**
   * The carry is this parse's own: nobody else holds it, and the parser may change it instead
   * of copying it (the pipeline gives every parse a carry of its own; a caller that keeps the
   * carry it passes leaves this unset).
   */
  carryOwned?: boolean;
  /** The file being parsed. */
  file: FileContext<Hint>;
}

/** The output of one incremental parse. */
export interface ParseOutput<Carry> {
  /** Conversations carrying the messages found in these lines. */
  conversations: Conversation[];
  /** State to pass to the next parse of the same file. */
  carry: Carry;
  /** Lines that produced a message. */
  messages: number;
  /** Lines consumed as metadata (titles and the like). */
  metadata: number;
  /** Lines skipped, counted by reason. */
  skipped: Record<string, number>;
  /** Malformed lines, with their line numbers. */
  issues: LineIssue[];
  /** Lines of a kind this version does not know, skipped: worth a warning, not an error. */
  warnings?: LineIssue[];
  /**
   * What this file contributes to each conversation so far (cumulative): its messages and its
   * usage. When a conversation spans several files (Claude Code's sub-agents), the pipeline sends
   * the sum over its files as `metadata.message_count` and `metadata.usage`.
   */
  totals?: Record<string, ConversationTotals>;
}

/** One file's contribution to a conversation's counts. */
export interface ConversationTotals {
  messages: number;
  /** In the shape of `parsers/usage.ts`: input, output, cache_read, cache_write, reasoning, total. */
  usage: Record<string, number>;
}

/** A source's parser: complete lines (or a whole document) and the carry in, conversations out. */
export type Parser<Carry, Hint = unknown> = (input: ParseInput<Carry, Hint>) => ParseOutput<Carry>;

/**
 * The carry a parse works on: the input's own when the caller gave it up (`carryOwned`), else a
 * copy, so that a parser never changes what a caller keeps; `fresh` when there is none.
 *
 * @example Work on a copy
 * ```ts
 * import { carryOf } from "./source.ts";
 * const kept = { seen: 1 };
 * const carry = carryOf({ bytes: new Uint8Array(0), firstLine: 1, carry: kept, file: { path: "f", hint: {}, host: "h" } }, () => ({ seen: 0 }));
 * carry.seen++;
 * console.log(kept.seen); // 1
 * ```
 */
export function carryOf<Carry>(input: ParseInput<Carry, unknown>, fresh: () => Carry): Carry {
  if (input.carry === undefined) return fresh();
  return input.carryOwned ? input.carry : structuredClone(input.carry);
}

/**
 * A parse's output with nothing found yet, for a parser to fill.
 *
 * @example Start an output
 * ```ts
 * import { emptyOutput } from "./source.ts";
 * const out = emptyOutput(null);
 * out.messages++;
 * ```
 */
export function emptyOutput<Carry>(carry: Carry): ParseOutput<Carry> {
  return {
    conversations: [],
    carry,
    messages: 0,
    metadata: 0,
    skipped: {},
    issues: [],
    warnings: [],
  };
}

/**
 * Adds `n` to `counts[key]`.
 *
 * @example Count a skipped line
 * ```ts
 * import { bump } from "./source.ts";
 * const skipped: Record<string, number> = {};
 * bump(skipped, "blank line");
 * ```
 */
export function bump(counts: Record<string, number>, key: string, n = 1): void {
  counts[key] = (counts[key] ?? 0) + n;
}

/**
 * Sets a field of a document's `header` under a key read from the input, as an own property:
 * assigning `__proto__` would change the header's prototype instead, and every field it lacks
 * would then be read from the input's object.
 *
 * @example A key that would have been the prototype
 * ```ts
 * import { setHeaderField } from "./source.ts";
 * const header: Record<string, unknown> = {};
 * setHeaderField(header, "__proto__", { sessionId: "not mine" });
 * console.log(header.sessionId); // undefined
 * ```
 */
export function setHeaderField(header: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(header, key, {
    value,
    writable: true,
    enumerable: true,
    configurable: true,
  });
}

/**
 * A part of a page of cells (an HTML page read in parts of whole cells): the part's text is the
 * input's `bytes`, and `index` counts the cells before it.
 *
 * @example The first of several parts
 * ```ts
 * import { pagePart } from "./source.ts";
 * console.log(pagePart(0, true, false).root); // other
 * ```
 */
export function pagePart(index: number, first: boolean, last: boolean): DocumentPart {
  return { root: "other", header: {}, recordsKey: null, records: [], index, first, last };
}
