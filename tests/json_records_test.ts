/**
 * The streaming record splitter agrees with `JSON.parse` on every document, however it is cut
 * into chunks, and fails on a document that is not well-formed where it looks.
 */
import { assert, assertEquals, assertThrows } from "./assert.ts";
import {
  type JsonEvent,
  JsonRecordSplitter,
  JsonStructureError,
  type SplitterOptions,
} from "../common/io/json_records.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Splits `text` fed in chunks of `size` bytes. */
function split(text: string | Uint8Array, size: number, options: SplitterOptions): JsonEvent[] {
  const bytes = typeof text === "string" ? enc.encode(text) : text;
  const splitter = new JsonRecordSplitter(options);
  const events: JsonEvent[] = [];
  for (let at = 0; at < bytes.length; at += size) {
    events.push(...splitter.push(bytes.subarray(at, at + size)));
  }
  events.push(...splitter.end());
  return events;
}

/** The document put back together from its events, as `JSON.parse` would give it. */
function rebuild(events: JsonEvent[]): unknown {
  const root = events.find((e) => e.type === "root");
  if (root?.type !== "root") throw new Error("no root");
  const records: unknown[] = [];
  const fields: Record<string, unknown> = {};
  let key = "";
  for (const e of events) {
    if (e.type === "field") fields[e.key] = JSON.parse(dec.decode(e.value));
    if (e.type === "records") key = e.key;
    if (e.type === "record") records.push(JSON.parse(dec.decode(e.bytes)));
  }
  if (root.kind === "array") return records;
  return key ? { ...fields, [key]: records } : fields;
}

/** A random JSON value with awkward strings (escapes, quotes, backslashes, multibyte). */
function randomValue(seed: { n: number }, depth = 0): unknown {
  const r = () => {
    seed.n = (seed.n * 1103515245 + 12345) % 2147483648;
    return seed.n / 2147483648;
  };
  const pick = Math.floor(r() * (depth > 3 ? 4 : 6));
  const strings = ['a"b', "c\\", '\\\\"', "é✓😀", "\n\t", "", "[{,:}]", "\\u0041"];
  switch (pick) {
    case 0:
      return strings[Math.floor(r() * strings.length)];
    case 1:
      return Math.floor(r() * 1e6) / 100 - 5000;
    case 2:
      return [true, false, null][Math.floor(r() * 3)];
    case 3:
      return strings.join(String(Math.floor(r() * 9)));
    case 4:
      return Array.from({ length: Math.floor(r() * 4) }, () => randomValue(seed, depth + 1));
    default:
      return Object.fromEntries(
        Array.from(
          { length: Math.floor(r() * 4) },
          (_, i) => [strings[i % strings.length] + i, randomValue(seed, depth + 1)],
        ),
      );
  }
}

Deno.test("json records: every document, cut anywhere, agrees with JSON.parse", async (t) => {
  await t.step("session documents, compact and pretty, in chunks of 1 to 64 bytes", () => {
    for (let n = 1; n <= 40; n++) {
      const seed = { n };
      const doc = {
        sessionId: `s${n}`,
        'we"ird\\key': randomValue(seed),
        messages: Array.from({ length: n % 7 }, () => randomValue(seed)),
        summary: randomValue(seed),
      };
      for (const text of [JSON.stringify(doc), JSON.stringify(doc, null, 2)]) {
        for (const size of [1, 2, 3, 7, 64]) {
          assertEquals(
            rebuild(split(text, size, { recordKeys: ["messages"] })),
            JSON.parse(text),
            `seed ${n}, chunks of ${size}: ${text}`,
          );
        }
      }
    }
  });

  await t.step("a root array's elements are the records", () => {
    const text = JSON.stringify([1, "two", { three: [3] }, [4], null]);
    const events = split(text, 3, { recordKeys: [] });
    assertEquals(events.filter((e) => e.type === "record").length, 5);
    assertEquals(rebuild(events), JSON.parse(text));
  });

  await t.step("a record key whose value is not an array is a field", () => {
    const text = '{"messages": {"not": "a list"}, "x": 1}';
    assertEquals(rebuild(split(text, 5, { recordKeys: ["messages"] })), JSON.parse(text));
  });

  await t.step("a root that is neither object nor array is 'other'", () => {
    assertEquals(split("42", 1, { recordKeys: [] }), [{ type: "root", kind: "other" }]);
    assertEquals(split('"text"', 2, { recordKeys: [] }), [{ type: "root", kind: "other" }]);
  });
});

Deno.test("json records: limits and hostile documents", async (t) => {
  await t.step("a record over the limit is passed over with its size; the rest come out", () => {
    const big = "x".repeat(1000);
    const text = JSON.stringify({ messages: [{ a: 1 }, { big }, { b: 2 }] });
    const events = split(text, 100, { recordKeys: ["messages"], maxRecordBytes: 500 });
    assertEquals(
      events.filter((e) => e.type !== "record").map((e) => e.type),
      ["root", "records", "refused"],
    );
    assertEquals(events.filter((e) => e.type === "record").length, 2);
  });

  await t.step("a record nested deeper than allowed is passed over, saying how deep", () => {
    const deep = "[".repeat(2000) + "]".repeat(2000);
    const text = `{"messages": [{"a": 1}, ${deep}, {"b": [[2]]}]}`;
    const events = split(text, 333, { recordKeys: ["messages"], maxRecordDepth: 1000 });
    const refused = events.filter((e) => e.type === "refused");
    assertEquals(refused.length, 1);
    assert(refused[0].type === "refused" && refused[0].index === 1);
    assertEquals(refused[0].why, "is nested 2000 levels deep, deeper than 1000");
    assertEquals(events.filter((e) => e.type === "record").length, 2);
  });

  await t.step("a field over the limit fails the document, naming it", () => {
    const text = JSON.stringify({ header: "y".repeat(100), messages: [] });
    const error = assertThrows(() =>
      split(text, 7, { recordKeys: ["messages"], maxFieldBytes: 50 })
    );
    assert(error instanceof JsonStructureError);
    assert(error.message.includes('field "header"'), error.message);
  });

  await t.step("nesting 100,000 deep costs a counter, not the stack", () => {
    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    const text = `{"messages": [${deep}, {"ok": true}]}`;
    const events = split(text, 4096, { recordKeys: ["messages"] });
    assertEquals(events.filter((e) => e.type === "record").length, 2);
  });

  await t.step("a document cut short, or with garbage between values, is an error", () => {
    for (
      const bad of [
        '{"messages": [{"a": 1}',
        '{"messages": [{"a": 1} {"b": 2}]}',
        '{"a": 1,}',
        '{"messages": [1,]}',
        '{"a" 1}',
        "[1] 2",
        "",
        "   ",
      ]
    ) {
      const error = assertThrows(() => split(bad, 3, { recordKeys: ["messages"] }), bad);
      assert(error instanceof JsonStructureError, `${bad}: ${error}`);
    }
  });

  await t.step("records can be counted without being kept", () => {
    const text = JSON.stringify({ messages: [1, 2, 3], h: { k: "v" } });
    const events = split(text, 4, { recordKeys: ["messages"], keepRecords: false });
    assertEquals(events.filter((e) => e.type === "record").length, 3);
    assertEquals(events.filter((e) => e.type === "field").length, 1);
  });
});
