/**
 * Items: a conversation made once into the form its sink sends, with a print the batch key
 * commits to.
 */
import { ConversationTooLargeError, itemOf } from "../common/delivery/item.ts";
import { batchBlob, batchBody } from "../common/delivery/outgoing.ts";
import { fingerprint64 } from "../common/hash.ts";
import { conversationRows } from "../store/rows.ts";
import type { Conversation, Message } from "../common/types.ts";
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { conversationOf, textMessage } from "./helpers.ts";

function message(uuid: string, text: string): Message {
  return { ...textMessage(uuid, text), round_index: 0 };
}

const conversation = (...messages: Message[]): Conversation => conversationOf(messages);

Deno.test("items: one form made at once, the other on demand; prints tell payloads apart", async (t) => {
  const c = conversation(message("m1", "hello"), message("m2", "world"));

  await t.step("both forms give the same conversation", () => {
    for (const form of ["json", "rows"] as const) {
      const item = itemOf(c, form);
      assertEquals(item.form, form);
      assertEquals(item.json, JSON.stringify(c));
      assertEquals(item.rows, conversationRows(c));
    }
    assertEquals(itemOf(c, "json").bytes, JSON.stringify(c).length);
    assert(itemOf(c, "rows").bytes >= "helloworld".length * 2);
  });

  await t.step("rows taken for a send are let go, and made again for another", () => {
    const item = itemOf(c, "rows");
    const taken = item.takeRows();
    assertEquals(taken, conversationRows(c));
    const again = item.takeRows();
    assert(again !== taken, "made again, not kept");
    assertEquals(again, taken);
  });

  await t.step("the JSON form is kept as UTF-8, and a batch's body joined as bytes", async () => {
    const odd = conversation(message("m1", "€ 😀 \ud800 é"), message("m2", "plain"));
    const item = itemOf(odd, "json");
    const text = JSON.stringify(odd);
    assertEquals(item.json, text);
    assertEquals(item.jsonBytes, new TextEncoder().encode(text));
    assertEquals(item.bytes, item.jsonBytes.length, "bytes as sent");
    assertEquals(item.print, fingerprint64(text), "the print of the text it always had");
    const items = [item, itemOf(c, "json")];
    assertEquals(await batchBlob("codex", items).text(), batchBody("codex", items));
  });

  await t.step("the same payload, the same print; any change, another", () => {
    for (const form of ["json", "rows"] as const) {
      const print = itemOf(c, form).print;
      assertEquals(itemOf(structuredClone(c), form).print, print);
      const changed = [
        conversation(message("m1", "hello"), message("m2", "World")),
        conversation(message("m1", "hello"), message("m3", "world")),
        // Text moved across the boundary between two messages.
        conversation(message("m1", "hellow"), message("m2", "orld")),
        { ...c, title: "u" },
        { ...c, messages: [c.messages[0], { ...c.messages[1], model: "m" }] },
      ];
      for (const other of changed) {
        assert(itemOf(other, form).print !== print, `${form}: ${JSON.stringify(other)}`);
      }
    }
  });

  await t.step("what cannot be serialised throws when the item is made", () => {
    const hostile = conversation({ ...message("m1", "x"), content: { n: 1n } });
    for (const form of ["json", "rows"] as const) {
      let threw = false;
      try {
        itemOf(hostile, form);
      } catch {
        threw = true;
      }
      assert(threw, form);
    }
  });
});

Deno.test("items: a conversation holding more than the limit is refused before it is serialised", () => {
  // One string of a MB on each of 300 messages: 300 MB once serialised, from a MB in memory.
  const shared = "x".repeat(1_000_000);
  const messages = Array.from({ length: 300 }, (_, i) => ({
    ...message(`m${i}`, "hi"),
    metadata: { tool_name: shared },
  }));
  const error = assertThrows(() => itemOf(conversation(...messages), "rows", 10_000_000));
  assert(error instanceof ConversationTooLargeError, String(error));
  assert(error.chars > 10_000_000 && error.chars < 12_000_000, `counted ${error.chars}`);
  // Under the limit, the same conversation of a few messages is made as usual.
  assertEquals(
    itemOf(conversation(...messages.slice(0, 3)), "rows", 10_000_000).rows.messages.length,
    3,
  );
});
