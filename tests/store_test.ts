/**
 * The conversation store opened by several processes at once, as the workers `start` launches
 * together open one new embedded store; message texts stored once; idempotency keys.
 */
import { DatabaseSync } from "node:sqlite";
import { ConversationStore, FINGERPRINT_FORM, IdempotencyConflictError } from "../store/store.ts";
import { SearchIndex } from "../store/search.ts";
import type { Batch, Message } from "../common/types.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { conversationOf, nested, REPO, TEST_TIME, textMessage } from "./helpers.ts";

Deno.test("store: six processes opening one new store at once all succeed", async () => {
  const dir = await Deno.makeTempDir();
  const code = `import { ConversationStore } from "${REPO}/store/store.ts";
    await new Promise((r) => setTimeout(r, Number(Deno.args[0]) - Date.now()));
    new ConversationStore("${dir}/conversations.db").close();`;
  const at = Date.now() + 1500;
  const runs = await Promise.all(
    Array.from({ length: 6 }, () =>
      new Deno.Command(Deno.execPath(), {
        args: ["eval", "--config", `${REPO}/deno.json`, code, String(at)],
        stderr: "piped",
      }).output()),
  );
  assertEquals(
    runs.map((r) => r.code),
    [0, 0, 0, 0, 0, 0],
    runs.map((r) => new TextDecoder().decode(r.stderr)).join("\n"),
  );
  await Deno.remove(dir, { recursive: true });
});

const at = TEST_TIME;

/** A batch of conversation `c` holding `messages`. */
function batchOf(messages: Message[]): Batch {
  return { source_type: "codex", conversations: [{ ...conversationOf(messages), uuid: "c" }] };
}

Deno.test("store: an idempotency key holds its payload, across fingerprint forms", () => {
  const store = new ConversationStore(":memory:");
  const one = batchOf([textMessage("m1", "a")]);
  const two = batchOf([textMessage("m2", "b")]);
  const x64 = (hash: string) => `${FINGERPRINT_FORM}${hash}`;
  store.applyBatch(one, "k1", x64("aaa"));
  assertEquals(store.applyBatch(one, "k1", x64("aaa")).inserted_messages, 0, "a retry");
  const error = assertThrows(() => store.applyBatch(two, "k1", x64("bbb")));
  assert(error instanceof IdempotencyConflictError, String(error));
  // A key recorded with a SHA-256 (before the fingerprints were xxHash64) cannot be compared: a
  // retry of its batch is applied again, which changes nothing.
  store.applyBatch(one, "k2", "e3b0c442".repeat(8));
  assertEquals(store.applyBatch(one, "k2", x64("aaa")).inserted_messages, 0);
  assertEquals(store.stats().total_messages, 1);
  store.close();
});

Deno.test("store: messages are kept in the conversation that sent them first", async (t) => {
  const store = new ConversationStore(":memory:");
  const first = {
    ...conversationOf([textMessage("a", "one"), textMessage("b", "two")]),
    uuid: "c1",
  };
  store.applyBatch({ source_type: "gemini", conversations: [first] });
  const counts = () => store.listConversations().items.map((c) => [c.uuid, c.message_count]).sort();
  await t.step("a new conversation of only those messages is not kept (no empty copy)", () => {
    const copy = { ...conversationOf([textMessage("b", "two")]), uuid: "c2" };
    const result = store.applyBatch({ source_type: "gemini", conversations: [copy] });
    assertEquals([result.inserted_conversations, result.inserted_messages], [0, 0]);
    assertEquals(counts(), [["c1", 2]]);
  });
  await t.step("one with a message of its own is kept, with that message only", () => {
    const grown = {
      ...conversationOf([textMessage("b", "two"), textMessage("c", "three")]),
      uuid: "c2",
    };
    const result = store.applyBatch({ source_type: "gemini", conversations: [grown] });
    assertEquals([result.inserted_conversations, result.inserted_messages], [1, 1]);
    assertEquals(counts(), [["c1", 2], ["c2", 1]]);
  });
  await t.step("a conversation sent without messages is still kept", () => {
    const empty = { ...conversationOf([]), uuid: "c3" };
    assertEquals(
      store.applyBatch({ source_type: "gemini", conversations: [empty] }).inserted_conversations,
      1,
    );
  });
  store.close();
});

