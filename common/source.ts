/**
 * The contract between the shared pipeline and a source's parser: complete lines of one file
 * in, canonical conversations and an updated carry out. Parsers implement it without I/O.
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

/**
 * The input of one parse: whole lines of an append-only file from a checkpoint, or, for a file
 * rewritten whole (`FileRef.form === "whole"`), the entire file with the carry of the version
 * delivered before it.
 */
export interface ParseInput<Carry, Hint = unknown> {
  /** Complete lines (each ending in `\n`), starting at a line boundary. */
  bytes: Uint8Array;
  /** 1-based number of the first line in `bytes`. */
  firstLine: number;
  /** State carried from the previous parse of the same file, or `undefined` at offset 0. */
  carry: Carry | undefined;
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
