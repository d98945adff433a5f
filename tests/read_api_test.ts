/**
 * The read API: one conversation, filters, full-text search (ranked, with highlighted and
 * escaped snippets, built behind the writes), usage by day, source and model, bad parameters
 * named in a 400; and `deno task serve` without `--db`: the embedded store, read-only.
 */
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { ConversationStore } from "../store/store.ts";
import { SearchIndex } from "../store/search.ts";
import { createHandler } from "../server/server.ts";
import type { Conversation, SourceType } from "../common/types.ts";
import { REPO } from "./helpers.ts";

function conversation(
  uuid: string,
  title: string,
  texts: string[],
  meta: Record<string, unknown>,
  day: string,
  model = "",
): Conversation {
  const at = `${day}T10:00:00.000Z`;
  return {
    uuid,
    title,
    created_at: at,
    updated_at: at,
    metadata: meta,
    messages: texts.map((text, i) => ({
      uuid: `${uuid}-m${i}`,
      parent_uuid: i ? `${uuid}-m${i - 1}` : "",
      round_index: 1,
      role: i % 2 ? "assistant" : "user",
      content_type: "text",
      content: { type: "text", text },
      content_text: text,
      created_at: at,
      ...(model && i % 2 ? { model, usage: { input: 10, output: 5, total: 15 } } : {}),
    })),
  };
}

async function fixture() {
  const dir = await Deno.makeTempDir();
  const store = new ConversationStore(`${dir}/c.db`);
  const put = (source: SourceType, c: Conversation) =>
    store.applyBatch({ source_type: source, conversations: [c] });
  put(
    "claude_code",
    conversation(
      "c1",
      "Fix the cart totals",
      ["the cart rounds tax wrong", "fixed the <b>rounding</b>"],
      { project_name: "shop", host: "laptop", cwd: "/home/dev/shop" },
      "2026-11-01",
      "claude-sonnet-4",
    ),
  );
  put(
    "codex",
    conversation(
      "c2",
      "Deploy notes",
      ["how do I deploy", "run the script; tax is not involved"],
      { project_name: "infra", host: "server" },
      "2026-11-10",
      "gpt-5",
    ),
  );
  put(
    "gpt",
    conversation(
      "c3",
      "Tax questions",
      ["what is VAT", "a tax on value added"],
      { host: "laptop" },
      "2026-11-20",
      "gpt-5",
    ),
  );
  const search = new SearchIndex(`${dir}/c.db`);
  const handler = createHandler({ store, token: "t", maxBodyBytes: 1 << 20, search });
  const get = async (path: string, token = "t") => {
    const response = await handler(
      new Request(`http://x${path}`, { headers: { authorization: `Bearer ${token}` } }),
    );
    return { status: response.status, body: await response.json() };
  };
  return { dir, store, search, get, put };
}

Deno.test("read API: one conversation, filters and usage", async (t) => {
  const f = await fixture();
  try {
    await t.step("a token is needed", async () => {
      assertEquals((await f.get("/api/v1/conversations", "wrong")).status, 401);
    });
    await t.step("one conversation by uuid, 404 for an unknown one", async () => {
      const one = await f.get("/api/v1/conversations/c2");
      assertEquals([one.status, one.body.title, one.body.message_count], [200, "Deploy notes", 2]);
      assertEquals((await f.get("/api/v1/conversations/nope")).status, 404);
    });
    await t.step("filters: source, project, host, model, dates", async () => {
      const uuids = async (query: string) =>
        (await f.get(`/api/v1/conversations?${query}`)).body.items.map((c: { uuid: string }) =>
          c.uuid
        );
      assertEquals(await uuids(""), ["c3", "c2", "c1"]);
      assertEquals(await uuids("source=codex"), ["c2"]);
      assertEquals(await uuids("project=shop"), ["c1"]);
      assertEquals(await uuids("project=/home/dev/shop"), ["c1"]);
      assertEquals(await uuids("host=laptop"), ["c3", "c1"]);
      assertEquals(await uuids("model=gpt-5"), ["c3", "c2"]);
      assertEquals(await uuids("from=2026-11-05&to=2026-11-10"), ["c2"]);
      assertEquals(await uuids("source_type=gpt"), ["c3"]);
    });
    await t.step("bad parameters: a 400 that names them", async () => {
      for (
        const [query, name] of [
          ["source=chatgpt", "source:"],
          ["from=yesterday", "from:"],
          ["page=0", "page:"],
          ["page_size=5000", "page_size:"],
          ["colour=red", "colour: unknown parameter"],
          [`q=${"x".repeat(501)}`, "q:"],
        ]
      ) {
        const out = await f.get(`/api/v1/conversations?${query}`);
        assertEquals(out.status, 400, query);
        assertStringIncludes(out.body.message, name);
      }
    });
    await t.step("usage: tokens by day, source and model", async () => {
      const { body } = await f.get("/api/v1/stats/usage?host=laptop");
      assertEquals(
        body.rows.map((r: Record<string, unknown>) => [r.day, r.source_type, r.model, r.tokens]),
        [["2026-11-20", "gpt", "", 0], ["2026-11-20", "gpt", "gpt-5", 15], [
          "2026-11-01",
          "claude_code",
          "",
          0,
        ], ["2026-11-01", "claude_code", "claude-sonnet-4", 15]],
      );
    });
  } finally {
    f.search.close();
    f.store.close();
  }
});

