/**
 * Small pure helpers every parser shares: reading JSON lines with their line numbers, and
 * narrowing untyped JSON values.
 *
 * @module
 */
import { bump, emptyOutput, type LineIssue, type ParseOutput } from "../common/source.ts";
import { ID_LIMIT, isTimestamp } from "../common/types.ts";
import { derivedUuid } from "../common/hash.ts";

/** A JSON object whose shape is not known yet. */
export type Json = Record<string, unknown>;

const decoder = new TextDecoder();
const WHITESPACE = /\s/;

/** Whether a line starting with this code unit can be blank: a test of the code before the regex. */
function mayBeSpace(code: number): boolean {
  return code <= 32 || (code >= 0x80 && WHITESPACE.test(String.fromCharCode(code)));
}
const EMPTY = new Uint8Array(0);

/**
 * Whether `v` is a plain JSON object.
 *
 * @example Narrow a parsed value
 * ```ts
 * import { isObject } from "./json_lines.ts";
 * isObject(JSON.parse('{"a":1}')); // true
 * ```
 */
export function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * `record[key]` if the record holds that key itself, else `undefined`: a key read from input such
 * as `constructor` must not find what every object inherits.
 *
 * @example A key every object inherits
 * ```ts
 * import { ownEntry } from "./json_lines.ts";
 * ownEntry({ a: 1 }, "constructor") === undefined;
 * ```
 */
export function ownEntry<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  // One lookup when the key is missing, the common case; a second only for what was found.
  const value = record[key];
  return value !== undefined && Object.hasOwn(record, key) ? value : undefined;
}

/**
 * Sets `record[key]` as the record's own entry, also for the key `__proto__`, which an assignment
 * takes as the record's prototype instead.
 *
 * @example Keep `__proto__` as a key
 * ```ts
 * import { setEntry } from "./json_lines.ts";
 * const ids: Record<string, number> = {};
 * setEntry(ids, "__proto__", 1);
 * console.log(Object.keys(ids)); // ["__proto__"]
 * ```
 */
export function setEntry<T>(record: Record<string, T>, key: string, value: T): void {
  if (key === "__proto__") {
    Object.defineProperty(record, key, {
      value,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  } else record[key] = value;
}

/**
 * Whether `obj` has an own enumerable key, found without listing them all (`Object.keys` per
 * message allocated an array for every one).
 *
 * @example An empty metadata object
 * ```ts
 * import { hasKeys } from "./json_lines.ts";
 * hasKeys({}) === false;
 * ```
 */
export function hasKeys(obj: Json): boolean {
  for (const key in obj) {
    if (Object.hasOwn(obj, key)) return true;
  }
  return false;
}

/**
 * `v` if it is a string, else `""`.
 *
 * @example Read an optional string field
 * ```ts
 * import { str } from "./json_lines.ts";
 * str(undefined) === "";
 * ```
 */
export function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

// deno-lint-ignore no-control-regex
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;

/**
 * An id read from input as the schema takes one: the string itself when it is one (at most
 * `ID_LIMIT` characters, no control characters), a UUID derived from it when it is any other
 * non-empty string, else `""`. Derived the same way every time, so a message that names it as
 * its parent still finds it; the schema refuses the conversation or message of an id with a NUL
 * or of a megabyte.
 *
 * @example A clean id, and one with a NUL
 * ```ts
 * import { idOf } from "./json_lines.ts";
 * console.log(idOf("a1b2")); // a1b2
 * console.log(idOf("a\u0000b") === idOf("a\u0000b")); // true
 * ```
 */
export function idOf(v: unknown): string {
  if (typeof v !== "string" || v.length === 0) return "";
  return v.length > ID_LIMIT || CONTROL_CHARACTER.test(v) ? derivedUuid("id", v) : v;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Whether `id` is a UUID (the dash positions first: most ids that are not fail there). An id
 * that is one is random or derived, unique wherever it appears; any other id (`m1`, a counter)
 * is unique only where it was written, and parsers scope it to its conversation.
 *
 * @example A UUID and a name
 * ```ts
 * import { isUuid } from "./json_lines.ts";
 * console.log(isUuid("0e9b5094-ff74-52f7-987e-fe07f80b0901"), isUuid("m1")); // true false
 * ```
 */
export function isUuid(id: string): boolean {
  return id.length === 36 && id[8] === "-" && id[13] === "-" && UUID.test(id);
}

/**
 * `v` if it is a string of at most `limit` characters, else `""`: for a name or an id a parser
 * copies onto every message after it (a model, a tool's name, a parent), where one long value in
 * a file would otherwise be stored, and held in memory, once per message.
 *
 * @example A model name and something that is not one
 * ```ts
 * import { shortStr } from "./json_lines.ts";
 * shortStr("gpt-5.1-codex", 256) === "gpt-5.1-codex";
 * shortStr("m".repeat(1000), 256) === "";
 * ```
 */
export function shortStr(v: unknown, limit: number): string {
  return typeof v === "string" && v.length <= limit ? v : "";
}

/**
 * `v` if it is a finite number, else 0.
 *
 * @example Read an optional number field
 * ```ts
 * import { num } from "./json_lines.ts";
 * num("3") === 0;
 * ```
 */
export function num(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) ? v : 0;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

/**
 * A time in milliseconds since 1970 as `toISOString` writes it, for times from 1970 to the end
 * of 9999, four times as fast (an export's messages have a time or two each).
 *
 * @example The first second of 2025
 * ```ts
 * import { isoOfEpochMs } from "./json_lines.ts";
 * console.log(isoOfEpochMs(1735689600000)); // 2025-01-01T00:00:00.000Z
 * ```
 */
export function isoOfEpochMs(ms: number): string {
  // Days to a civil date: Howard Hinnant's `civil_from_days`, on eras of 400 years.
  const days = Math.floor(ms / 86_400_000);
  let rest = ms - days * 86_400_000;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) / 365,
  );
  const dayOfYear = dayOfEra -
    (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const shifted = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * shifted + 2) / 5) + 1;
  const month = shifted < 10 ? shifted + 3 : shifted - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  const hour = Math.floor(rest / 3_600_000);
  rest -= hour * 3_600_000;
  const minute = Math.floor(rest / 60_000);
  rest -= minute * 60_000;
  const second = Math.floor(rest / 1000);
  const milli = rest - second * 1000;
  return `${year}-${pad2(month)}-${pad2(day)}T${pad2(hour)}:${pad2(minute)}:${pad2(second)}.` +
    `${milli < 10 ? "00" : milli < 100 ? "0" : ""}${milli}Z`;
}

