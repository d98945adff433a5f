/**
 * The viewer: pages under a strict Content-Security-Policy, content only ever as escaped text
 * (a script, an event handler, a javascript: link in a message stay text), Markdown and code,
 * tool calls and thinking folded, branches marked, hidden messages behind a toggle, the export
 * links; and, where Chromium is installed, the page in a real browser: no script from content
 * runs, times in the viewer's zone, instant search.
 */
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { ConversationStore } from "../store/store.ts";
import { SearchIndex } from "../store/search.ts";
import { createHandler } from "../server/server.ts";
import type { Message } from "../common/types.ts";
import { REPO } from "./helpers.ts";

const HOSTILE = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">';
const AT = "2026-11-20T10:00:00.000Z";

function msg(
  uuid: string,
  parent: string,
  role: Message["role"],
  content: Record<string, unknown>,
  meta?: Record<string, unknown>,
): Message {
  const text = String(content.text ?? content.thinking ?? content.name ?? "");
  return {
    uuid,
    parent_uuid: parent,
    round_index: 1,
    role,
    content_type: content.type === "tool_use" ? "tool_use" : "text",
    content,
    content_text: text,
    created_at: AT,
    ...(meta ? { metadata: meta } : {}),
  };
}

export async function viewerStore(): Promise<{ dir: string; store: ConversationStore }> {
  const dir = await Deno.makeTempDir();
  const store = new ConversationStore(`${dir}/c.db`);
  store.applyBatch({
    source_type: "claude_code",
    conversations: [{
      uuid: "v1",
      title: `Cart ${HOSTILE}`,
      created_at: AT,
      updated_at: AT,
      metadata: { project_name: "shop", usage: { total: 1234 } },
      messages: [
        msg("s", "", "system", { type: "text", text: "You are helpful" }, { hidden: true }),
        msg("u1", "s", "user", {
          type: "text",
          text: `fix **this** ${HOSTILE} [x](javascript:alert(1)) [docs](https://example.com)`,
        }),
        msg("a1", "u1", "assistant", {
          type: "multipart",
          parts: [
            { type: "thinking", thinking: "the rounding" },
            { type: "text", text: '```ts\nconst total = "<b>"; // sum\n```' },
            { type: "tool_use", name: "Edit", input: { file: HOSTILE } },
          ],
        }),
        msg("a2", "u1", "assistant", { type: "text", text: "another answer" }),
        msg("t1", "a2", "user", { type: "text", text: "look at cart.ts" }, {
          is_sidechain: true,
          agent_id: "a7c3",
          agent_type: "Explore",
        }),
        msg("t2", "t1", "assistant", { type: "text", text: "found it" }, {
          is_sidechain: true,
          agent_id: "a7c3",
          agent_type: "Explore",
        }),
      ],
    }],
  });
  return { dir, store };
}

