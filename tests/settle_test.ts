/**
 * Memory given back once work settles: the settler fires once per burst of progress, and a
 * release shrinks a heap a burst grew (in a process with the permission table's V8 flags).
 */
import { releaseMemory, Settler } from "../common/engine/settle.ts";
import { HEAP_LIMIT_MB, SEMI_SPACE_MB } from "../common/permissions.ts";
import { assert, assertEquals } from "./assert.ts";
import { delay, eventually, REPO } from "./helpers.ts";

Deno.test("settle", async (t) => {
  await t.step("fires once after progress moved and then stood still", async () => {
    let progress = 0;
    let fired = 0;
    const settler = new Settler(() => progress, () => fired++, 20);
    await delay(100);
    assertEquals(fired, 0, "nothing moved: nothing to give back");
    progress = 5;
    // Timers run late on a loaded machine: wait for the release, then check it stays one.
    await eventually(() => fired === 1, 5_000, "the release after the first burst");
    await delay(100);
    assertEquals(fired, 1, "still: once per burst");
    progress = 9;
    await eventually(() => fired === 2, 5_000, "the release after the second burst");
    settler.stop();
  });

  await t.step("without --expose-gc a release does nothing and does not throw", () => {
    releaseMemory();
  });

  await t.step("a release gives back the heap a burst grew", async () => {
    const script = `
      import { releaseMemory } from "${REPO}/common/engine/settle.ts";
      let keep = [];
      for (let i = 0; i < 400_000; i++) keep.push({ i, text: "x".repeat(100) + i });
      keep = null;
      for (let i = 0; i < 200_000; i++) ({ i, text: "y".repeat(50) + i });
      const before = Deno.memoryUsage().heapTotal;
      releaseMemory();
      console.log(JSON.stringify({ before, after: Deno.memoryUsage().heapTotal }));
    `;
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `--v8-flags=--max-old-space-size=${HEAP_LIMIT_MB},--max-semi-space-size=${SEMI_SPACE_MB},--expose-gc`,
        script,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(out.success, new TextDecoder().decode(out.stderr));
    const { before, after } = JSON.parse(new TextDecoder().decode(out.stdout));
    assert(after < before / 2, `heap ${before} before the release, ${after} after`);
  });
});