/**
 * `v` if it is an RFC 3339 timestamp of a real date and time (`isTimestamp`), else `""`
 * (sources sometimes hold placeholders).
 *
 * @example Keep only real timestamps
 * ```ts
 * import { timestamp } from "./json_lines.ts";
 * timestamp("2025-01-01T00:00:00Z") === "2025-01-01T00:00:00Z";
 * ```
 */
export function timestamp(v: unknown): string {
  return typeof v === "string" && isTimestamp(v) ? v : "";
}

/** How {@link eachJsonLine} reads lines. */
export interface JsonLineOptions {
  /** Hand `visit` each line's bytes as written (else an empty array). */
  withBytes?: boolean;
  /**
   * Deals with a line from its text alone, returning true, or returns false to have it parsed:
   * a parser that can tell from the first bytes of a line that it needs nothing of it spares
   * the parse (JSON.parse is most of what reading a line costs).
   */
  unparsed?: (line: string, lineNo: number) => boolean;
}

/**
 * Calls `visit` with each non-blank line of `bytes` parsed as a JSON object, its 1-based
 * line number and, with `options.withBytes`, its bytes as written (else an empty array); blank
 * lines are counted in `skipped`, and lines that are not JSON objects are reported in `issues`
 * with what was expected. A line for which `options.unparsed` returns true has been dealt with
 * from its text alone and is not parsed.
 *
 * @example Visit the objects of two lines
 * ```ts
 * import { eachJsonLine } from "./json_lines.ts";
 * const issues: { line: number; message: string }[] = [];
 * eachJsonLine(new TextEncoder().encode('{"a":1}\nnope\n'), 1, {}, issues, (obj, line) => {
 *   console.log(line, obj.a); // 1 1
 * });
 * console.log(issues[0].line); // 2
 * ```
 */
export function eachJsonLine(
  bytes: Uint8Array,
  firstLine: number,
  skipped: Record<string, number>,
  issues: LineIssue[],
  visit: (obj: Json, line: number, raw: Uint8Array) => void,
  options: JsonLineOptions = {},
): void {
  const { withBytes = false, unparsed } = options;
  const text = decoder.decode(bytes);
  let lineNo = firstLine - 1;
  let start = 0;
  let byteStart = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    // "\n" is one byte in UTF-8 and one character in the text: the n-th line of each is the same.
    let byteEnd = withBytes ? bytes.indexOf(10, byteStart) : byteStart;
    if (byteEnd === -1) byteEnd = bytes.length;
    // JSON.parse skips surrounding whitespace itself; only a blank line needs the trim.
    const line = text.slice(start, end);
    const raw = withBytes ? bytes.subarray(byteStart, byteEnd) : EMPTY;
    start = end + 1;
    byteStart = byteEnd + 1;
    lineNo++;
    if (line.length === 0 || (mayBeSpace(line.charCodeAt(0)) && line.trim() === "")) {
      bump(skipped, "blank line");
      continue;
    }
    if (unparsed !== undefined && unparsed(line, lineNo)) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (error) {
      issues.push({
        line: lineNo,
        message: `invalid JSON (${(error as Error).message}); expected one JSON object per line`,
      });
      continue;
    }
    if (!isObject(obj)) {
      issues.push({
        line: lineNo,
        message: `expected a JSON object, got ${Array.isArray(obj) ? "an array" : typeof obj}`,
      });
      continue;
    }
    visit(obj, lineNo, raw);
  }
}

