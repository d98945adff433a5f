/** A page of cells cut into parts of whole cells, fed in chunks of any size. */
import { CellTooLongError, MarkerCutter } from "../common/units/cut_parts.ts";
import { assert, assertEquals } from "./assert.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The parts of `text` fed in chunks of `chunk` bytes. */
function cut(text: string, partBytes: number, chunk: number, maxCell = 1 << 20) {
  const cutter = new MarkerCutter("<c>", partBytes, maxCell);
  const bytes = encoder.encode(text);
  const parts = [];
  for (let at = 0; at < bytes.length; at += chunk) {
    parts.push(...cutter.push(bytes.subarray(at, at + chunk)));
  }
  parts.push(...cutter.end());
  return parts.map((p) => ({ text: decoder.decode(p.bytes), before: p.cellsBefore }));
}

Deno.test("MarkerCutter", async (t) => {
  const page = "<h>" + Array.from({ length: 30 }, (_, i) => `<c>cell ${i} é`).join("") + "</h>";
  await t.step("the parts put together are the page, each cut right before a cell", () => {
    for (const [partBytes, chunk] of [[1, 1], [20, 3], [50, 7], [10_000, 5], [64, 64]]) {
      const parts = cut(page, partBytes, chunk);
      assertEquals(parts.map((p) => p.text).join(""), page, `${partBytes}/${chunk}`);
      for (const part of parts.slice(1)) assert(part.text.startsWith("<c>"), part.text);
      // Each part knows how many cells came before it.
      let cells = 0;
      for (const part of parts) {
        assertEquals(part.before, cells);
        cells += part.text.split("<c>").length - 1;
      }
      assertEquals(cells, 30);
    }
  });
  await t.step("a page without cells is one part", () => {
    assertEquals(cut("<h>nothing</h>", 4, 2), [{ text: "<h>nothing</h>", before: 0 }]);
  });
  await t.step("a chunk many parts long is cut into parts of about the part size", () => {
    const parts = cut(page, 40, page.length);
    assert(parts.length > 5, `${parts.length} parts`);
    for (const part of parts.slice(0, -1)) assert(part.text.length < 40 + 20, part.text);
  });
  await t.step("a cell longer than the limit is refused, naming where it starts", () => {
    let error: unknown;
    try {
      cut(`<c>a<c>${"x".repeat(500)}<c>b`, 16, 8, 100);
    } catch (e) {
      error = e;
    }
    assert(error instanceof CellTooLongError, String(error));
    assertEquals((error as CellTooLongError).offset, 4);
    // Also when it comes after parts cut from the same chunk.
    error = undefined;
    try {
      cut(`${"<c>a".repeat(50)}<c>${"x".repeat(500)}`, 16, 10_000, 100);
    } catch (e) {
      error = e;
    }
    assertEquals((error as CellTooLongError).offset, 200);
  });
});
