/**
 * What of an export is new: each conversation and message of an export gets a fingerprint of
 * its content, and only those whose fingerprint no export delivered before are sent. The
 * fingerprints are recorded with the checkpoint of the batch that carried them
 * ({@link Piece.marks}), so after a crash what was not acknowledged is sent again and what was
 * is not; the same export under another name, or a newer one, sends only what changed.
 *
 * @module
 */
import { fingerprint64 } from "../hash.ts";
import { type Item, itemOf } from "../delivery/item.ts";
import type { Mark } from "../state/state.ts";
import type { Conversation } from "../types.ts";

/** What an import found, for the log, the `--once` summary and status. */
export interface ExportReport {
  /** The export's path (and member, for a problem). */
  export: string;
  /** Its content hash (MD5). */
  hash: string;
  conversations: number;
  messages: number;
  /** Conversations no export delivered before. */
  new: number;
  /** Conversations delivered before that changed (only their new or changed messages go). */
  changed: number;
  unchanged: number;
  /** Messages sent (new or changed). */
  sent: number;
  /** Records passed over, by reason. */
  skipped: Record<string, number>;
  /** Problems that cost part of the export (a member that could not be read, a bad record). */
  errors: string[];
  /** Files the export says it holds and does not. */
  missing: string[];
  /** Whether every member was read (nothing missing, no error). */
  complete: boolean;
  /** When the import ended. */
  at: string;
}

/**
 * A report with nothing counted yet.
 *
 * @example Start a report
 * ```ts
 * import { newReport } from "./export_delta.ts";
 * console.log(newReport("/drop/export.zip", "d41d8cd98f00b204e9800998ecf8427e").complete); // true
 * ```
 */
export function newReport(path: string, hash: string): ExportReport {
  return {
    export: path,
    hash,
    conversations: 0,
    messages: 0,
    new: 0,
    changed: 0,
    unchanged: 0,
    sent: 0,
    skipped: {},
    errors: [],
    missing: [],
    complete: true,
    at: "",
  };
}

/** The key under which an export's content hash is recorded once it was imported whole. */
export function exportKey(hash: string): string {
  return `x:${hash}`;
}

/**
 * The items of a parse reduced to what is new, with the marks that record them: a conversation
 * whose fingerprint was delivered is dropped; one that changed keeps only the messages whose
 * fingerprint was not delivered with it (none when only its title or metadata changed).
 *
 * A conversation's mark holds its last fingerprints and those of every message delivered with it
 * (`<print>+<print before>… <m1>,<m2>,…`): one row per conversation, not per message, to write and
 * to look up.
 *
 * @example A conversation seen before sends nothing
 * ```ts
 * import { newReport, selectNew } from "./export_delta.ts";
 * import { itemOf } from "../delivery/item.ts";
 * const conversation = { uuid: "c1", title: "t", created_at: "", updated_at: "", metadata: {}, messages: [] };
 * const item = itemOf(conversation, "json");
 * const report = newReport("e.json", "h");
 * const first = selectNew([item], () => undefined, report);
 * const known = new Map(first.marks);
 * console.log(selectNew([item], (k) => known.get(k), report).items.length); // 0
 * ```
 */
export function selectNew(
  items: readonly Item[],
  fingerprint: (key: string) => string | undefined,
  report: ExportReport,
): { items: Item[]; marks: Mark[]; messages: number } {
  const out: Item[] = [];
  const marks: Mark[] = [];
  /** The marks made here, for a conversation that comes again in the same call. */
  const made = new Map<string, string>();
  let messages = 0;
  for (const item of items) {
    const conversation = item.conversation;
    report.conversations++;
    report.messages += conversation.messages.length;
    const prints = conversation.messages.map((m) => fingerprint64(JSON.stringify(m)));
    const print = conversationPrint(conversation, prints);
    const key = `c:${conversation.uuid}`;
    const before = made.get(key) ?? fingerprint(key);
    const space = before?.indexOf(" ") ?? -1;
    const seen = before === undefined
      ? []
      : (space < 0 ? before : before.slice(0, space)).split("+");
    if (seen.includes(print)) {
      report.unchanged++;
      continue;
    }
    if (before === undefined) report.new++;
    else report.changed++;
    const delivered = new Set(space < 0 ? [] : before!.slice(space + 1).split(","));
    const fresh = conversation.messages.filter((_, i) => !delivered.has(prints[i]));
    // A conversation can come in parts under one id (a Gemini thread cut at GROUP_CHARS), and
    // where the cut falls moves as newer exports add to it: what was delivered stays known with
    // what is delivered now, and the last parts' own prints with it. Remembered as its last
    // part only, the other parts were sent again by every newer export.
    for (const p of prints) delivered.add(p);
    delivered.delete("");
    const mark = `${[print, ...seen].slice(0, KEPT_PRINTS).join("+")} ${[...delivered].join(",")}`;
    made.set(key, mark);
    marks.push([key, mark]);
    messages += fresh.length;
    report.sent += fresh.length;
    if (fresh.length === conversation.messages.length) out.push(item);
    else {
      out.push(itemOf({ ...conversation, messages: fresh }, item.form));
    }
  }
  return { items: out, marks, messages };
}

/** How many of a conversation's last prints (of its parts, or its versions) its mark keeps. */
const KEPT_PRINTS = 16;

/** A conversation's fingerprint: its fields besides the messages, and its messages' prints. */
function conversationPrint(conversation: Conversation, prints: readonly string[]): string {
  const { messages: _, ...envelope } = conversation;
  return fingerprint64(`${JSON.stringify(envelope)}|${prints.join(",")}`);
}

/**
 * One line of a report, for the log and the summary.
 *
 * @example Describe an import
 * ```ts
 * import { describeReport, newReport } from "./export_delta.ts";
 * console.log(describeReport(newReport("/drop/export.zip", "h")));
 * ```
 */
export function describeReport(r: ExportReport): string {
  const skipped = Object.entries(r.skipped).map(([why, n]) => `${n} ${why}`).join(", ");
  return [
    `${r.export}: ${r.conversations} conversations, ${r.messages} messages`,
    `${r.new} new, ${r.changed} changed, ${r.unchanged} unchanged, ${r.sent} messages sent`,
    ...(skipped ? [`skipped: ${skipped}`] : []),
    ...(r.missing.length ? [`missing from the export: ${r.missing.join(", ")}`] : []),
    ...(r.errors.length ? [`${r.errors.length} error(s): ${r.errors.join("; ")}`] : []),
  ].join("; ");
}
