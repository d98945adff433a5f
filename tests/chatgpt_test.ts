/**
 * The ChatGPT export parser: trees and branches, the main line, hidden messages, every content
 * type, ids that are unique across conversations, parts equal to the whole; and conformance
 * over the public fixtures in ../shared/fixtures/chatgpt when present.
 */
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { type ChatGptHint, parseChatGpt } from "../parsers/chatgpt.ts";
import type { DocumentPart } from "../common/source.ts";
import { ConversationSchema } from "../common/types.ts";
import { gptConversation } from "../bench/export_corpus.ts";
import { nested, SHARED_FIXTURES, sharedFixturesPresent } from "./helpers.ts";

function part(records: unknown[], index = 0, first = true, last = true): DocumentPart {
  return { root: "array", header: {}, recordsKey: "", records, index, first, last };
}

function parse(records: unknown[], hint: ChatGptHint = {}) {
  return parseChatGpt({
    bytes: new Uint8Array(0),
    firstLine: 1,
    carry: undefined,
    file: { path: "conversations.json", hint, host: "h" },
    document: part(records),
  });
}

const ID = "6925e174-0000-8000-8000-000000000001";

Deno.test("chatgpt: every branch is delivered, the current path marked as the main line", () => {
  const c = gptConversation(ID, { turns: 4, regenerated: true, hiddenSystem: true });
  const out = parse([c]);
  const [conversation] = out.conversations;
  ConversationSchema.parse(conversation);
  assertEquals(conversation.uuid, ID);
  // 4 on the main line, the regenerated answer beside the first, the hidden system message.
  assertEquals(conversation.messages.length, 6);
  const byExportId = new Map(conversation.messages.map((m) => [m.metadata?.export_id, m]));
  const regen = byExportId.get(`${ID.slice(0, 8)}-regen`)!;
  const firstAnswer = byExportId.get(`${ID.slice(0, 8)}-0001`)!;
  const prompt = byExportId.get(`${ID.slice(0, 8)}-0000`)!;
  assertEquals(regen.metadata?.main_line, false);
  assertEquals(firstAnswer.metadata?.main_line, true);
  // Both answers hang under the same prompt.
  assertEquals(regen.parent_uuid, prompt.uuid);
  assertEquals(firstAnswer.parent_uuid, prompt.uuid);
  const system = byExportId.get(`${ID.slice(0, 8)}-sys`)!;
  assertEquals(system.role, "system");
  assertEquals(system.metadata?.hidden, true);
  assertEquals(system.parent_uuid, "");
  assertEquals(prompt.parent_uuid, system.uuid);
  // Rounds count the user's prompts, not the hidden system message.
  assertEquals(prompt.round_index, 1);
  assertEquals(byExportId.get(`${ID.slice(0, 8)}-0002`)!.round_index, 2);
  assertEquals(firstAnswer.model, "gpt-5");
  assertEquals(conversation.metadata.model, "gpt-5");
  assertEquals(conversation.metadata.message_count, 6);
});

Deno.test("chatgpt: the same node id in two conversations gives two messages", () => {
  const a = gptConversation(ID, { turns: 2 });
  // A conversation continued into a new one carries its prefix over with the same ids.
  const b = {
    ...structuredClone(a),
    id: "other-conversation",
    conversation_id: "other-conversation",
  };
  const out = parse([a, b]);
  const uuids = out.conversations.flatMap((c) => c.messages.map((m) => m.uuid));
  assertEquals(new Set(uuids).size, 4);
  assertEquals(
    out.conversations[0].messages[0].metadata?.export_id,
    out.conversations[1].messages[0].metadata?.export_id,
  );
  // And the ids are the same in every export.
  assertEquals(parse([a]).conversations[0].messages.map((m) => m.uuid), uuids.slice(0, 2));
});

Deno.test("chatgpt: 2026 shards (no children, client-created-root) parse the same", () => {
  const old = parse([gptConversation(ID, { turns: 4 })]).conversations[0];
  const sharded = parse([gptConversation(ID, { turns: 4, sharded: true })]).conversations[0];
  assertEquals(
    sharded.messages.map((m) => m.content_text),
    old.messages.map((m) => m.content_text),
  );
  assertEquals(sharded.messages[1].parent_uuid, sharded.messages[0].uuid);
});

