/**
 * `export`, from `deno task start` (every source) and from a worker binary (its own source):
 * Markdown files with front matter, JSON Lines of the canonical schema, a search and filters,
 * and bad flags named.
 */
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { ConversationStore } from "../store/store.ts";
import { ConversationSchema, type Message } from "../common/types.ts";
import { REPO, runWorker } from "./helpers.ts";

function message(
  uuid: string,
  role: Message["role"],
  content: Record<string, unknown>,
  text: string,
): Message {
  return {
    uuid,
    parent_uuid: "",
    round_index: 1,
    role,
    content_type: content.type === "tool_use" ? "tool_use" : "text",
    content,
    content_text: text,
    created_at: "2026-11-02T10:00:00.000Z",
    ...(role === "assistant" ? { model: "gpt-5" } : {}),
  };
}

async function storeDir(): Promise<string> {
  const state = await Deno.makeTempDir();
  const store = new ConversationStore(`${state}/conversations.db`);
  const at = "2026-11-02T10:00:00.000Z";
  store.applyBatch({
    source_type: "codex",
    conversations: [{
      uuid: "c-codex-1",
      title: "Fix the tax rounding",
      created_at: at,
      updated_at: at,
      metadata: { project_name: "shop", usage: { total: 30 } },
      messages: [
        message("m1", "user", { type: "text", text: "why is ```tax``` off" }, "why is tax off"),
        message(
          "m2",
          "assistant",
          { type: "tool_use", name: "shell", input: { cmd: "ls" } },
          "shell",
        ),
      ],
    }],
  });
  // The same title and the same first digits of the id (as ChatGPT's time-prefixed ids have).
  store.applyBatch({
    source_type: "codex",
    conversations: [{
      uuid: "c-codex-2",
      title: "Fix the tax rounding",
      created_at: at,
      updated_at: at,
      metadata: {},
      messages: [message("m4", "user", { type: "text", text: "again" }, "again")],
    }],
  });
  store.applyBatch({
    source_type: "gpt",
    conversations: [{
      uuid: "c-gpt-1",
      title: "Pasta",
      created_at: "2026-10-01T10:00:00.000Z",
      updated_at: "2026-10-01T10:00:00.000Z",
      metadata: {},
      messages: [message("m3", "user", { type: "text", text: "a recipe" }, "a recipe")],
    }],
  });
  store.close();
  return state;
}

async function start(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO}/workers/start.ts`, "export", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

Deno.test("export: Markdown for every source, JSON Lines for one, a search, bad flags", async (t) => {
  const state = await storeDir();
  await t.step("start export: one Markdown file per conversation, with front matter", async () => {
    const out = await start(["--state-dir", state, "--out", `${state}/md`]);
    assertEquals(out.code, 0, out.stderr);
    assertStringIncludes(out.stdout, "exported 3 conversation(s)");
    const files = [...Deno.readDirSync(`${state}/md`)].map((e) => e.name).sort();
    assertEquals(files, [
      "2026-10-01-pasta-c-gpt-1.md",
      "2026-11-02-fix-the-tax-rounding-c-codex-1.md",
      "2026-11-02-fix-the-tax-rounding-c-codex-2.md",
    ]);
    const md = await Deno.readTextFile(`${state}/md/${files[1]}`);
    assertStringIncludes(await Deno.readTextFile(`${state}/md/${files[2]}`), "again");
    for (
      const part of [
        "source: codex",
        'project: "shop"',
        'model: "gpt-5"',
        'usage: {"total":30}',
        "## User",
        "<summary>Tool call: shell</summary>",
      ]
    ) {
      assertStringIncludes(md, part);
    }
    // The text's own fence cannot close the block around it.
    assertStringIncludes(md, "why is ```tax``` off");
    // The whole file, as written by hand.
    assertEquals(
      md,
      await Deno.readTextFile(`${REPO}/tests/fixtures/export/fix-the-tax-rounding.md`),
    );
  });
  await t.step("a worker binary exports its own source, as JSON Lines of the schema", async () => {
    const out = await runWorker(
      ["export", "--state-dir", state, "--out", `${state}/jl`, "--format", "jsonl"],
      {},
      "codex",
    );
    assertEquals(out.code, 0, out.stderr);
    const lines = (await Deno.readTextFile(`${state}/jl/conversations.jsonl`)).trim().split("\n");
    assertEquals(lines.length, 2);
    const conversation = JSON.parse(lines.find((l) => l.includes('"c-codex-1"'))!);
    ConversationSchema.parse(conversation);
    assertEquals([conversation.source_type, conversation.messages.length], ["codex", 2]);
  });
  await t.step("a search and a date filter", async () => {
    const out = await start([
      "--state-dir",
      state,
      "--out",
      `${state}/q`,
      "--format",
      "jsonl",
      "--q",
      "recipe",
    ]);
    assertStringIncludes(out.stdout, "exported 1 conversation(s)");
    const dated = await start([
      "--state-dir",
      state,
      "--out",
      `${state}/d`,
      "--from",
      "2026-11-01",
    ]);
    assertStringIncludes(dated.stdout, "exported 2 conversation(s)");
  });
  await t.step("ids and titles too long for a file name still get one, apart", async () => {
    // Ids up to 1,024 characters pass the schema; one of 600 failed the whole export.
    const other = await Deno.makeTempDir();
    const store = new ConversationStore(`${other}/conversations.db`);
    const at = "2026-11-03T10:00:00.000Z";
    const conversation = (uuid: string, title: string) => ({
      uuid,
      title,
      created_at: at,
      updated_at: at,
      metadata: {},
      messages: [message(`m-${title}-${uuid.length}`, "user", { type: "text", text: "hi" }, "hi")],
    });
    store.applyBatch({
      source_type: "codex",
      conversations: [
        conversation("a".repeat(600), "a long id"),
        conversation(`${"a".repeat(598)}b`, "a long id"),
        // Letters of four bytes each: 60 of them were 240 bytes of title.
        conversation("c-wide", "\u{20000}".repeat(80)),
      ],
    });
    store.close();
    const out = await start(["--state-dir", other, "--out", `${other}/md`]);
    assertEquals(out.code, 0, out.stderr);
    const names = [...Deno.readDirSync(`${other}/md`)].map((e) => e.name);
    assertEquals(names.length, 3);
    for (const name of names) {
      assert(new TextEncoder().encode(name).length <= 255, name);
    }
  });
  await t.step("bad flags are named; no store is said plainly", async () => {
    const format = await start(["--state-dir", state, "--format", "pdf"]);
    assertEquals(format.code, 2);
    assertStringIncludes(format.stderr, "--format: expected md or jsonl");
    const from = await start(["--state-dir", state, "--from", "last week"]);
    assertStringIncludes(from.stderr, "--from: expected a date");
    const none = await start(["--state-dir", `${state}/nowhere`]);
    assertEquals(none.code, 1);
    assert(none.stderr.includes("nowhere"), none.stderr);
  });
});