/**
 * The output for a document that cannot be used as a whole (not JSON, or not the expected
 * shape): one issue, and the carry unchanged, so the version delivered before still counts and
 * the next version is compared with it.
 *
 * @example Report a document that is not JSON
 * ```ts
 * import { unreadableDocument } from "./json_lines.ts";
 * const out = unreadableDocument({ n: 1 }, "expected an array");
 * console.log(out.issues[0].message); // expected an array
 * ```
 */
export function unreadableDocument<Carry>(carry: Carry, message: string): ParseOutput<Carry> {
  return { ...emptyOutput(carry), issues: [{ line: 1, message }] };
}

/**
 * The latest `created_at` of `messages`, or `floor` when none is later.
 *
 * @example The last message's time
 * ```ts
 * import { latestTime } from "./json_lines.ts";
 * const m = (t: string) => ({ created_at: t });
 * console.log(latestTime([m("2025-01-02T00:00:00Z"), m("2025-01-01T00:00:00Z")], "")); // 2025-01-02T00:00:00Z
 * ```
 */
export function latestTime(messages: readonly { created_at: string }[], floor: string): string {
  return messages.reduce((t, m) => m.created_at > t ? m.created_at : t, floor);
}

/** The first and last times a parse has seen, kept in a carry. */
export interface TimeSpan {
  firstTs: string;
  lastTs: string;
}

/**
 * `raw` if it is an RFC 3339 timestamp, after widening `span` to include it; else `""`.
 *
 * @example Widen a span
 * ```ts
 * import { seenTime } from "./json_lines.ts";
 * const span = { firstTs: "", lastTs: "" };
 * seenTime(span, "2025-01-01T00:00:00Z");
 * console.log(span.firstTs); // 2025-01-01T00:00:00Z
 * ```
 */
export function seenTime(span: TimeSpan, raw: unknown): string {
  const ts = timestamp(raw);
  if (ts) {
    if (!span.firstTs || ts < span.firstTs) span.firstTs = ts;
    if (ts > span.lastTs) span.lastTs = ts;
  }
  return ts;
}

const TITLE_LENGTH = 100;

/**
 * The longest title kept as given. A conversation's title goes with every part of it that is
 * sent and with every checkpoint of its file: a title line of 10 MB had a 45 MB session write
 * 730 MB.
 */
const TITLE_LIMIT = 1000;

/**
 * A title given in the input (a summary, a name the user chose), cut to 1,000 characters.
 *
 * @example A title kept, and one cut
 * ```ts
 * import { titleFrom } from "./json_lines.ts";
 * console.log(titleFrom("Fix the login bug")); // Fix the login bug
 * console.log(titleFrom("t".repeat(5000)).length); // 1000
 * ```
 */
export function titleFrom(v: unknown): string {
  return cut(str(v), TITLE_LIMIT);
}

/** `text` cut to `limit` characters ending in `…` when longer, never inside a surrogate pair. */
function cut(text: string, limit: number): string {
  if (text.length <= limit) return text;
  const code = text.charCodeAt(limit - 2);
  const end = code >= 0xd800 && code <= 0xdbff ? limit - 2 : limit - 1;
  return `${text.slice(0, end)}…`;
}

/**
 * The longest working directory or branch a parser keeps to repeat in a conversation's metadata
 * (`cwd`, `gitBranch`): longer ones are no such thing.
 */
export const PATH_LIMIT = 4096;

/**
 * A title from a prompt: its first line, cut to 100 characters.
 *
 * @example A long prompt
 * ```ts
 * import { titleOf } from "./json_lines.ts";
 * titleOf("Fix the cart\nand the tests") === "Fix the cart";
 * ```
 */
export function titleOf(text: string): string {
  return cut(text.trim().split("\n")[0] ?? "", TITLE_LENGTH);
}

/**
 * The last part of a path (a project's folder name), or `""`.
 *
 * @example A project name
 * ```ts
 * import { baseName } from "./json_lines.ts";
 * baseName("/home/dev/shop/") === "shop";
 * ```
 */
export function baseName(path: string): string {
  return path.split(/[\\/]/).filter(Boolean).pop() ?? "";
}
