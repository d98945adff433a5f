/** The parsers' shared helpers for JSON values: times written as `toISOString` writes them. */
import { isoOfEpochMs } from "../parsers/json_lines.ts";
import { assertEquals } from "./assert.ts";

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
