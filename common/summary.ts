/**
 * What a `--once` run did, for a person (a table) or a program (one JSON line per source, in a
 * stable order).
 *
 * @module
 */
import { printable } from "./redact.ts";

/** One source's run. */
export interface RunSummary {
  source: string;
  conversations: number;
  messages: number;
  /** Lines skipped: bookkeeping lines, and input problems (named on stderr). */
  skipped: number;
  /** Failures: delivery, state, files that could not be read, data lost. */
  errors: number;
  /** Tokens of the messages delivered (`usage.total`). */
  tokens: number;
  /** Where the data went. */
  target: string;
  /** For an export source: one line per export imported (what it held, what was sent). */
  exports?: string[];
}

/**
 * The summaries as a table with one row per source and where each went.
 *
 * @example Two sources
 * ```ts
 * import { summaryTable } from "./summary.ts";
 * console.log(summaryTable([
 *   { source: "claude_code", conversations: 3, messages: 120, skipped: 4, errors: 0, tokens: 51234, target: "embedded store /s/conversations.db" },
 *   { source: "codex", conversations: 1, messages: 9, skipped: 0, errors: 0, tokens: 800, target: "embedded store /s/conversations.db" },
 * ]));
 * ```
 */
export function summaryTable(rows: readonly RunSummary[]): string {
  const header = ["source", "conversations", "messages", "tokens", "skipped", "errors"];
  const cells = rows.map((r) => [
    r.source,
    r.conversations.toLocaleString("en-US"),
    r.messages.toLocaleString("en-US"),
    r.tokens.toLocaleString("en-US"),
    r.skipped.toLocaleString("en-US"),
    r.errors.toLocaleString("en-US"),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) =>
    c.map((v, i) => i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i])).join("  ");
  const targets = [...new Set(rows.map((r) => r.target))];
  return [
    line(header),
    ...cells.map(line),
    ...targets.map((t) => `delivered to ${t}`),
    // An export's line names its file and quotes its errors.
    ...rows.flatMap((r) => r.exports ?? []).map((e) => printable(e, Infinity, true)),
  ].join("\n");
}
