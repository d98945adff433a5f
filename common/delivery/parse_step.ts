/**
 * The parse step of the pipeline: what a reader read goes to the source's parser, and what the
 * parser found is reported (skipped lines counted, malformed ones named with their line).
 * Hostile input costs only itself: when a chunk makes the parser or the serialiser throw, its
 * lines (or an export's records) are parsed one by one and only the culprit is lost; a live
 * document that throws is reported and read again at its next change. Conversations that span
 * several units get the summed counts of all of them.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { ConversationTotals, DocumentPart, ParseOutput, Parser } from "../source.ts";
import type { StateStore } from "../state/state.ts";
import type { UnitState } from "../units/cursor.ts";
import type { FileRef, Parsed, ParseRequest } from "../units/unit.ts";
import { type Item, type ItemForm, itemOf } from "./item.ts";

/** What the parse step needs of the pipeline. */
export interface ParseStepOptions<Carry, Hint> {
  parser: Parser<Carry, Hint>;
  /** The machine's host name, for conversation metadata. */
  host: string;
  state: StateStore;
  log: Logger;
  /** Cursors read and batched but not acknowledged yet, by unit key. */
  pending: ReadonlyMap<string, UnitState>;
  /** Counts lines the parser skipped on purpose. */
  skipped(n: number): void;
  /** Reports a problem with the input. */
  problem(message: string): void;
  /** The form conversations are made into, as the sink sends them. */
  form: ItemForm;
  /**
   * The most characters one conversation's messages may hold in one parse (see
   * `ConversationTooLargeError`); more, and its lines are parsed one by one.
   */
  maxConversationChars: () => number;
}

/** What to parse, read from a unit at a cursor: lines, or a part of a document. */
interface Chunk<Hint> {
  ref: FileRef<Hint>;
  cursor: UnitState;
  bytes: Uint8Array;
  firstLine: number;
  document?: DocumentPart;
}

/** A parse with its output, before its carry and totals are written out. */
interface Outcome<Carry> {
  out: ParseOutput<Carry>;
  items: Item[];
  /** The carry after it: as JSON when known (`json`), else as a value to write out when asked. */
  value: unknown;
  json?: string;
  failed?: boolean;
  /** The lines or records that could not be processed, each with why. */
  unprocessable?: string[];
}

/** The carry a parse starts from: JSON to read, or the value the parse before made. */
type CarryIn = { json: string } | { value: unknown };