Deno.test("store: a message's text is stored once and reads back exactly", async (t) => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/c.db`;
  const messages = [
    textMessage("plain", "a prompt", { type: "text", text: "a prompt" }),
    textMessage("nul", "before\0after", { type: "text", text: "before\0after" }),
    textMessage("thinking", "hmm", { type: "thinking", thinking: "hmm" }),
    textMessage("result", "ok", { type: "tool_result", content: "ok" }),
    textMessage("tool", "ls {}", { type: "tool_use", name: "ls", input: {} }),
    textMessage("surrogate", "x\ud800y", { type: "text", text: "x\ud800y" }),
    // SQLite's JSON functions read 1000 levels: this text could not be read out of its content.
    textMessage("deep", "deep down", { type: "text", text: "deep down", under: nested(1500) }),
  ];
  const batch = batchOf(messages);
  const store = new ConversationStore(path);
  store.applyBatch(batch);

  await t.step("copies of a content field are not stored twice", () => {
    const db = new DatabaseSync(path, { readOnly: true });
    const rows = db.prepare("SELECT uuid, content_text, text_key FROM messages ORDER BY seq")
      .all() as { uuid: string; content_text: string; text_key: string | null }[];
    db.close();
    const keys = Object.fromEntries(rows.map((r) => [r.uuid, r.text_key]));
    assertEquals(keys, {
      plain: "text",
      nul: "text",
      thinking: "thinking",
      result: "content",
      tool: null,
      surrogate: null,
      deep: null,
    });
    for (const r of rows) if (r.text_key) assertEquals(r.content_text, "");
  });

  await t.step("every text reads back as sent, and the same batch again changes nothing", () => {
    const read = store.listMessages("c")!.items;
    for (const m of messages) {
      const back = read.find((r) => r.uuid === m.uuid)!;
      assertEquals(back.content_text, m.content_text.toWellFormed(), m.uuid);
    }
    const again = store.applyBatch(batch);
    assertEquals([again.inserted_messages, again.updated_messages], [0, 0]);
  });

  await t.step("the view message_text shows every text, for sqlite3", () => {
    const db = new DatabaseSync(path, { readOnly: true });
    const rows = db.prepare("SELECT uuid, text FROM message_text WHERE uuid IN ('plain', 'tool')")
      .all() as { uuid: string; text: string }[];
    db.close();
    assertEquals(Object.fromEntries(rows.map((r) => [r.uuid, r.text])), {
      plain: "a prompt",
      tool: "ls {}",
    });
  });

  await t.step("the view reads every text, the deeply nested one's too", () => {
    const db = new DatabaseSync(path, { readOnly: true });
    const rows = db.prepare("SELECT uuid, text FROM message_text").all() as {
      uuid: string;
      text: string;
    }[];
    db.close();
    assertEquals(rows.length, messages.length);
    assertEquals(rows.find((r) => r.uuid === "deep")?.text, "deep down");
  });

  await t.step("the search index reads the texts too", () => {
    const index = new SearchIndex(path);
    assertEquals(index.search("prompt", {}, 10).map((h) => h.uuid), ["c"]);
    assertEquals(index.search("after", {}, 10).map((h) => h.uuid), ["c"]);
    assertEquals(index.search("deep", {}, 10).map((h) => h.uuid), ["c"]);
    index.close();
  });
  store.close();
});

Deno.test("store: a store written before text_key is read, searched, then upgraded", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/c.db`;
  // A store as the version before wrote it: each text stored as given, no text_key, no view.
  const writer = new ConversationStore(path);
  writer.close();
  const db = new DatabaseSync(path);
  db.exec("DROP VIEW message_text; ALTER TABLE messages DROP COLUMN text_key");
  db.exec(`INSERT INTO conversations (uuid, source_type, title, created_at, updated_at, metadata)
    VALUES ('c', 'codex', 't', '${at}', '${at}', '{}')`);
  db.exec(`INSERT INTO messages (uuid, conversation_uuid, parent_uuid, round_index, role,
    content_type, content, content_text, created_at)
    VALUES ('old', 'c', '', 1, 'user', 'text', '{"type":"text","text":"older words"}',
      'older words', '${at}')`);
  db.close();

  const reader = new ConversationStore(path, { readOnly: true });
  const index = new SearchIndex(path);
  assertEquals(reader.listMessages("c")!.items.map((m) => m.content_text), ["older words"]);
  assertEquals(index.search("older", {}, 10).map((h) => h.uuid), ["c"]);
  // A worker of this version opens it (adding text_key) and stores a text once; the reader, open
  // all along, sees both.
  const upgraded = new ConversationStore(path);
  upgraded.applyBatch(
    batchOf([textMessage("new", "newer words", { type: "text", text: "newer words" })]),
  );
  upgraded.close();
  assertEquals(reader.listMessages("c")!.items.map((m) => m.content_text).sort(), [
    "newer words",
    "older words",
  ]);
  assertEquals(index.search("newer", {}, 10).map((h) => h.uuid), ["c"]);
  index.close();
  reader.close();
});
