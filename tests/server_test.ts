import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { nested, procStatusBytes, REPO, startServer } from "./helpers.ts";
import { ConversationStore } from "../store/store.ts";
import type { Batch } from "../common/types.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Posts `body` to the server's batch API with its token. */
function postBatch(
  server: { url: string; token: string },
  body: BodyInit,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${server.url}/internal/v1/sync/batch`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${server.token}`,
      "content-type": "application/json",
      ...headers,
    },
    body,
  });
}

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
      postBatch(server, body, headers);
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
        // Content, usage and metadata: any keys, but an object.
        for (const [field, value] of [["content", []], ["usage", "5"], ["metadata", null]]) {
          const odd = batch("c2", ["x1"]) as unknown as {
            conversations: { messages: Record<string, unknown>[] }[];
          };
          odd.conversations[0].messages[0][field as string] = value;
          const r3 = await post(JSON.stringify(odd));
          assertEquals(r3.status, 400);
          assertStringIncludes(
            (await r3.json()).message,
            `conversations.0.messages.0.${field}: expected an object`,
          );
        }
        // Ids and model names are stored with every message they apply to: bounded.
        for (
          const [field, value, expected] of [
            ["uuid", "u".repeat(1025), "an id of at most 1024 characters"],
            ["parent_uuid", "p".repeat(1025), "an id of at most 1024 characters"],
            ["model", "m".repeat(257), "a model name of at most 256 characters"],
          ]
        ) {
          const odd = batch("c2", ["x1"]) as unknown as {
            conversations: { messages: Record<string, unknown>[] }[];
          };
          odd.conversations[0].messages[0][field] = value;
          const r4 = await post(JSON.stringify(odd));
          assertEquals(r4.status, 400);
          assertStringIncludes(
            (await r4.json()).message,
            `conversations.0.messages.0.${field}: expected ${expected}`,
          );
        }
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

/** A valid batch of about `mb` megabytes: one conversation of 100 KB messages. */
function bigBatch(mb: number): string {
  const text = "x".repeat(100_000);
  const count = Math.ceil((mb * 1e6) / 100_200);
  const b = batch("big", Array.from({ length: count }, (_, i) => `big-${i}`));
  for (const m of b.conversations[0].messages) {
    m.content_text = text;
    m.created_at = "2025-01-01T00:00:00.000Z";
  }
  return JSON.stringify(b);
}

/** A body streamed in chunks, with no Content-Length (chunked transfer encoding). */
function chunked(text: string): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(text);
  let at = 0;
  return new ReadableStream({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.subarray(at, at += 1024 * 1024));
    },
  });
}

