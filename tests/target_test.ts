/**
 * The target a worker's state delivered to: a change starts the state over (checkpoints, batches
 * in flight, what exports sent), keeping the mailbox's own bookkeeping.
 */
import { DatabaseSync } from "node:sqlite";
import { checkTarget, noteTargetFile, storeReceiptOf, targetOf } from "../common/engine/target.ts";
import { RECEIPT_MARK } from "../common/delivery/store_sinks.ts";
import { ConversationStore } from "../store/store.ts";
import { StateStore } from "../common/state/state.ts";
import { assertEquals, assertStringIncludes } from "./assert.ts";
import { appendedUnit } from "./helpers.ts";

/** A state that delivered one file and one export, and knows one email. */
function deliveredState(): StateStore {
  const state = new StateStore(":memory:");
  state.putUnit(appendedUnit("/s.jsonl", 10, 1));
  state.recordBatch("b1", []);
  state.putFingerprint("x:0123", "/drop/export.zip");
  state.putFingerprint("c:conversation", "print m1");
  state.putFingerprint("mail:<id@x>", '{"status":"imported"}');
  state.putFingerprint("mailbox:me@imap/INBOX", '{"lastUid":7}');
  state.addCounter("messages", 5);
  state.addCounter("dead_lettered", 1);
  return state;
}

Deno.test("target: a change of target starts the state over", async (t) => {
  await t.step("the same target keeps everything", () => {
    const state = deliveredState();
    assertEquals(checkTarget(state, { name: "the embedded store /s/conversations.db" }), "");
    assertEquals(checkTarget(state, { name: "the embedded store /s/conversations.db" }), "");
    assertEquals(state.listUnits().length, 1);
    assertEquals(state.pendingBatches().length, 1);
  });
  await t.step("a server after the store: delivered things forgotten, the mailbox kept", () => {
    const state = deliveredState();
    checkTarget(state, { name: "the embedded store /s/conversations.db" });
    const why = checkTarget(state, targetOf("https://sync.example/", "/s"));
    assertStringIncludes(why, "it delivered to the embedded store /s/conversations.db before");
    assertEquals(state.listUnits(), []);
    assertEquals(state.pendingBatches(), []);
    assertEquals(state.fingerprint("x:0123"), undefined);
    assertEquals(state.fingerprint("c:conversation"), undefined);
    assertEquals(state.fingerprint("mail:<id@x>"), '{"status":"imported"}');
    assertEquals(state.fingerprint("mailbox:me@imap/INBOX"), '{"lastUid":7}');
    // status counts what reached this target (the dead letters are still listed).
    assertEquals(state.counters(), { dead_lettered: 1 });
    // The new target is recorded: the next start keeps what it delivers.
    assertEquals(checkTarget(state, { name: "the server https://sync.example" }), "");
  });
  await t.step("the store's file: noted once created, missed when gone or replaced", async () => {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/conversations.db`;
    const state = deliveredState();
    assertEquals(checkTarget(state, targetOf("", dir)), "", "not created yet");
    await Deno.writeTextFile(path, "a store");
    noteTargetFile(state, targetOf("", dir));
    assertEquals(checkTarget(state, targetOf("", dir)), "");
    assertEquals(state.listUnits().length, 1);
    await Deno.remove(path);
    assertStringIncludes(checkTarget(state, targetOf("", dir)), "is gone");
    assertEquals(state.listUnits(), []);
    await Deno.writeTextFile(path, "the first batch made it again");
    noteTargetFile(state, targetOf("", dir));
    await Deno.writeTextFile(`${path}.new`, "another store");
    await Deno.rename(`${path}.new`, path);
    assertStringIncludes(checkTarget(state, targetOf("", dir)), "replaced");
  });
});

Deno.test("target: a store that holds fewer batches than it acknowledged starts the state over", async (t) => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/conversations.db`;
  const store = new ConversationStore(path, { receipts: true });
  const batch = { source_type: "codex" as const, conversations: [] };
  const target = () => targetOf("", dir);
  const state = deliveredState();

  await t.step("the store counts the batches of each source", () => {
    for (let i = 0; i < 3; i++) assertEquals(store.applyBatch(batch).receipt, i + 1);
    assertEquals(store.applyBatch({ ...batch, source_type: "gemini" }).receipt, 1);
    assertEquals(storeReceiptOf(dir, "codex"), 3);
    assertEquals(storeReceiptOf(dir, "claude"), 0);
    assertEquals(storeReceiptOf(`${dir}/none`, "codex"), undefined);
    // A server's store answers without one.
    assertEquals(new ConversationStore(":memory:").applyBatch(batch).receipt, undefined);
  });

  await t.step("a state without a receipt, or one the store reaches, keeps everything", () => {
    assertEquals(checkTarget(state, target(), 3), "");
    state.commitBatch("b1", [], {}, [[RECEIPT_MARK, "3"]]);
    assertEquals(checkTarget(state, target(), 3), "");
    assertEquals(checkTarget(state, target(), 4), "", "a store ahead (a crash before the commit)");
    assertEquals(checkTarget(state, target(), undefined), "", "a store that cannot be read now");
    assertEquals(state.listUnits().length, 1);
  });

  await t.step("a store behind the receipt: everything forgotten, once", () => {
    const why = checkTarget(state, target(), 2);
    assertStringIncludes(why, "the store holds 2 of the 3 batches it acknowledged");
    assertEquals(state.listUnits().length, 0);
    assertEquals(state.fingerprint("mailbox:me@imap/INBOX"), '{"lastUid":7}');
    assertEquals(checkTarget(state, target(), 2), "");
  });

  await t.step("a store from before receipts, read beside its writer, holds none", () => {
    const old = `${dir}/old`;
    Deno.mkdirSync(old);
    new ConversationStore(`${old}/conversations.db`).close();
    const db = new DatabaseSync(`${old}/conversations.db`);
    db.exec("DROP TABLE receipts");
    db.close();
    assertEquals(storeReceiptOf(old, "codex"), 0);
  });
  store.close();
});
