/**
 * The embedded store through the engine's channel: the engine validates each batch and hands over
 * its rows; the owner only writes them.
 */
import { DatabaseSync } from "node:sqlite";
import {
  applyStoreRequest,
  ChannelSink,
  StoreOpener,
  type StoreRequest,
} from "../common/delivery/store_sinks.ts";
import type { SendOutcome } from "../common/delivery/sink.ts";
import { outgoingBatch } from "../common/delivery/outgoing.ts";
import { itemOf } from "../common/delivery/item.ts";
import { ConversationStore } from "../store/store.ts";
import { batchRows } from "../store/rows.ts";
import type { Batch } from "../common/types.ts";
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { conversationOf, textMessage } from "./helpers.ts";

function batchOf(text: string): Batch {
  return {
    source_type: "claude_code",
    conversations: [{
      ...conversationOf([
        { ...textMessage("m1", text), usage: { total: 3 } },
        {
          ...textMessage("m2", "ls .", { type: "tool_use", name: "ls", input: { path: "." } }),
          parent_uuid: "m1",
          role: "assistant",
          content_type: "tool_use",
          model: "m",
          metadata: { a: 1 },
        },
      ]),
      metadata: { project: "p" },
    }],
  };
}

/** The batch as the pipeline hands it to its sink. */
function outgoing(batch: Batch) {
  return outgoingBatch(batch.source_type, batch.conversations.map((c) => itemOf(c, "rows")), "k");
}

/** A channel whose owner is `store`, in this thread; `posted` sees every request. */
function channelTo(store: ConversationStore, posted: StoreRequest[]): ChannelSink {
  const sink: ChannelSink = new ChannelSink("embedded store", (request) => {
    posted.push(request);
    queueMicrotask(() => sink.receive(applyStoreRequest(store, request)));
  });
  return sink;
}

Deno.test("store sinks: the engine validates, the owner writes rows", async (t) => {
  await t.step("an invalid batch is refused in the engine; nothing reaches the owner", async () => {
    const store = new ConversationStore(":memory:");
    const posted: StoreRequest[] = [];
    const batch = batchOf("hi");
    (batch.conversations[0].messages[0] as { role: string }).role = "narrator";
    const outcome = await channelTo(store, posted).send(outgoing(batch));
    assertEquals(outcome.kind, "rejected");
    assertStringIncludes((outcome as SendOutcome & { reason: string }).reason, "role");
    assertEquals(posted.length, 0);
    assertEquals(store.allMessages("c1").length, 0);
    store.close();
  });

  await t.step("a valid batch arrives as its rows and reads back as sent", async () => {
    const store = new ConversationStore(":memory:");
    const posted: StoreRequest[] = [];
    const text = "a\u0000b \ud800 c";
    const batch = batchOf(text);
    const outcome = await channelTo(store, posted).send(outgoing(batch));
    assertEquals(outcome.kind, "ok");
    assertEquals(posted.map((p) => p.rows), [batchRows(batch)]);
    // No JSON crosses the channel: the owner is handed the rows alone.
    assertEquals(Object.keys(posted[0]).sort(), ["id", "key", "rows", "type"]);
    const [first, second] = store.allMessages("c1");
    // JSON keeps a lone surrogate (escaped); a text column gives U+FFFD back.
    assertEquals(first.content, { type: "text", text });
    assertEquals(first.content_text, text.toWellFormed());
    assertEquals(first.usage, { total: 3 });
    assertEquals(second.content, batch.conversations[0].messages[1].content);
    assertEquals(second.model, "m");
    assertEquals(second.metadata, { a: 1 });
    assertEquals(store.conversation("c1")?.metadata, { project: "p" });
    // The same rows again change nothing.
    const again = await channelTo(store, posted).send(outgoing(batch));
    assert(again.kind === "ok");
    assertEquals(again.result.inserted_messages + again.result.updated_messages, 0);
    store.close();
  });

  await t.step("a store that cannot write answers retry, naming the error", () => {
    const store = new ConversationStore(":memory:");
    store.close();
    const reply = applyStoreRequest(store, {
      type: "store",
      id: 7,
      key: "k",
      rows: batchRows(batchOf("hi")),
    });
    assertEquals(reply.id, 7);
    assertEquals(reply.outcome.kind, "retry");
    assertStringIncludes((reply.outcome as { reason: string }).reason, "store error");
  });
});

Deno.test("store sinks: a store another program holds locked is a retry until it lets go", () => {
  const path = `${Deno.makeTempDirSync()}/conversations.db`;
  new ConversationStore(path).close();
  // A database tool in a write transaction on the user's store, past SQLite's own wait.
  const holder = new DatabaseSync(path);
  holder.exec("BEGIN EXCLUSIVE");
  const opener = new StoreOpener(path);
  const request: StoreRequest = {
    type: "store",
    id: 1,
    key: "k",
    rows: batchRows(batchOf("while locked")),
  };
  try {
    const locked = applyStoreRequest(opener, request).outcome;
    assertEquals(locked.kind, "retry");
    assertStringIncludes(
      (locked as { reason: string }).reason,
      `another program holds a write lock on ${path}`,
    );
  } finally {
    holder.exec("COMMIT");
    holder.close();
  }
  assertEquals(applyStoreRequest(opener, request).outcome.kind, "ok");
  opener.store?.close();
});