Deno.test({
  name: "server: hostile input and hostile clients",
  ...opts,
  fn: async (t) => {
    const server = await startServer({ args: ["--header-timeout", "1"] });
    const auth = { authorization: `Bearer ${server.token}` };
    const post = (body: BodyInit) =>
      fetch(`${server.url}/internal/v1/sync/batch`, { method: "POST", headers: auth, body });
    try {
      await t.step(
        "NUL bytes in text come back whole; an identical re-send changes nothing",
        async () => {
          const b = batch("nul", ["nul-1"], "be\0fore");
          b.conversations[0].messages[0].content_text = "before\0after";
          b.conversations[0].messages[0].model = "model\0x";
          assertEquals((await (await post(JSON.stringify(b))).json()).inserted_messages, 1);
          const again = await (await post(JSON.stringify(b))).json();
          assertEquals([again.updated_messages, again.updated_conversations], [0, 0]);
          const messages = await server.get("/api/v1/conversations/nul/messages") as {
            items: { content_text: string; model: string }[];
          };
          assertEquals(messages.items[0].content_text, "before\0after");
          assertEquals(messages.items[0].model, "model\0x");
          const list = await server.get("/api/v1/conversations") as { items: { title: string }[] };
          assert(list.items.some((c) => c.title === "be\0fore"));
        },
      );

      await t.step("an id with a NUL is refused, not cut short", async () => {
        const r = await post(JSON.stringify(batch("id\0cut", ["m-x"])));
        assertEquals(r.status, 400);
        assertStringIncludes((await r.json()).message, "conversations.0.uuid");
      });

      await t.step("messages are ordered by time, whatever the precision or offset", async () => {
        const b = batch("order", ["o-1", "o-2", "o-3"]);
        const [a, m, z] = b.conversations[0].messages;
        a.created_at = "2025-01-01T00:00:01Z";
        m.created_at = "2025-01-01T00:00:00.5Z";
        z.created_at = "2025-01-01T01:00:00+02:00"; // 2024-12-31T23:00:00Z
        await (await post(JSON.stringify(b))).body?.cancel();
        const got = await server.get("/api/v1/conversations/order/messages") as {
          items: { uuid: string }[];
        };
        assertEquals(got.items.map((x) => x.uuid), ["o-3", "o-2", "o-1"]);
      });

      await t.step("absurd paging and bad escapes are 400s that name the parameter", async () => {
        for (
          const [path, names] of [
            ["/api/v1/conversations?page=1e300", "page"],
            ["/api/v1/conversations?page=-1", "page"],
            ["/api/v1/conversations?page_size=1e9", "page_size"],
            ["/api/v1/conversations/%E0%A4%A/messages", "percent-encoding"],
          ]
        ) {
          const r = await fetch(`${server.url}${path}`, { headers: auth });
          assertEquals(r.status, 400, path);
          assertStringIncludes((await r.json()).message, names);
        }
      });

      await t.step("a chunked body is refused as soon as it passes the limit", async () => {
        const r = await post(chunked(" ".repeat(40 * 1024 * 1024)));
        assertEquals(r.status, 413);
        await r.body?.cancel();
      });

      await t.step("connections that never finish their headers are closed", async () => {
        const conns = await Promise.all(
          Array.from({ length: 200 }, async () => {
            const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
            await conn.write(new TextEncoder().encode("GET /healthz HTTP/1.1\r\nHost: x\r\n"));
            return conn;
          }),
        );
        const closed = await Promise.all(conns.map(async (conn) => {
          const deadline = new Promise<"open">((r) => setTimeout(() => r("open"), 5000));
          const n = await Promise.race([conn.read(new Uint8Array(16)).catch(() => null), deadline]);
          conn.close();
          return n === null;
        }));
        assertEquals(closed.filter(Boolean).length, 200);
        assertEquals((await fetch(`${server.url}/healthz`)).status, 200, "the server still serves");
      });
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "server: a large body costs a small multiple of its size",
  ...opts,
  fn: async () => {
    const server = await startServer({ args: ["--max-body-bytes", String(128 * 1024 * 1024)] });
    try {
      const body = bigBatch(100);
      const r = await fetch(`${server.url}/internal/v1/sync/batch`, {
        method: "POST",
        headers: { authorization: `Bearer ${server.token}` },
        body: chunked(body),
      });
      assertEquals(r.status, 200);
      await r.body?.cancel();
      const peak = procStatusBytes(server.child.pid, "VmHWM");
      // Measured: 370 MB here, against 456 MB before the body was read into one buffer.
      assert(peak < 410e6, `peak RSS ${(peak / 1e6).toFixed(0)} MB for a 100 MB body`);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "server: by default a 100 MB chunked body is refused at 32 MiB, not buffered",
  ...opts,
  fn: async () => {
    const server = await startServer();
    try {
      const r = await fetch(`${server.url}/internal/v1/sync/batch`, {
        method: "POST",
        headers: { authorization: `Bearer ${server.token}` },
        body: chunked(bigBatch(100)),
      });
      assertEquals(r.status, 413);
      assertStringIncludes((await r.json()).message, "exceeds 33554432 bytes");
      const peak = procStatusBytes(server.child.pid, "VmHWM");
      assert(peak < 200e6, `peak RSS ${(peak / 1e6).toFixed(0)} MB`);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "server: nesting deeper than the store's SQL reads JSON",
  ...opts,
  fn: async (t) => {
    const server = await startServer();
    const post = (body: string) => postBatch(server, body);
    try {
      type Odd = { conversations: Record<string, unknown>[] };
      const withMessage = (field: string, value: unknown) => {
        const odd = batch("deep", ["deep-1"]) as unknown as {
          conversations: { messages: Record<string, unknown>[] }[];
        };
        odd.conversations[0].messages[0][field] = value;
        return odd;
      };
      await t.step("conversation metadata and usage: refused, naming the field", async () => {
        const metadata = batch("deep", ["deep-1"]) as unknown as Odd;
        // The object is the first level: 1 + 1000.
        metadata.conversations[0].metadata = { cwd: "/x", under: nested(1000) };
        const usage = withMessage("usage", { under: nested(1000) });
        for (const [odd, path] of [[metadata, "0.metadata"], [usage, "0.messages.0.usage"]]) {
          const r = await post(JSON.stringify(odd));
          assertEquals(r.status, 400);
          assertStringIncludes(
            (await r.json()).message,
            `conversations.${path}: expected an object nested at most 1000 levels deep`,
          );
        }
        metadata.conversations[0].metadata = { cwd: "/x", under: nested(999) };
        assertEquals((await post(JSON.stringify(metadata))).status, 200);
      });
      await t.step("a content: stored, and every read still works", async () => {
        const odd = withMessage("content", { type: "text", text: "deep-1", under: nested(5000) });
        assertEquals((await post(JSON.stringify(odd))).status, 200);
        const read = await server.get("/api/v1/conversations/deep/messages") as {
          items: { content_text: string }[];
        };
        assertEquals(read.items.map((m) => m.content_text), ["deep-1"]);
        const list = await server.get("/api/v1/conversations?project=/x") as {
          items: unknown[];
        };
        assertEquals(list.items.length, 1);
      });
    } finally {
      await server.stop();
    }
  },
});

Deno.test("server: the best title sent is kept; a weaker one never replaces it", () => {
  const store = new ConversationStore(":memory:");
  const send = (title: string, source?: string) => {
    const b = batch("titled", [], title);
    if (source) b.conversations[0].metadata.title_source = source;
    store.applyBatch(b);
    return store.listConversations().items[0];
  };
  assertEquals(send("Fix the cart", "first_prompt").title, "Fix the cart");
  assertEquals(send("Cart rounding fix", "ai").title, "Cart rounding fix");
  const kept = send("Fix the cart", "first_prompt");
  assertEquals([kept.title, kept.metadata.title_source], ["Cart rounding fix", "ai"]);
  assertEquals(send("Q4 cart bugs", "custom").title, "Q4 cart bugs");
  assertEquals(send("Another AI title", "ai").title, "Q4 cart bugs");
  assertEquals(send("", "first_prompt").title, "Q4 cart bugs");
  store.close();
});

Deno.test({
  name: "server: a busy port and a mistyped --db are said plainly",
  ...opts,
  fn: async (t) => {
    const serve = (args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${REPO}/server/main.ts`, "--token", "t", ...args],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const dir = await Deno.makeTempDir();
    await t.step("a busy port: which port, and what to do; no stack trace", async () => {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (listener.addr as Deno.NetAddr).port;
      try {
        const out = await serve(["--port", String(port), "--db", `${dir}/a.db`]);
        const stderr = new TextDecoder().decode(out.stderr);
        assertEquals(out.code, 1);
        assertStringIncludes(stderr, `127.0.0.1:${port} is already in use`);
        assertStringIncludes(stderr, "--port 0 for a free one");
        assert(!stderr.includes("    at "), stderr);
      } finally {
        listener.close();
      }
    });
    await t.step("a --db in a folder that does not exist is refused, nothing created", async () => {
      const out = await serve(["--port", "0", "--db", `${dir}/typo/conversations.db`]);
      assertEquals(out.code, 2);
      assertStringIncludes(new TextDecoder().decode(out.stderr), `${dir}/typo does not exist`);
      const created = await Deno.stat(`${dir}/typo`).then(() => true, () => false);
      assertEquals(created, false);
    });
  },
});
