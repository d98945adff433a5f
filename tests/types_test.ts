/**
 * The schema's timestamps: `isTimestamp`, which parsers test what they copy from input with,
 * accepts nothing the schema refuses (a refused time costs its whole conversation).
 */
import { isTimestamp, MessageSchema } from "../common/types.ts";
import { assert, assertEquals } from "./assert.ts";

/** Whether the schema takes `created_at`. */
function schemaTakes(created_at: string): boolean {
  return MessageSchema.shape.created_at.safeParse(created_at).success;
}

Deno.test("isTimestamp", async (t) => {
  await t.step("real dates and times, with and without fractions and offsets", () => {
    for (
      const s of [
        "2025-01-01T00:00:00Z",
        "2024-02-29T23:59:59.999999Z",
        "2000-02-29T12:00:00+14:00",
        "0000-01-01T00:00:00-23:59",
        "9999-12-31T23:59:59Z",
      ]
    ) {
      assert(isTimestamp(s), s);
      assert(schemaTakes(s), s);
    }
  });
  await t.step("what a date cannot be, and what RFC 3339 cannot write", () => {
    for (
      const s of [
        "2025-13-45T99:99:99Z",
        "2025-02-29T00:00:00Z",
        "1900-02-29T00:00:00Z",
        "2025-04-31T00:00:00Z",
        "2025-01-00T00:00:00Z",
        "2025-01-01T24:00:00Z",
        "2025-01-01T00:60:00Z",
        "2025-01-01T00:00:60Z",
        "2025-01-01T00:00:00+24:00",
        "2025-01-01T00:00:00+01:60",
        "+011476-01-01T00:00:00Z",
        "2025-01-01 00:00:00Z",
        "2025-01-01T00:00:00",
        "2025-01-01T00:00:00.Z",
        "2025-01-01T00:00:00.1a2Z",
        "2025-01-01T00:00:00Z\n",
        "2025-01-01T00:00:00+01:00x",
        "2025-01-01T00:00:00+0100",
        "2025-01-01T00:00:00+01:0",
        "2025-1-01T00:00:00Z",
        "2025-01-01t00:00:00z",
        "２０２５-01-01T00:00:00Z",
        "2025-01-01T00:00:00.٣Z",
      ]
    ) assertEquals(isTimestamp(s), false, s);
  });
  await t.step("nothing it takes does the schema refuse (200,000 drawn at random)", () => {
    // Each field drawn from just beyond its range, so both sides of every bound come up.
    let seed = 7;
    const draw = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const two = (n: number) => String(draw(n)).padStart(2, "0");
    let taken = 0;
    for (let i = 0; i < 200_000; i++) {
      const year = String([0, 1600, 1900, 2000, 2024, 2025, 9999][draw(7)] + draw(4)).padStart(
        4,
        "0",
      );
      const zone = draw(3) === 0 ? "Z" : `${draw(2) ? "+" : "-"}${two(26)}:${two(62)}`;
      const fraction = draw(2) ? "" : `.${draw(1000)}`;
      const s = `${year.slice(-4)}-${two(14)}-${two(33)}T${two(26)}:${two(62)}:${
        two(62)
      }${fraction}${zone}`;
      if (!isTimestamp(s)) continue;
      taken++;
      assert(schemaTakes(s), `isTimestamp takes ${s}, which the schema refuses`);
    }
    assert(taken > 10_000, `only ${taken} taken: the draw does not test much`);
  });
});