/** The JSON of an outcome's carry. */
function jsonOf<Carry>(outcome: Outcome<Carry>): string {
  return outcome.json ??= JSON.stringify(outcome.value);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Parses for one source.
 *
 * @example Parse two lines
 * ```ts
 * import { ParseStep } from "./parse_step.ts";
 * import { StateStore } from "../state/state.ts";
 * import { Logger } from "../log.ts";
 * import { parseClaudeCode } from "../../parsers/claude_code.ts";
 * const step = new ParseStep({
 *   parser: parseClaudeCode, host: "h", state: new StateStore(":memory:"), log: new Logger("doc"),
 *   pending: new Map(), skipped: () => {}, problem: console.warn, form: "json",
 *   maxConversationChars: () => 64 << 20,
 * });
 * const line = '{"type":"user","uuid":"u1","sessionId":"s1","message":{"role":"user","content":"hi"}}\n';
 * const cursor = {
 *   key: "/s1.jsonl", path: "/s1.jsonl", kind: "appended", dev: 1, ino: 2, headLen: 0,
 *   headHash: "", offset: 0, line: 0, tailHash: "", carry: "", status: "active",
 * } as const;
 * const parsed = step.parse(
 *   { path: "/s1.jsonl", hint: { kind: "session", sessionId: "s1" } },
 *   cursor,
 *   { bytes: new TextEncoder().encode(line + "not json\n"), firstLine: 1 },
 * );
 * console.log(parsed.messages); // 1 (and a problem reported for line 2)
 * ```
 */
export class ParseStep<Carry, Hint> {
  readonly #o: ParseStepOptions<Carry, Hint>;

  /** Creates the step. */
  constructor(options: ParseStepOptions<Carry, Hint>) {
    this.#o = options;
  }

  /**
   * Parses what was read at `cursor` and reports what the parser found, unless `replay` (read
   * again after a restart, reported the first time). Input that makes the parser throw costs
   * only itself: a chunk of lines is parsed again line by line and a part asked to be
   * (`recordByRecord`) record by record, each culprit reported and skipped; another document
   * (or part of one) is reported and `failed`.
   */
  parse(ref: FileRef<Hint>, cursor: UnitState, input: ParseRequest, replay = false): Parsed {
    const chunk: Chunk<Hint> = { ref, cursor, ...input };
    const carry: CarryIn = "carryValue" in input
      ? { value: input.carryValue }
      : { json: cursor.carry };
    const isolated = input.document && input.recordByRecord ? input.document : undefined;
    let outcome: Outcome<Carry>;
    try {
      // An export's part works on a copy of the carry, which the parser may change in place, so
      // that the carry is as it was should the part be parsed again record by record.
      outcome = this.#parse(chunk, carry, !isolated);
    } catch (error) {
      // Hostile input (a line nested 100,000 deep, a time a million years away) must cost only
      // itself.
      outcome = isolated
        ? this.#parseOneByOne(recordsOf(isolated, chunk), jsonOfCarry(carry), true)
        : input.whole || input.document
        ? unprocessable(input.firstLine, cursor.carry, "the document", error)
        : this.#parseOneByOne(linesOf(chunk), cursor.carry, false);
    }
    const { out, items } = outcome;
    if (!replay) {
      for (const [reason, n] of Object.entries(out.skipped)) {
        this.#o.skipped(n);
        this.#o.log.debug(`${ref.path}: skipped ${n} line(s): ${reason}`);
      }
      for (const issue of out.issues) {
        this.#o.problem(`${ref.path}:${issue.line}: ${issue.message}`);
      }
      for (const warning of out.warnings ?? []) {
        this.#o.log.warn(`${ref.path}:${warning.line}: ${warning.message}`);
      }
    }
    const parsed: Parsed = {
      items,
      messages: out.messages,
      // Written out only when asked for: the parts of a document hand the value on instead.
      get carry() {
        return jsonOf(outcome);
      },
      carryValue: outcome.value,
      bytes: items.reduce((n, i) => n + i.bytes, 0),
    };
    if (outcome.failed) parsed.failed = true;
    if (outcome.unprocessable?.length) parsed.unprocessable = outcome.unprocessable;
    if (Object.keys(out.skipped).length > 0) parsed.skipped = out.skipped;
    if (out.totals) parsed.totals = JSON.stringify(out.totals);
    return parsed;
  }

  /** Parses and serialises what came out; throws whatever hostile input makes them throw. */
  #parse(
    { ref, cursor, bytes, firstLine, document }: Chunk<Hint>,
    carry: CarryIn,
    carryOwned = true,
  ): Outcome<Carry> {
    const value = "value" in carry
      ? carry.value as Carry
      : carry.json
      ? JSON.parse(carry.json) as Carry
      : undefined;
    const out = this.#o.parser({
      bytes,
      firstLine,
      document,
      // Made for this parse alone (read from JSON), or handed on by the part before.
      carry: value,
      carryOwned,
      file: { path: ref.path, hint: ref.hint, host: this.#o.host },
    });
    if (out.totals) this.#rollUp(cursor, out);
    const maxChars = this.#o.maxConversationChars();
    const items = out.conversations.map((conversation) =>
      itemOf(conversation, this.#o.form, maxChars)
    );
    return { out, items, value: out.carry };
  }

  /**
   * After a chunk of lines or a document part failed as a whole: each line or record (`pieces`)
   * on its own from the carry `start` (JSON), so only the culprit is lost. A part hands its carry
   * on as a value (`asValue`).
   */
  #parseOneByOne(
    pieces: OnePiece<Hint>[],
    start: string,
    asValue: boolean,
  ): Outcome<Carry> {
    let carry = start;
    const out: ParseOutput<Carry> = {
      conversations: [],
      carry: undefined as Carry,
      messages: 0,
      metadata: 0,
      skipped: {},
      issues: [],
      warnings: [],
    };
    const items: Item[] = [];
    const failures: string[] = [];
    for (const piece of pieces) {
      let one: Outcome<Carry>;
      try {
        one = this.#parse(piece.chunk, { json: carry });
      } catch (error) {
        one = unprocessable(piece.chunk.firstLine, carry, piece.what, error);
        failures.push(`${piece.what}: ${describe(error)}`);
      }
      carry = jsonOf(one);
      items.push(...one.items);
      out.messages += one.out.messages;
      out.metadata += one.out.metadata;
      for (const [reason, n] of Object.entries(one.out.skipped)) {
        out.skipped[reason] = (out.skipped[reason] ?? 0) + n;
      }
      out.issues.push(...one.out.issues);
      out.warnings!.push(...one.out.warnings ?? []);
      if (one.out.totals) out.totals = one.out.totals;
    }
    const value = asValue && carry ? JSON.parse(carry) : undefined;
    return { out, items, value, json: carry, unprocessable: failures };
  }

  /**
   * A conversation that spans several units (Claude Code's sub-agents) is sent with the sum of
   * their counts: this unit's new totals plus what every other unit of it contributes (as read
   * and batched, else as committed), leaving out a unit this one continues.
   */
  #rollUp(cursor: UnitState, out: ParseOutput<Carry>): void {
    const pending = this.#o.pending;
    for (const conversation of out.conversations) {
      const own = out.totals?.[conversation.uuid];
      if (!own) continue;
      const parts: ConversationTotals[] = [own];
      const others = this.#o.state.contributions(conversation.uuid);
      const continued = new Set([cursor.movedFrom]);
      for (const [key, unit] of pending) {
        if (unit.totals && !others.has(key)) others.set(key, unit.totals);
        if (unit.movedFrom) continued.add(unit.movedFrom);
      }
      for (const [key, committed] of others) {
        if (key === cursor.key || continued.has(key)) continue;
        const json = pending.get(key)?.totals ?? committed;
        const part = json ? (JSON.parse(json) as Record<string, ConversationTotals>) : {};
        if (part[conversation.uuid]) parts.push(part[conversation.uuid]);
      }
      if (parts.length === 1) continue;
      conversation.metadata.message_count = parts.reduce((n, p) => n + p.messages, 0);
      const usage: Record<string, number> = {};
      for (const part of parts) {
        for (const [k, v] of Object.entries(part.usage)) usage[k] = (usage[k] ?? 0) + v;
      }
      conversation.metadata.usage = usage;
    }
  }
}