Deno.test("chatgpt: content types, tools, thinking, voice and attachments", () => {
  const node = (id: string, parent: string, message: Record<string, unknown>) => ({
    id,
    parent,
    message: { id, create_time: 1764090230, ...message },
  });
  const mapping = {
    r: { id: "r", parent: null, message: null },
    u: node("u", "r", {
      author: { role: "user" },
      content: {
        content_type: "multimodal_text",
        parts: [
          {
            content_type: "image_asset_pointer",
            asset_pointer: "sediment://file_abc",
            width: 4,
            height: 3,
          },
          { content_type: "audio_transcription", text: "what is on this picture" },
          { content_type: "audio_asset_pointer", asset_pointer: "sediment://file_voice" },
        ],
      },
      metadata: { attachments: [{ id: "file-xyz", name: "notes.pdf" }] },
    }),
    th: node("th", "u", {
      author: { role: "assistant" },
      content: { content_type: "thoughts", thoughts: [{ summary: "Looking", content: "a cat" }] },
    }),
    rr: node("rr", "th", {
      author: { role: "assistant" },
      content: { content_type: "reasoning_recap", content: "Thought for 3s" },
    }),
    code: node("code", "rr", {
      author: { role: "assistant" },
      recipient: "python",
      content: { content_type: "code", language: "python", text: "print(1)" },
    }),
    out: node("out", "code", {
      author: { role: "tool", name: "python" },
      content: { content_type: "execution_output", text: "1" },
    }),
    err: node("err", "out", {
      author: { role: "tool", name: "python" },
      content: { content_type: "system_error", name: "tool_error", text: "boom" },
    }),
    quote: node("quote", "err", {
      author: { role: "tool", name: "browser" },
      content: {
        content_type: "tether_quote",
        url: "https://x",
        domain: "x",
        title: "X",
        text: "quoted",
      },
    }),
    canvas: node("canvas", "quote", {
      author: { role: "assistant" },
      recipient: "canmore.create_textdoc",
      content: { content_type: "text", parts: ['{"name":"doc","content":"hello"}'] },
      metadata: { canvas: { textdoc_id: "td1" } },
    }),
    odd: node("odd", "canvas", {
      author: { role: "assistant" },
      content: { content_type: "sonic_webpage", url: "u" },
    }),
    ctx: node("ctx", "odd", {
      author: { role: "user" },
      content: {
        content_type: "user_editable_context",
        user_profile: "I cook",
        user_instructions: "be brief",
      },
      metadata: { is_user_system_message: true, is_visually_hidden_from_conversation: true },
    }),
  };
  const out = parse(
    [{ id: ID, title: "All", create_time: 1764090229, current_node: "ctx", mapping }],
    { assets: { "file_abc-cat.png": "cat.png", "file-xyz.dat": "notes.pdf" } },
  );
  const m = new Map(out.conversations[0].messages.map((x) => [x.metadata?.export_id, x]));
  const user = m.get("u")!;
  assertEquals(user.content_type, "multipart");
  const parts = user.content.parts as Record<string, unknown>[];
  assertEquals(parts[0].type, "image");
  assertEquals(parts[0].file_name, "cat.png");
  assertEquals(parts[1], { type: "text", text: "what is on this picture", voice: true });
  assertEquals(parts[2].type, "media");
  assert(user.content_text.includes("what is on this picture"));
  assertEquals(
    (user.metadata?.attachments as Record<string, unknown>[])[0].archive_file,
    "file-xyz.dat",
  );
  assertEquals(m.get("th")!.content.type, "thinking");
  assert(m.get("th")!.content_text.includes("a cat"));
  assertEquals(m.get("rr")!.content.thinking, "Thought for 3s");
  assertEquals(m.get("code")!.content_type, "tool_use");
  assertEquals(m.get("code")!.content.name, "python");
  assertEquals(m.get("out")!.content_type, "tool_result");
  assertEquals(m.get("out")!.content.name, "python");
  assertEquals(m.get("err")!.content.is_error, true);
  assertEquals(m.get("quote")!.content.url, "https://x");
  assertEquals(m.get("canvas")!.content.input, { name: "doc", content: "hello" });
  assertEquals(out.conversations[0].metadata.canvas_ids, ["td1"]);
  // An unknown type passes through raw, with a warning.
  assertEquals(m.get("odd")!.content.raw, { content_type: "sonic_webpage", url: "u" });
  assert(out.warnings!.some((w) => w.message.includes("sonic_webpage")));
  const ctx = m.get("ctx")!;
  assertEquals([ctx.metadata?.hidden, ctx.metadata?.user_system_message], [true, true]);
  assertEquals(ctx.round_index, 1);
  assert(ctx.content_text.includes("be brief"));
  for (const c of out.conversations) ConversationSchema.parse(c);
});

Deno.test("chatgpt: null times, a tree 100,000 deep, odd fields, records that are not conversations", () => {
  const mapping: Record<string, unknown> = { r: { id: "r", parent: null, message: null } };
  let parent = "r";
  for (let i = 0; i < 100_000; i++) {
    const id = `n${i}`;
    mapping[id] = {
      id,
      parent,
      message: {
        id,
        author: { role: i % 2 ? "assistant" : "user" },
        create_time: null,
        content: { content_type: "text", parts: ["x"] },
      },
    };
    parent = id;
  }
  const out = parse([
    {
      id: ID,
      title: "deep",
      create_time: 1764090229,
      current_node: parent,
      mapping,
      // A field that holds a string, holding something else: not kept.
      conversation_origin: nested(2000),
      is_starred: true,
    },
    "nope",
    { title: "no id" },
  ]);
  ConversationSchema.parse(out.conversations[0]);
  assertEquals(out.conversations[0].metadata.conversation_origin, undefined);
  assertEquals(out.conversations[0].metadata.is_starred, true);
  assertEquals(out.conversations[0].messages.length, 100_000);
  assertEquals(out.conversations[0].messages[5].created_at, "2025-11-25T17:03:49.000Z");
  assertEquals(out.issues.length, 2);
  assertEquals(out.issues[0].line, 2);
});

