/**
 * The parse step of the pipeline: what a reader read goes to the source's parser, and what the
 * parser found is reported (skipped lines counted, malformed ones named with their line).
 * Hostile input costs only itself: when a chunk makes the parser or the serialiser throw, its
 * lines are parsed one by one and only the culprit is lost; a document that throws is reported
 * and read again at its next change. Conversations that span several units get the summed
 * counts of all of them.
 *
 * @module
 */
import type { Logger } from "../log.ts";
import type { ConversationTotals, ParseOutput, Parser } from "../source.ts";
import type { StateStore } from "../state/state.ts";
import type { UnitState } from "../units/cursor.ts";
import type { FileRef, Parsed, ParseRequest } from "../units/unit.ts";
import type { Item } from "./delivery.ts";

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
}

/** Bytes to parse, read from a unit at a cursor. */
interface Chunk<Hint> {
  ref: FileRef<Hint>;
  cursor: UnitState;
  bytes: Uint8Array;
  firstLine: number;
}

/** A parse with its output, before its carry and totals are serialised. */
interface Outcome<Carry> {
  out: ParseOutput<Carry>;
  items: Item[];
  carry: string;
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
 *   pending: new Map(), skipped: () => {}, problem: console.warn,
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
   * again after a restart, reported the first time).
   */
  parse(ref: FileRef<Hint>, cursor: UnitState, input: ParseRequest, replay = false): Parsed {
    let outcome: Outcome<Carry>;
    try {
      outcome = this.#parse(
        { ref, cursor, bytes: input.bytes, firstLine: input.firstLine },
        cursor.carry,
      );
    } catch (error) {
      // Hostile input (a line nested 100,000 deep, say) must cost only itself.
      outcome = input.whole
        ? unprocessable(input.firstLine, cursor.carry, "the document", error)
        : this.#parseLineByLine({ ref, cursor, bytes: input.bytes, firstLine: input.firstLine });
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
      carry: outcome.carry,
      bytes: items.reduce((n, i) => n + i.json.length, 0),
    };
    if (out.totals) parsed.totals = JSON.stringify(out.totals);
    return parsed;
  }

  /** Parses and serialises what came out; throws whatever hostile input makes them throw. */
  #parse({ ref, cursor, bytes, firstLine }: Chunk<Hint>, carry: string): Outcome<Carry> {
    const out = this.#o.parser({
      bytes,
      firstLine,
      carry: carry ? JSON.parse(carry) as Carry : undefined,
      file: { path: ref.path, hint: ref.hint, host: this.#o.host },
    });
    if (out.totals) this.#rollUp(cursor, out);
    const items = out.conversations.map((conversation) => ({
      conversation,
      json: JSON.stringify(conversation),
    }));
    return { out, items, carry: JSON.stringify(out.carry) };
  }

  /** After a chunk failed as a whole: each line on its own, so only the culprit is lost. */
  #parseLineByLine(chunk: Chunk<Hint>): Outcome<Carry> {
    const { bytes, firstLine } = chunk;
    let carry = chunk.cursor.carry;
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
    let start = 0;
    let line = firstLine;
    for (let nl = bytes.indexOf(10); nl !== -1; nl = bytes.indexOf(10, start)) {
      let one: Outcome<Carry>;
      try {
        one = this.#parse(
          { ...chunk, bytes: bytes.subarray(start, nl + 1), firstLine: line },
          carry,
        );
      } catch (error) {
        one = unprocessable(line, carry, "this line", error);
      }
      carry = one.carry;
      items.push(...one.items);
      out.messages += one.out.messages;
      out.metadata += one.out.metadata;
      for (const [reason, n] of Object.entries(one.out.skipped)) {
        out.skipped[reason] = (out.skipped[reason] ?? 0) + n;
      }
      out.issues.push(...one.out.issues);
      out.warnings!.push(...one.out.warnings ?? []);
      if (one.out.totals) out.totals = one.out.totals;
      start = nl + 1;
      line++;
    }
    return { out, items, carry };
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

/** The result of input that made the parser or the serialiser throw: an issue, nothing else. */
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
    carry,
  };
}
