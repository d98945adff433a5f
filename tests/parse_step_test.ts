/**
 * The parse step: a conversation that holds far more than what it was parsed from (a long value
 * a parser copied onto every message) is not serialised; its lines are parsed one by one.
 */
import { ParseStep } from "../common/delivery/parse_step.ts";
import { StateStore } from "../common/state/state.ts";
import { Logger } from "../common/log.ts";
import { parseCodex } from "../parsers/codex.ts";
import type { Parser } from "../common/source.ts";
import type { UnitState } from "../common/units/cursor.ts";
import { assertEquals } from "./assert.ts";

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
  const step = new ParseStep({
    parser: stamping,
    host: "h",
    state: new StateStore(":memory:"),
    log: new Logger("test", "error"),
    pending: new Map(),
    skipped: () => {},
    problem: (message) => problems.push(message),
    form: "json",
    maxConversationChars: () => 1_000_000,
  });
  const lines = [
    { type: "session_meta", payload: { id: "s-1" } },
    ...Array.from({ length: 30 }, (_, i) => ({
      type: "response_item",
      payload: { type: "message", role: "user", content: [{ type: "input_text", text: `p${i}` }] },
    })),
  ].map((l) => JSON.stringify({ timestamp: "2026-11-20T10:00:00.000Z", ...l }) + "\n");
  const cursor: UnitState = {
    key: "/r.jsonl",
    path: "/r.jsonl",
    kind: "appended",
    dev: 1,
    ino: 2,
    headLen: 0,
    headHash: "",
    offset: 0,
    line: 0,
    tailHash: "",
    carry: "",
    status: "active",
  };
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