Deno.test("chatgpt: times before 1970 or past the year 9999 are taken as none", () => {
  // `Date` cannot hold 1e20 seconds (it threw, and the part of the export with it was lost),
  // and RFC 3339 cannot write the year 10000 (the schema refused the conversation).
  for (const time of [1e20, 253_402_300_800, -1, Number.MAX_VALUE]) {
    const c = gptConversation(ID, { turns: 2 }) as Record<string, unknown>;
    c.create_time = time;
    c.update_time = time;
    for (const node of Object.values(c.mapping as Record<string, { message?: object }>)) {
      if (node.message) node.message = { ...node.message, create_time: time };
    }
    const [conversation] = parse([c]).conversations;
    ConversationSchema.parse(conversation);
    assertEquals(conversation.created_at, "1970-01-01T00:00:00.000Z", String(time));
  }
});

Deno.test("chatgpt: nodes whose parents form a cycle are delivered, with a warning", () => {
  // They hang from no root: a walk from the roots passed them over, and their messages were
  // lost without a word.
  const message = (id: string, text: string) => ({
    id,
    author: { role: "user" },
    create_time: 1764090229,
    content: { content_type: "text", parts: [text] },
  });
  const out = parse([{
    id: ID,
    title: "cycles",
    current_node: "a",
    mapping: {
      a: { id: "a", parent: null, message: message("a", "rooted") },
      x: { id: "x", parent: "y", message: message("x", "in a cycle") },
      y: { id: "y", parent: "x", message: message("y", "in the same cycle") },
      s: { id: "s", parent: "s", message: message("s", "its own parent") },
    },
  }]);
  const [conversation] = out.conversations;
  ConversationSchema.parse(conversation);
  assertEquals(
    conversation.messages.map((m) => m.content_text).sort(),
    ["in a cycle", "in the same cycle", "its own parent", "rooted"],
  );
  const inCycle = new Map(conversation.messages.map((m) => [m.content_text, m]));
  assertEquals(inCycle.get("in a cycle")!.parent_uuid, "");
  assertEquals(inCycle.get("in the same cycle")!.parent_uuid, inCycle.get("in a cycle")!.uuid);
  assertEquals(out.issues, []);
  assertEquals(out.warnings?.length, 1);
  assertStringIncludes(out.warnings![0].message, "3 node(s) whose parents form a cycle");
});

Deno.test("chatgpt: a file in parts gives what it gives whole", () => {
  const records = [1, 2, 3, 4, 5].map((n) =>
    gptConversation(`6925e174-0000-8000-8000-00000000000${n}`, { turns: n, regenerated: n > 2 })
  );
  const whole = parse(records).conversations;
  const pieces = [records.slice(0, 2), records.slice(2)].flatMap((recs, i) =>
    parseChatGpt({
      bytes: new Uint8Array(0),
      firstLine: 1,
      carry: undefined,
      file: { path: "c.json", hint: {}, host: "h" },
      document: part(recs, i * 2, i === 0, i === 1),
    }).conversations
  );
  assertEquals(pieces, whole);
});

Deno.test("chatgpt: chat.html embeds the same conversations", () => {
  const records = [gptConversation(ID, { turns: 3 })];
  const html = `<html><script>var jsonData = ${
    JSON.stringify(records)
  };\nfunction render() { return "]"; }</script></html>`;
  const out = parseChatGpt({
    bytes: new TextEncoder().encode(html),
    firstLine: 1,
    carry: undefined,
    file: { path: "chat.html", hint: {}, host: "h" },
  });
  assertEquals(out.conversations, parse(records).conversations);
});

Deno.test("chatgpt: conformance over the public fixtures", async (t) => {
  if (!sharedFixturesPresent("chatgpt")) {
    console.log("skipped: ../shared/fixtures/chatgpt is absent (optional public fixtures)");
    return;
  }
  const files = [
    "chatgpt2graph_conversations_2023-09_code-interpreter.json",
    "pionxzh_image-generation.json",
    "pionxzh_thinking-single-preamble.json",
    "pionxzh_thinking-summaries.json",
  ];
  for (const name of files) {
    await t.step(name, async () => {
      const value = JSON.parse(await Deno.readTextFile(`${SHARED_FIXTURES}/chatgpt/${name}`));
      const records = Array.isArray(value) ? value : [value];
      const out = parse(records);
      assertEquals(out.issues, []);
      assertEquals(out.conversations.length, records.length);
      records.forEach((record, i) => {
        // Every node with a message is a message: none lost, none invented.
        const nodes = Object.values(record.mapping as Record<string, { message: unknown }>)
          .filter((n) => n.message);
        const conversation = out.conversations[i];
        assertEquals(conversation.messages.length, nodes.length, name);
        ConversationSchema.parse(conversation);
        const main = conversation.messages.filter((m) => m.metadata?.main_line);
        assert(main.length > 0, `${name}: a main line`);
      });
    });
  }
});
