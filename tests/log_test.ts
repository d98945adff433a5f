/**
 * What is printed for a person (the log as text, the progress line, the `--once` table) quotes
 * file names, input and servers' answers; none of it may drive the terminal or forge a line.
 */
import { Logger } from "../common/log.ts";
import { progressLine } from "../common/progress.ts";
import { summaryTable } from "../common/summary.ts";
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";

/** An OSC that retitles the terminal, a clear screen, a C1 CSI, and a newline forging a line. */
const HOSTILE = "a\u001b]0;owned\u0007b\u001b[2Jc\u009b31md\r\n12:00:00 error forged";

function assertInert(text: string): void {
  // deno-lint-ignore no-control-regex
  assert(!/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(text), JSON.stringify(text));
}

Deno.test("log: text for a terminal holds no control characters", async (t) => {
  await t.step("a log line stays one line", async () => {
    const path = await Deno.makeTempFile();
    const log = new Logger("test", "info");
    log.format = "text";
    log.setFile(path);
    log.warn(`${HOSTILE}.jsonl:1: invalid JSON`, { file: HOSTILE });
    log.close();
    const written = await Deno.readTextFile(path);
    assertEquals(written.split("\n").length, 2, written);
    assertInert(written.slice(0, -1));
    assertStringIncludes(written, "12:00:00 error forged.jsonl:1: invalid JSON");
  });
  await t.step("JSON lines escape them as JSON does", async () => {
    const path = await Deno.makeTempFile();
    const log = new Logger("test", "info");
    log.setFile(path);
    log.warn(HOSTILE);
    log.close();
    const written = await Deno.readTextFile(path);
    assertEquals(JSON.parse(written).msg, HOSTILE);
  });
  await t.step("the progress line and the --once table", () => {
    const line = progressLine({
      source: "claude_code",
      state: "paused",
      reason: HOSTILE,
      done: 0,
      total: 0,
      conversations: 0,
      messages: 0,
    }, 200);
    assertInert(line);
    const table = summaryTable([{
      source: "openai",
      conversations: 1,
      messages: 2,
      tokens: 0,
      skipped: 0,
      errors: 1,
      target: "embedded store",
      exports: [`/drop/${HOSTILE}.zip: 1 conversations`],
    }]);
    assertInert(table.replaceAll("\n", " "));
    assertEquals(table.split("\n").length, 4);
  });
});
