/**
 * The parse step: a conversation that holds far more than what it was parsed from (a long value
 * a parser copied onto every message) is not serialised; its lines are parsed one by one. An
 * export's part that makes the parser throw is parsed record by record.
 */
import { ParseStep } from "../common/delivery/parse_step.ts";
import { StateStore } from "../common/state/state.ts";
import { Logger } from "../common/log.ts";
import { parseCodex } from "../parsers/codex.ts";
import { carryOf, emptyOutput, type Parser } from "../common/source.ts";
import type { ItemForm } from "../common/delivery/item.ts";
import { assertEquals } from "./assert.ts";
import { appendedUnit } from "./helpers.ts";

/** A parse step of `parser` making `form`, whose problems go to `problems`. */
function stepOf<Carry>(parser: Parser<Carry, unknown>, form: ItemForm, problems: string[]) {
  return new ParseStep({
    parser,
    host: "h",
    state: new StateStore(":memory:"),
    log: new Logger("test", "error"),
    pending: new Map(),
    skipped: () => {},
    problem: (message) => problems.push(message),
    form,
    maxConversationChars: () => 1_000_000,
  });
}

Deno.test("parse step: a conversation over the limit is parsed again line by line", () => {
  // The Codex parser, with every message given the same long model name, as a parser copying a
  // value of one line onto the messages after it would.
  const long = "m".repeat(100_000);
  const stamping: Parser<unknown, unknown> = (input) => {
    const out = parseCodex(input as Parameters<typeof parseCodex>[0]);
    for (const c of out.conversations) for (const m of c.messages) m.model = long;
    return out;
  };
  const problems: string[] = [];
  const step = stepOf(stamping, "json", problems);
  const lines = [
    { type: "session_meta", payload: { id: "s-1" } },
    ...Array.from({ length: 30 }, (_, i) => ({
      type: "response_item",
      payload: { type: "message", role: "user", content: [{ type: "input_text", text: `p${i}` }] },
    })),
  ].map((l) => JSON.stringify({ timestamp: "2026-11-20T10:00:00.000Z", ...l }) + "\n");
  const cursor = appendedUnit("/r.jsonl");
  const parsed = step.parse({ path: "/r.jsonl", hint: {} }, cursor, {
    bytes: new TextEncoder().encode(lines.join("")),
    firstLine: 1,
  });
  // 30 messages of 100,000 characters each are 3 MB together: one item per line instead.
  assertEquals(parsed.messages, 30);
  // (The header line makes an item of the conversation without messages.)
  const sizes = parsed.items.map((i) => i.conversation.messages.length);
  assertEquals(sizes, [0, ...Array(30).fill(1)]);
  assertEquals(problems, []);
});

Deno.test("parse step: an export's part that throws is parsed again record by record", () => {
  // One conversation per record, and a carry that counts the records seen: it is changed in
  // place, as parsers may change a carry they are handed.
  type Count = { seen: number };
  const counting: Parser<Count, unknown> = (input) => {
    const carry = carryOf(input, () => ({ seen: 0 }));
    const out = emptyOutput(carry);
    for (const record of input.document!.records as { id: string }[]) {
      carry.seen++;
      if (record.id === "bad") throw new RangeError("Invalid time value");
      out.conversations.push({
        uuid: record.id,
        title: "",
        created_at: "2025-01-01T00:00:00Z",
        updated_at: "2025-01-01T00:00:00Z",
        metadata: {},
        messages: [],
      });
    }
    return out;
  };
  const problems: string[] = [];
  const step = stepOf(counting, "rows", problems);
  const cursor = appendedUnit("/c.json");
  const handedOn: Count = { seen: 10 };
  const parsed = step.parse({ path: "/c.json", hint: {} }, cursor, {
    bytes: new Uint8Array(0),
    firstLine: 1,
    whole: true,
    recordByRecord: true,
    carryValue: handedOn,
    document: {
      root: "array",
      header: {},
      recordsKey: "",
      records: [{ id: "a" }, { id: "bad" }, { id: "c" }],
      index: 5,
      first: false,
      last: true,
    },
  });
  assertEquals(parsed.items.map((i) => i.conversation.uuid), ["a", "c"]);
  assertEquals(parsed.failed, undefined);
  assertEquals(parsed.unprocessable, ["record 6: Invalid time value"]);
  assertEquals(problems, ["/c.json:1: cannot process record 6 (Invalid time value); skipped"]);
  // The carry goes on from the one handed over, untouched by the attempt, past the culprit.
  assertEquals(handedOn, { seen: 10 });
  assertEquals(parsed.carryValue, { seen: 12 });
});
