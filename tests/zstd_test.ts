/** Compressed files: only complete frames are read, and what is wrong is said. */
import { zstdCompressSync } from "node:zlib";
import { assert, assertEquals, assertStringIncludes, assertThrows } from "./assert.ts";
import { checkZstdFrames, decompressZstd, ZstdError } from "../common/io/zstd.ts";

Deno.test("zstd: only complete frames are accepted", async (t) => {
  const text = new TextEncoder().encode("line one\nline two\n".repeat(5000));
  const frame = new Uint8Array(zstdCompressSync(text));

  await t.step("a complete frame, two frames, a skippable frame", () => {
    assertEquals(decompressZstd(frame), text);
    const two = new Uint8Array([...frame, ...frame]);
    assertEquals(decompressZstd(two).length, text.length * 2);
    const skippable = new Uint8Array([0x50, 0x2a, 0x4d, 0x18, 2, 0, 0, 0, 9, 9, ...frame]);
    assertEquals(decompressZstd(skippable), text);
  });

  await t.step("a cut anywhere is reported as truncated, with the byte", () => {
    for (const cut of [3, 6, 20, frame.length >> 1, frame.length - 5, frame.length - 1]) {
      const error = assertThrows(() => checkZstdFrames(frame.subarray(0, cut)));
      assert(error instanceof ZstdError);
      assertStringIncludes(error.message, "truncated");
    }
  });

  await t.step("not zstd, empty, a damaged block", () => {
    assertStringIncludes(
      assertThrows(() => decompressZstd(new TextEncoder().encode("{}\n"))).message,
      "not a zstd frame at byte 0",
    );
    assertStringIncludes(assertThrows(() => decompressZstd(new Uint8Array())).message, "empty");
    const damaged = frame.slice();
    damaged[frame.length - 2] ^= 0xff;
    assertStringIncludes(assertThrows(() => decompressZstd(damaged)).message, "corrupt");
  });
});