/**
 * The result of input that made the parser or the serialiser throw: an issue, nothing else,
 * and the carry as it was.
 */
function unprocessable<Carry>(
  line: number,
  carry: string,
  what: string,
  error: unknown,
): Outcome<Carry> {
  const again = what === "the document" ? "read again at its next change" : "skipped";
  return {
    out: {
      conversations: [],
      carry: undefined as Carry,
      messages: 0,
      metadata: 0,
      skipped: {},
      issues: [{ line, message: `cannot process ${what} (${describe(error)}); ${again}` }],
    },
    items: [],
    value: undefined,
    json: carry,
    failed: true,
  };
}

/** One line of a chunk that failed, with what to call it if it fails alone. */
interface OnePiece<Hint> {
  chunk: Chunk<Hint>;
  what: string;
}

/** The carry a parse started from, as JSON. */
function jsonOfCarry(carry: CarryIn): string {
  return "json" in carry ? carry.json : JSON.stringify(carry.value) ?? "";
}

/** The records of a document part, each a part of its own. */
function recordsOf<Hint>(part: DocumentPart, chunk: Chunk<Hint>): OnePiece<Hint>[] {
  const last = part.records.length - 1;
  return part.records.map((record, i) => ({
    chunk: {
      ...chunk,
      document: {
        ...part,
        records: [record],
        index: part.index + i,
        first: part.first && i === 0,
        last: part.last && i === last,
      },
    },
    what: `record ${part.index + i}`,
  }));
}

/** The lines of a chunk, each on its own. */
function linesOf<Hint>(chunk: Chunk<Hint>): OnePiece<Hint>[] {
  const pieces: OnePiece<Hint>[] = [];
  const { bytes } = chunk;
  let start = 0;
  let line = chunk.firstLine;
  for (let nl = bytes.indexOf(10); nl !== -1; nl = bytes.indexOf(10, start)) {
    pieces.push({
      chunk: { ...chunk, bytes: bytes.subarray(start, nl + 1), firstLine: line },
      what: "this line",
    });
    start = nl + 1;
    line++;
  }
  return pieces;
}
