import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { startServer } from "./helpers.ts";
import type { Batch } from "../common/types.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function batch(conversation: string, messages: string[], title = "t", start = 0): Batch {
  return {
    source_type: "claude_code",
    conversations: [{
      uuid: conversation,
      title,
      created_at: "2025-01-01T00:00:00.000Z",
      updated_at: "2025-01-01T00:01:00.000Z",
      metadata: { cwd: "/x" },
      messages: messages.map((uuid, i) => ({
        uuid,
        parent_uuid: i === 0 ? "" : messages[i - 1],
        round_index: 1,
        role: i % 2 === 0 ? "user" : "assistant",
        content_type: "text",
        content: { type: "text", text: uuid },
        content_text: uuid,
        created_at: `2025-01-01T00:00:${String(start + i).padStart(2, "0")}.000Z`,
      })),
    }],
  };
}

Deno.test({
  name: "server: the batch API as a real process",
  ...opts,
  fn: async (t) => {
    const server = await startServer({ args: ["--max-body-bytes", "20000"] });
    const post = (body: BodyInit, headers: Record<string, string> = {}) =>
      fetch(`${server.url}/internal/v1/sync/batch`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${server.token}`,
          "content-type": "application/json",
          ...headers,
        },
        body,
      });
    try {
      await t.step("inserts, and a repeated batch changes nothing and says so", async () => {
        const b = JSON.stringify(batch("c1", ["m1", "m2"]));
        const first = await (await post(b, { "idempotency-key": "k1" })).json();
        assertEquals(first, {
          success: true,
          inserted_conversations: 1,
          inserted_messages: 2,
          updated_conversations: 0,
          updated_messages: 0,
        });
        const again = await (await post(b, { "idempotency-key": "k1" })).json();
        assertEquals(again, {
          success: true,
          inserted_conversations: 0,
          inserted_messages: 0,
          updated_conversations: 0,
          updated_messages: 0,
        });
      });
      await t.step(
        "new messages of a known conversation; an empty title keeps the title",
        async () => {
          const r = await (await post(JSON.stringify(batch("c1", ["m3"], "", 5)))).json();
          assertEquals(r.inserted_messages, 1);
          const list = await server.get("/api/v1/conversations") as {
            items: { title: string; message_count: number }[];
          };
          assertEquals(list.items[0].title, "t");
          assertEquals(list.items[0].message_count, 3);
        },
      );
      await t.step("the same key with a different payload is refused", async () => {
        const r = await post(JSON.stringify(batch("c1", ["m9"])), { "idempotency-key": "k1" });
        assertEquals(r.status, 422);
        await r.body?.cancel();
      });
      await t.step("bearer auth", async () => {
        const r = await fetch(`${server.url}/internal/v1/sync/batch`, {
          method: "POST",
          body: "{}",
        });
        assertEquals(r.status, 401);
        await r.body?.cancel();
        const read = await fetch(`${server.url}/api/v1/conversations`, {
          headers: { authorization: "Bearer nope" },
        });
        assertEquals(read.status, 401);
        await read.body?.cancel();
      });
      await t.step("validation errors name the field path", async () => {
        const bad = batch("c2", ["x1"]) as unknown as {
          conversations: { messages: { role: string }[] }[];
        };
        bad.conversations[0].messages[0].role = "robot";
        const r = await post(JSON.stringify(bad));
        assertEquals(r.status, 400);
        assertStringIncludes((await r.json()).message, "conversations.0.messages.0.role");
        const r2 = await post("{not json");
        assertEquals(r2.status, 400);
        assertStringIncludes((await r2.json()).message, "invalid JSON");
      });
      await t.step("the body limit answers 413, also after gzip decoding", async () => {
        const big = JSON.stringify(batch("c3", Array.from({ length: 300 }, (_, i) => `big-${i}`)));
        const r = await post(big);
        assertEquals(r.status, 413);
        await r.body?.cancel();
        const gz = await new Response(
          new Blob([big]).stream().pipeThrough(new CompressionStream("gzip")),
        ).arrayBuffer();
        assert(gz.byteLength < 20000, "compressed under the limit");
        const r2 = await post(gz, { "content-encoding": "gzip" });
        assertEquals(r2.status, 413);
        await r2.body?.cancel();
      });
      await t.step("gzip request bodies", async () => {
        const body = JSON.stringify(batch("c4", ["g1"]));
        const gz = await new Response(
          new Blob([body]).stream().pipeThrough(new CompressionStream("gzip")),
        ).arrayBuffer();
        const r = await post(gz, { "content-encoding": "gzip" });
        assertEquals((await r.json()).inserted_messages, 1);
      });
      await t.step("read API: pages, messages in order, stats", async () => {
        const p1 = await server.get("/api/v1/conversations?page=1&page_size=1") as {
          items: unknown[];
          total: number;
        };
        assertEquals([p1.items.length, p1.total], [1, 2]);
        const m = await server.get("/api/v1/conversations/c1/messages?page_size=2&page=2") as {
          items: { uuid: string }[];
          total: number;
        };
        assertEquals(m.items.map((x) => x.uuid), ["m3"]);
        assertEquals(m.total, 3);
        assertEquals(await server.get("/api/v1/stats/overview"), {
          total_conversations: 2,
          total_messages: 4,
          sources: { claude_code: 2 },
        });
        const other = await server.get("/api/v1/conversations?source_type=codex") as {
          total: number;
        };
        assertEquals(other.total, 0);
        const missing = await fetch(`${server.url}/api/v1/conversations/nope/messages`, {
          headers: { authorization: `Bearer ${server.token}` },
        });
        assertEquals(missing.status, 404);
        await missing.body?.cancel();
      });
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "server: --wrapped answers {code, message, data}",
  ...opts,
  fn: async () => {
    const server = await startServer({ args: ["--wrapped"] });
    try {
      const r = await fetch(`${server.url}/internal/v1/sync/batch`, {
        method: "POST",
        headers: { authorization: `Bearer ${server.token}` },
        body: JSON.stringify(batch("w1", ["w-m1"])),
      });
      const json = await r.json();
      assertEquals(json.code, 0);
      assertEquals(json.data.inserted_messages, 1);
    } finally {
      await server.stop();
    }
  },
});
