import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { progressLine, type ProgressState } from "../common/progress.ts";
import { summaryTable } from "../common/summary.ts";

const base: ProgressState = {
  source: "codex",
  state: "running",
  reason: "",
  done: 5e6,
  total: 1e7,
  conversations: 3,
  messages: 40,
};

Deno.test("progress: one line per worker, paused ones say so", async (t) => {
  await t.step("a bar with the share done", () => {
    const line = progressLine(base, 200);
    assertStringIncludes(line, "codex  [############             ]  50%  5.0/10.0 MB");
    assertStringIncludes(line, "3 conversations, 40 messages");
  });
  await t.step("a paused worker shows why, not a full bar", () => {
    const line = progressLine({
      ...base,
      state: "paused",
      reason: "HTTP 401: bad token",
      done: 1e7,
    }, 200);
    assertEquals(line, "codex  PAUSED: HTTP 401: bad token");
    assert(!line.includes("100%"));
  });
  await t.step("a retrying worker shows why", () => {
    assertStringIncludes(
      progressLine({ ...base, state: "retrying", reason: "connection refused" }, 200),
      "RETRYING: connection refused",
    );
  });
  await t.step("after the backfill: watching", () => {
    assertEquals(
      progressLine({ ...base, watching: true }, 200),
      "codex  watching: 3 conversations, 40 messages synced since start",
    );
  });
  await t.step("cut to the width", () => {
    assertEquals(progressLine(base, 20).length, 20);
  });
});

Deno.test("summary: a table with a row per source and where it went", () => {
  const table = summaryTable([
    {
      source: "claude_code",
      conversations: 1200,
      messages: 98_765,
      skipped: 3,
      errors: 0,
      tokens: 51_234_567,
      target: "embedded store /s/conversations.db",
    },
    {
      source: "codex",
      conversations: 4,
      messages: 32,
      skipped: 0,
      errors: 1,
      tokens: 800,
      target: "embedded store /s/conversations.db",
    },
  ]).split("\n");
  assertEquals(table.length, 4);
  assert(/^source\s+conversations\s+messages\s+tokens\s+skipped\s+errors$/.test(table[0]));
  assert(/^claude_code\s+1,200\s+98,765\s+51,234,567\s+3\s+0$/.test(table[1]), table[1]);
  assert(/^codex\s+4\s+32\s+800\s+0\s+1$/.test(table[2]), table[2]);
  assertEquals(table[3], "delivered to embedded store /s/conversations.db");
});