Deno.test("read API: search is ranked, highlighted, escaped, filtered, and sees new writes", async (t) => {
  const f = await fixture();
  try {
    await t.step("a title match ranks first; snippets mark the words", async () => {
      const { body } = await f.get("/api/v1/conversations?q=tax");
      assertEquals(body.items.map((c: { uuid: string }) => c.uuid)[0], "c3");
      assertEquals(
        new Set(body.items.map((c: { uuid: string }) => c.uuid)),
        new Set(["c1", "c2", "c3"]),
      );
      assertStringIncludes(body.items[0].snippet, "<mark>Tax</mark>");
    });
    await t.step("all words required, the last a prefix; content HTML is escaped", async () => {
      const { body } = await f.get("/api/v1/conversations?q=fixed%20round");
      assertEquals(body.items.map((c: { uuid: string }) => c.uuid), ["c1"]);
      // Only the last word is a prefix: "fix" is not "fixed".
      assertEquals((await f.get("/api/v1/conversations?q=fix%20round")).body.total, 0);
      const { body: html } = await f.get("/api/v1/conversations?q=rounding");
      assert(!html.items[0].snippet.includes("<b>"), html.items[0].snippet);
      assertStringIncludes(html.items[0].snippet, "&#60;b&#62;<mark>rounding</mark>");
    });
    await t.step("with filters and paging", async () => {
      const { body } = await f.get("/api/v1/conversations?q=tax&source=codex");
      assertEquals(body.items.map((c: { uuid: string }) => c.uuid), ["c2"]);
      const paged = await f.get("/api/v1/conversations?q=tax&page=2&page_size=2");
      assertEquals([paged.body.items.length, paged.body.total], [1, 3]);
    });
    await t.step("what was written after the last search is found", async () => {
      f.put("gemini", conversation("c4", "Later", ["an invoice about tax"], {}, "2026-11-25"));
      const { body } = await f.get("/api/v1/conversations?q=invoice");
      assertEquals(body.items.map((c: { uuid: string }) => c.uuid), ["c4"]);
    });
  } finally {
    f.search.close();
    f.store.close();
  }
});

Deno.test({
  name: "serve without --db: the embedded store, read-only, on 127.0.0.1",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const f = await fixture();
    f.search.close();
    f.store.close();
    const state = await Deno.makeTempDir();
    await Deno.mkdir(`${state}/ai-sync`);
    await Deno.copyFile(`${f.dir}/c.db`, `${state}/ai-sync/conversations.db`);
    const env = { XDG_STATE_HOME: state, HOME: state };
    const refused = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${REPO}/server/main.ts`, "--hostname", "0.0.0.0"],
      env,
      stderr: "piped",
    }).output();
    assertEquals(refused.code, 2);
    assertStringIncludes(new TextDecoder().decode(refused.stderr), "needs --token");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${REPO}/server/main.ts`, "--port", "0"],
      env,
      stdout: "piped",
      stderr: "null",
    }).spawn();
    try {
      const reader = child.stdout.getReader();
      let line = "";
      while (!line.includes("listening")) {
        line += new TextDecoder().decode((await reader.read()).value);
      }
      reader.releaseLock();
      child.stdout.cancel().catch(() => {});
      assertStringIncludes(line, "read-only");
      const url = line.match(/http:\/\/[^ ]+/)![0];
      const list = await fetch(`${url}/api/v1/conversations?q=tax`);
      assertEquals((await list.json()).total, 3);
      const post = await fetch(`${url}/internal/v1/sync/batch`, { method: "POST", body: "{}" });
      assertEquals(post.status, 403);
      await post.body?.cancel();
      // A page that made its own name resolve to 127.0.0.1 (DNS rebinding) sends that name.
      const port = Number(new URL(url).port);
      for (const host of ["localhost", "127.0.0.1", "[::1]", "LOCALHOST"]) {
        assertStringIncludes(await rawGet(port, host, "/api/v1/conversations"), "HTTP/1.1 200");
      }
      for (const host of ["rebind.example", "127.0.0.1.nip.io", "localhost.evil.example"]) {
        for (const path of ["/api/v1/conversations", "/"]) {
          const answer = await rawGet(port, host, path);
          assertStringIncludes(answer, "HTTP/1.1 403");
          assertStringIncludes(answer, "addressed to 127.0.0.1, localhost or [::1]");
          assert(!answer.includes("tax"), `nothing of the store reaches ${host}`);
        }
      }
    } finally {
      child.kill("SIGTERM");
      await child.status;
    }
  },
});

/** One GET to 127.0.0.1:`port` with `Host: host:port`, as a browser sends it; the whole answer. */
async function rawGet(port: number, host: string, path: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new TextEncoder().encode(
        `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: close\r\n\r\n`,
      ),
    );
    return await new Response(conn.readable).text();
  } catch (error) {
    conn.close();
    throw error;
  }
}
