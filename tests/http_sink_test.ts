import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { backoffDelay, classifyStatus, parseRetryAfter } from "../common/delivery/sink.ts";
import { HttpSink } from "../common/delivery/http_sink.ts";
import { outgoingBatch } from "../common/delivery/outgoing.ts";

Deno.test("client: Retry-After in both forms", async (t) => {
  await t.step("delta-seconds", () => assertEquals(parseRetryAfter("7"), 7000));
  await t.step("HTTP-date", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    assertEquals(parseRetryAfter("Thu, 01 Jan 2026 00:00:30 GMT", now), 30_000);
  });
  await t.step(
    "a date in the past means now",
    () => assertEquals(parseRetryAfter("Thu, 01 Jan 2015 00:00:00 GMT"), 0),
  );
  await t.step("absent or unreadable", () => {
    assertEquals(parseRetryAfter(null), undefined);
    assertEquals(parseRetryAfter("soon"), undefined);
  });
  await t.step(
    "clamped to 15 minutes",
    () => assertEquals(parseRetryAfter("99999"), 15 * 60 * 1000),
  );
});

Deno.test("client: full-jitter backoff", async (t) => {
  await t.step("grows with the attempt and stays under the cap", () => {
    assertEquals(backoffDelay(0, 1000, 60_000, undefined, () => 0.999) < 1000, true);
    assertEquals(Math.round(backoffDelay(3, 1000, 60_000, undefined, () => 0.5)), 4000);
    assertEquals(backoffDelay(20, 1000, 60_000, undefined, () => 0.999) <= 60_000, true);
  });
  await t.step("jitter spreads the waits", () => {
    const waits = new Set(
      Array.from({ length: 50 }, () => Math.round(backoffDelay(5, 1000, 60_000))),
    );
    assert(waits.size > 40);
  });
  await t.step("Retry-After is a floor", () => {
    assert(backoffDelay(0, 1000, 60_000, 5000, () => 0) >= 5000);
    assert(backoffDelay(0, 1000, 60_000, 5000, () => 0.999) <= 5500);
  });
});

Deno.test("client: retry classes", () => {
  const kinds = Object.fromEntries(
    [400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 501, 502, 503, 504].map((
      s,
    ) => [s, classifyStatus(s, "").kind]),
  );
  assertEquals(kinds, {
    400: "rejected",
    401: "pause",
    403: "pause",
    404: "pause",
    408: "retry",
    409: "retry",
    413: "too_large",
    422: "rejected",
    429: "retry",
    500: "retry",
    501: "pause",
    502: "retry",
    503: "retry",
    504: "retry",
  });
});

Deno.test({
  name: "client: answers in both forms, headers, gzip, and network errors",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    let answer: () => Response = () => new Response("{}");
    let seen: { headers: Headers; url: string } | undefined;
    let seenBody = "";
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      seen = { headers: new Headers(req.headers), url: req.url };
      const stream = req.headers.get("content-encoding") === "gzip"
        ? req.body!.pipeThrough(new DecompressionStream("gzip"))
        : req.body!;
      seenBody = await new Response(stream).text();
      return answer();
    });
    const sink = new HttpSink({
      baseUrl: `http://127.0.0.1:${server.addr.port}`,
      token: "secret-token",
      timeoutMs: 2000,
      compress: false,
      userAgent: "ai-sync-test/1",
    });
    const out = outgoingBatch("claude_code", [], "b_123");
    const signal = new AbortController().signal;
    const counts = {
      inserted_conversations: 1,
      inserted_messages: 2,
      updated_conversations: 0,
      updated_messages: 0,
    };
    try {
      await t.step("bare counts", async () => {
        answer = () => Response.json({ success: true, ...counts });
        const r = await sink.send(out, signal);
        assertEquals(r.kind, "ok");
        assertEquals(seen?.headers.get("authorization"), "Bearer secret-token");
        assertEquals(seen?.headers.get("idempotency-key"), "b_123");
        assertEquals(seen?.headers.get("user-agent"), "ai-sync-test/1");
        assertEquals(new URL(seen!.url).pathname, "/internal/v1/sync/batch");
      });
      await t.step("wrapped counts", async () => {
        answer = () => Response.json({ code: 0, message: "ok", data: counts });
        const r = await sink.send(out, signal);
        assertEquals(r.kind === "ok" && r.result.inserted_messages, 2);
      });
      await t.step("a wrapped non-zero code is an error", async () => {
        answer = () => Response.json({ code: 500, message: "db down" });
        assertEquals((await sink.send(out, signal)).kind, "retry");
        answer = () => Response.json({ code: 40001, message: "bad conversation" });
        assertEquals((await sink.send(out, signal)).kind, "rejected");
      });
      await t.step("an unreadable 200 is retried, not taken as success", async () => {
        answer = () => new Response("<html>proxy</html>");
        assertEquals((await sink.send(out, signal)).kind, "retry");
      });
      await t.step("gzip bodies over 1 KiB", async () => {
        sink.options = { ...sink.options, compress: true };
        const big = outgoingBatch("claude_code", [], "k");
        const body = big.body + " ".repeat(2000);
        answer = () => Response.json(counts);
        await sink.send({ ...big, body, blob: new Blob([body]) }, signal);
        assertEquals(seen?.headers.get("content-encoding"), "gzip");
        assertEquals(seenBody, body);
        sink.options = { ...sink.options, compress: false };
      });
      await t.step("a connection refused is retried", async () => {
        const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const port = (listener.addr as Deno.NetAddr).port;
        listener.close();
        const down = new HttpSink({ ...sink.options, baseUrl: `http://127.0.0.1:${port}` });
        const r = await down.send(out, signal);
        assertEquals(r.kind, "retry");
        assert(r.kind === "retry" && r.reason.startsWith(`cannot reach http://127.0.0.1:${port}`));
        assertStringIncludes(r.reason, "connection refused");
      });
    } finally {
      await server.shutdown();
    }
  },
});
