/**
 * The parsers' shared helpers for JSON values: times as `toISOString` writes them, ids as the
 * schema takes them.
 */
import { eachJsonLine, idOf, isoOfEpochMs, titleFrom } from "../parsers/json_lines.ts";
import { MessageSchema } from "../common/types.ts";
import { assert, assertEquals } from "./assert.ts";

Deno.test("isoOfEpochMs writes what toISOString writes, from 1970 to 9999", () => {
  const edges = [
    0,
    1,
    999,
    86_399_999,
    951_782_400_000, // 2000-02-29
    4_107_542_400_000, // 2100-03-01
    1_735_689_599_999,
    253_402_300_799_999, // the last millisecond of 9999
  ];
  let seed = 11;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const drawn = Array.from({ length: 100_000 }, () => Math.floor(random() * 253_402_300_800_000));
  for (const ms of [...edges, ...drawn]) {
    assertEquals(isoOfEpochMs(ms), new Date(ms).toISOString(), String(ms));
  }
});

Deno.test("idOf keeps ids the schema takes and derives one from any other string", () => {
  assertEquals(
    idOf("4a1f0c1e-8d2b-4c3e-9f00-000000000001"),
    "4a1f0c1e-8d2b-4c3e-9f00-000000000001",
  );
  assertEquals(idOf("x".repeat(1024)), "x".repeat(1024));
  assertEquals(idOf(""), "");
  assertEquals(idOf(42), "");
  for (const refused of ["a\u0000b", "tab\there", "del\u007f", "x".repeat(1025)]) {
    const derived = idOf(refused);
    assertEquals(derived.length, 36, JSON.stringify(refused));
    assertEquals(idOf(refused), derived, "the same every time");
    assert(MessageSchema.shape.uuid.safeParse(derived).success);
  }
  assert(idOf("a\u0000b") !== idOf("a\u0000c"));
});

Deno.test("titleFrom keeps a title and cuts a long one, never inside a surrogate pair", () => {
  assertEquals(titleFrom("Fix the login bug"), "Fix the login bug");
  assertEquals(titleFrom(7), "");
  const cut = titleFrom("t".repeat(5000));
  assertEquals(cut.length, 1000);
  assert(cut.endsWith("…"));
  // An emoji whose pair would straddle the cut.
  const emoji = titleFrom(`${"t".repeat(998)}😀${"t".repeat(10)}`);
  assertEquals(emoji, `${"t".repeat(998)}…`);
});

Deno.test("eachJsonLine leaves a line its caller deals with from the text unparsed", () => {
  const bytes = new TextEncoder().encode('{"a":1}\nSKIP not JSON\n\n{"b":2}\n');
  const seen: [number, unknown][] = [];
  const told: [string, number][] = [];
  const issues: { line: number; message: string }[] = [];
  const skipped: Record<string, number> = {};
  eachJsonLine(bytes, 10, skipped, issues, (obj, line) => seen.push([line, obj]), {
    unparsed: (text, line) => {
      told.push([text, line]);
      return text.startsWith("SKIP");
    },
  });
  assertEquals(seen, [[10, { a: 1 }], [13, { b: 2 }]]);
  // Blank lines are counted before the caller is asked.
  assertEquals(told, [['{"a":1}', 10], ["SKIP not JSON", 11], ['{"b":2}', 13]]);
  assertEquals(issues, []);
  assertEquals(skipped, { "blank line": 1 });
});