Deno.test("viewer: strict CSP, escaped content, Markdown, folds, branches, hidden, export links", async (t) => {
  const { dir, store } = await viewerStore();
  const handler = createHandler({ store, token: "", maxBodyBytes: 1 << 20, readOnly: true });
  const get = async (path: string) => {
    const response = await handler(new Request(`http://x${path}`));
    return { response, text: await response.text() };
  };
  try {
    await t.step("the list: a strict policy and escaped titles", async () => {
      const { response, text } = await get("/");
      assertEquals(response.status, 200);
      assertStringIncludes(response.headers.get("content-security-policy")!, "script-src 'self'");
      assert(
        !response.headers.get("content-security-policy")!.includes("unsafe"),
        "nothing unsafe",
      );
      assertStringIncludes(text, "Cart &lt;script&gt;");
      assertStringIncludes(text, "1,234 tokens");
      assert(!text.includes("<script>window"), "no script from content");
    });
    await t.step(
      "a conversation: content as text, Markdown and code, folds, branches",
      async () => {
        const { text } = await get("/c/v1");
        assert(
          !text.includes("<script>window") && !text.includes("<img src=x"),
          "no markup from content",
        );
        assertStringIncludes(text, "&lt;img src=x onerror=&quot;window.__xss = 2&quot;&gt;");
        assertStringIncludes(text, "<strong>this</strong>");
        assert(!text.includes('href="javascript:'), "no javascript: link");
        assertStringIncludes(
          text,
          '<a href="https://example.com" rel="noopener noreferrer nofollow"',
        );
        assertStringIncludes(text, '<pre data-lang="ts"><code><span class="k">const</span>');
        assertStringIncludes(text, '<details class="thinking"><summary>Thinking</summary>');
        assertStringIncludes(text, '<details class="tool_use"><summary>Tool call: Edit</summary>');
        assert(!text.includes("<details open"), "folded by default");
        assertStringIncludes(text, "branch 1 of 2");
        // A sub-agent's thread: where it forks, then set in.
        assertStringIncludes(text, "sub-agent starts: Explore");
        assertEquals(text.split("sub-agent starts").length, 2);
        assertStringIncludes(text, 'class="msg assistant sidechain"');
        assertStringIncludes(text, 'class="msg system hidden"');
        assertStringIncludes(text, 'id="show-hidden"');
      },
    );
    await t.step("export links: Markdown and JSON Lines of this conversation", async () => {
      const md = await get("/c/v1.md");
      assertStringIncludes(md.response.headers.get("content-disposition")!, "v1.md");
      assertStringIncludes(md.text, "source: claude_code");
      const jsonl = await get("/c/v1.jsonl");
      assertEquals(JSON.parse(jsonl.text).messages.length, 6);
    });
    await t.step("with a token, pages are not open", async () => {
      const closed = createHandler({ store, token: "t", maxBodyBytes: 1 << 20 });
      assertEquals((await closed(new Request("http://x/"))).status, 401);
    });
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Where the test leaves its screenshots: the README's (`docs/screenshots`) only when asked with
 * `AI_SYNC_SCREENSHOTS=1`, so that a test run leaves the checkout as it was.
 */
function screenshotsDir(temporary: string): string {
  return Deno.env.get("AI_SYNC_SCREENSHOTS") === "1" ? `${REPO}/docs/screenshots` : temporary;
}

const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});

if (!CHROMIUM) console.log("skipping the browser test: no chromium (apt-get install -y chromium)");

Deno.test({
  name: "viewer in Chromium: no script from content runs, local times, instant search",
  ignore: !CHROMIUM,
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const puppeteer = (await import("puppeteer-core")).default;
    const { dir, store } = await viewerStore();
    const shots = screenshotsDir(dir);
    const search = new SearchIndex(`${dir}/c.db`);
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      createHandler({ store, token: "", maxBodyBytes: 1 << 20, readOnly: true, search }),
    );
    const base = `http://127.0.0.1:${server.addr.port}`;
    const browser = await puppeteer.launch({
      executablePath: CHROMIUM,
      // A name of the attacker's that resolves to this machine, as DNS rebinding makes it.
      args: [
        "--no-sandbox",
        "--headless=new",
        "--disable-gpu",
        "--host-resolver-rules=MAP rebind.example 127.0.0.1",
      ],
      // Chromium's own files (crash reports) go into the test's folder, not the user's home.
      env: { ...Deno.env.toObject(), HOME: dir, XDG_CONFIG_HOME: dir, XDG_CACHE_HOME: dir },
    });
    try {
      const page = await browser.newPage();
      await page.emulateTimezone("Asia/Tokyo");
      const violations: string[] = [];
      page.on("console", (m: { text(): string }) => violations.push(m.text()));
      await page.setViewport({ width: 390, height: 800 });
      await page.goto(`${base}/c/v1`, { waitUntil: "networkidle0" });
      assertEquals(await page.evaluate("window.__xss"), undefined);
      // The message with <script> and <img onerror> shows them as text.
      assertStringIncludes(
        String(await page.evaluate(`document.querySelector("main").innerText`)),
        "<script>window.__xss = 1</script>",
      );
      assertEquals(await page.evaluate(`document.querySelector("details.tool_use").open`), false);
      await page.screenshot({ path: `${shots}/conversation.png` });
      const shown = await page.evaluate(`document.querySelector("time").textContent`);
      assert(/19:00|7:00:00\s?PM/.test(String(shown)), `10:00 UTC is 19:00 in Tokyo: ${shown}`);
      assertEquals(
        await page.evaluate(`getComputedStyle(document.querySelector(".msg.hidden")).display`),
        "none",
      );
      await page.click("#show-hidden");
      assertEquals(
        await page.evaluate(`getComputedStyle(document.querySelector(".msg.hidden")).display`),
        "block",
      );
      await page.goto(`${base}/`, { waitUntil: "networkidle0" });
      assertEquals(await page.evaluate(`document.querySelectorAll("#list li").length`), 1);
      await page.screenshot({ path: `${shots}/list.png` });
      await page.type("#q", "another");
      await page.waitForFunction(`document.body.dataset.results === "1"`, { timeout: 10_000 });
      const mark = await page.evaluate(`document.querySelector("#list mark")?.textContent`);
      assertEquals(mark, "another");
      assertEquals(await page.evaluate("window.__xss"), undefined);
      assert(
        !violations.some((v) => /Content Security Policy|Refused/.test(v)),
        violations.join("\n"),
      );
      // Reached under the attacker's name, the viewer shows nothing of the store.
      const rebound = await page.goto(
        `http://rebind.example:${server.addr.port}/api/v1/conversations`,
      );
      assertEquals(rebound?.status(), 403);
      const refused = String(await page.evaluate(`document.body.innerText`));
      assertStringIncludes(refused, "addressed to 127.0.0.1, localhost or [::1]");
      assert(!refused.includes("another"), refused);
    } finally {
      await browser.close();
      await server.shutdown();
      search.close();
      store.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
