/**
 * Input built to break the reader: a line nested far too deep, a file rewritten in place with
 * the same size, a compressed file that expands to gigabytes, text built to be slow to read. One
 * bad line or file costs only itself; nothing written is lost; memory and time stay bounded.
 */
import { zstdCompressSync } from "node:zlib";
import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { derivedUuid } from "../common/hash.ts";
import { assertAllDelivered, setup, withFaults } from "./rig.ts";
import {
  dropSettled,
  peakRss,
  scratch,
  serverUuids,
  startServer,
  TEST_TIME,
  workerArgs,
} from "./helpers.ts";
import { htmlToText, stripTags } from "../parsers/html.ts";
import { CLAUDE_SHAPE, parseClaude } from "../parsers/claude.ts";
import { wholePart } from "../parsers/document.ts";
import type { DocumentPart, ParseInput, ParseOutput } from "../common/source.ts";
import { activityFromHtml } from "../parsers/gemini_html.ts";
import { parseGeminiCli } from "../parsers/gemini_cli.ts";
import { parseClaudeCode } from "../parsers/claude_code.ts";
import { CHATGPT_SHAPE, parseChatGpt } from "../parsers/chatgpt.ts";
import { parseCodex } from "../parsers/codex.ts";
import { highlight, markdownToHtml } from "../server/markdown.ts";
import { readExportEmail } from "../common/mail/export_email.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A Claude Code user line whose content is `blocks` (raw JSON). */
function userLine(session: string, n: number, blocks: string): string {
  return `{"type":"user","uuid":"${derivedUuid("hostile", session, n)}","parentUuid":null,` +
    `"sessionId":"${session}","timestamp":"2025-01-01T00:00:0${n}Z",` +
    `"message":{"role":"user","content":${blocks}}}`;
}

/** Tool results nested inside each other `depth` times: the parser walks them recursively. */
function nestedToolResults(depth: number): string {
  return "[" + '{"type":"tool_result","tool_use_id":"t","content":['.repeat(depth) +
    '{"type":"text","text":"bottom"}' + "]}".repeat(depth) + "]";
}

/** Runs a worker process to its end, with its peak resident size. */
async function runMeasured(args: string[], worker: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: workerArgs(args, worker),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const peak = peakRss(child);
  const [out, rss] = await Promise.all([child.output(), peak]);
  const decoder = new TextDecoder();
  return { code: out.code, stderr: decoder.decode(out.stderr), rss };
}

Deno.test({
  name: "hostile input: a line nested too deep costs only itself",
  ...opts,
  fn: async () => {
    const server = await startServer();
    try {
      const s = await scratch(server);
      const session = "0e000000-0000-4000-8000-000000000001";
      const other = "0e000000-0000-4000-8000-000000000002";
      await Deno.mkdir(`${s.data}/-p`);
      const path = `${s.data}/-p/${session}.jsonl`;
      await Deno.writeTextFile(
        path,
        [
          userLine(session, 1, '"before"'),
          userLine(session, 2, nestedToolResults(50_000)),
          userLine(
            session,
            3,
            `[{"type":"text","text":"x","deep":${"[".repeat(20_000)}${"]".repeat(20_000)}}]`,
          ),
          userLine(session, 4, '"after"'),
        ].join("\n") + "\n",
      );
      await Deno.writeTextFile(
        `${s.data}/-p/${other}.jsonl`,
        userLine(other, 1, '"other file"') + "\n",
      );
      const out = await runMeasured([...s.base, "--once"], "claude_code");
      assertStringIncludes(
        out.stderr,
        `${path}:2: cannot process this line (Maximum call stack size exceeded); skipped`,
      );
      const stored = new Set(serverUuids(server));
      for (const [id, n] of [[session, 1], [session, 3], [session, 4], [other, 1]] as const) {
        assert(stored.has(derivedUuid("hostile", id, n)), `line ${n} of ${id} was delivered`);
      }
      assert(!stored.has(derivedUuid("hostile", session, 2)), "the culprit was skipped");
      // Line 3 nests 20,000 deep, more than SQLite's JSON functions read: its text still reads.
      const db = new DatabaseSync(server.db, { readOnly: true });
      const texts = db.prepare("SELECT text FROM message_text").all().map((r) => r.text);
      db.close();
      assertEquals(texts.toSorted(), ["after", "before", "other file", "x"]);
    } finally {
      await server.stop();
    }
  },
});

Deno.test("hostile input: a file rewritten in place with the same size is read", () =>
  withFaults(async (fs) => {
    const s = await setup(fs, {}, 2, 1);
    await s.worker.check();
    await assertAllDelivered(s, fs);
    const [path] = s.files;
    const before = await Deno.readTextFile(path);
    // `cat other > session.jsonl`: same inode, same byte count, other messages.
    const rewritten = before.replace(
      /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g,
      (id) => derivedUuid("rewritten", id),
    );
    assertEquals(rewritten.length, before.length);
    const inode = (await Deno.stat(path)).ino;
    await new Promise((r) => setTimeout(r, 20));
    await Deno.writeTextFile(path, rewritten);
    assertEquals((await Deno.stat(path)).ino, inode);
    const requests = fs.requests.length;
    await s.worker.check();
    assert(fs.requests.length > requests, "the new content was sent");
    const stored = new Set(
      fs.store.listConversations("", 1, 1000).items.flatMap((c) =>
        fs.store.listMessages(c.uuid, 1, 1000)!.items.map((m) => m.uuid)
      ),
    );
    for (const match of rewritten.matchAll(/"uuid":"([^"]+)"/g)) {
      assert(stored.has(match[1]), `message ${match[1]} of the new content was delivered`);
    }
    // A touch alone changes nothing and sends nothing.
    const sent = fs.requests.length;
    const now = new Date();
    await Deno.utime(path, now, now);
    await s.worker.check();
    assertEquals(fs.requests.length, sent);
    s.state.close();
  }));

Deno.test({
  name: "hostile input: a compressed file that expands to gigabytes is cut at the limit",
  ...opts,
  fn: async () => {
    const server = await startServer();
    try {
      const s = await scratch(server, { flag: "sessions-dir" });
      const thread = "019a0b0b-0000-7000-8000-000000000001";
      // Two real lines, then 2 GB of one endless line: a few hundred KB compressed.
      const head = sessionRollout(thread);
      const bomb = new Uint8Array(2 * 1024 * 1024 * 1024);
      bomb.set(head);
      const compressed = zstdCompressSync(bomb);
      assert(compressed.length < 1_000_000, `the bomb is ${compressed.length} bytes`);
      const path = `${s.data}/rollout-2026-11-20T10-00-00-${thread}.jsonl.zst`;
      await Deno.writeFile(path, compressed);
      const out = await runMeasured([...s.base, "--once"], "codex");
      assertStringIncludes(
        out.stderr,
        `${path}: decompresses to more than 1073741824 bytes (worker.max_decompressed_bytes)`,
      );
      assert(out.rss < 400e6, `peak RSS ${(out.rss / 1e6).toFixed(0)} MB`);
      const db = new DatabaseSync(server.db, { readOnly: true });
      const texts = (db.prepare("SELECT text FROM message_text").all() as {
        text: string;
      }[]).map((r) => r.text);
      db.close();
      assert(texts.includes("before the bomb"), "the lines before the limit were delivered");
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "hostile input: a long value copied onto every message costs only itself",
  ...opts,
  fn: async () => {
    const server = await startServer();
    try {
      const s = await scratch(server, { flag: "sessions-dir" });
      const thread = "019a0b0b-0000-7000-8000-000000000002";
      // A model name of a MB, given to each of the 300 messages after it: 300 MB once
      // serialised, from a file of one MB. It ran the worker out of memory, at every start.
      const line = (type: string, payload: unknown) =>
        JSON.stringify({ timestamp: "2026-11-20T10:00:00.000Z", type, payload });
      const lines = [
        line("session_meta", { id: thread }),
        line("turn_context", { model: "m".repeat(1_000_000) }),
        ...Array.from({ length: 300 }, (_, i) =>
          line("response_item", {
            type: "message",
            role: "assistant",
            content: [{ type: "output_text", text: `answer ${i}` }],
          })),
      ];
      const path = `${s.data}/rollout-2026-11-20T10-00-00-${thread}.jsonl`;
      await Deno.writeTextFile(path, lines.join("\n") + "\n");
      const out = await runMeasured([...s.base, "--once"], "codex");
      assertEquals(out.code, 0, out.stderr);
      assertStringIncludes(
        out.stderr,
        `${path}:2: turn_context model of 1000000 characters is not a model name`,
      );
      assertEquals(serverUuids(server).length, 300);
      assert(out.rss < 300e6, `peak RSS ${(out.rss / 1e6).toFixed(0)} MB`);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "hostile input: a time the schema cannot hold costs only its line",
  ...opts,
  fn: async (t) => {
    // Each of these reached the schema, which refused the whole conversation: a session of any
    // length went to the dead letters for one line. A ChatGPT time past the year 275,760 made
    // the parser throw, and with it every conversation of its part of the export.
    const server = await startServer();
    const delivered = () => serverUuids(server).length;
    try {
      await t.step("a Codex line of month 13", async () => {
        const s = await scratch(server, { flag: "sessions-dir" });
        const thread = "019a0b0b-0000-7000-8000-000000000003";
        const prompt = (timestamp: string, text: string) =>
          JSON.stringify({
            timestamp,
            type: "response_item",
            payload: { type: "message", role: "user", content: [{ type: "input_text", text }] },
          });
        const lines = [
          JSON.stringify({ timestamp: TEST_TIME, type: "session_meta", payload: { id: thread } }),
          prompt(TEST_TIME, "one"),
          prompt("2025-13-45T99:99:99Z", "two"),
          prompt(TEST_TIME, "three"),
        ];
        await Deno.writeTextFile(
          `${s.data}/rollout-2026-11-20T10-00-00-${thread}.jsonl`,
          lines.join("\n") + "\n",
        );
        const out = await runMeasured([...s.base, "--once"], "codex");
        assertEquals(out.code, 0, out.stderr);
        assertEquals(delivered(), 3, out.stderr);
      });
      await t.step("a Claude Code line of the year 11476", async () => {
        const s = await scratch(server);
        const session = "0e000000-0000-4000-8000-000000000011";
        const lines = [1, 2, 3].map((n) => userLine(session, n, `"line ${n}"`));
        lines[1] = lines[1].replace("2025-01-01T00:00:02Z", "+011476-01-01T00:00:00Z");
        const path = `${s.data}/-p/${session}.jsonl`;
        await Deno.mkdir(`${s.data}/-p`);
        await Deno.writeTextFile(path, lines.join("\n") + "\n");
        const out = await runMeasured([...s.base, "--once"], "claude_code");
        assertEquals(out.code, 0, out.stderr);
        assertStringIncludes(
          out.stderr,
          `${path}:2: timestamp \\"+011476-01-01T00:00:00Z\\" is not`,
        );
        assertEquals(delivered(), 6, out.stderr);
      });
      await t.step("a ChatGPT conversation of the year 3 billion", async () => {
        const s = await scratch(server, { flag: "data-dir" });
        const conversation = (id: string, time: number) => ({
          id,
          title: id,
          create_time: time,
          update_time: time,
          current_node: `${id}-n`,
          mapping: {
            [`${id}-n`]: {
              id: `${id}-n`,
              parent: null,
              children: [],
              message: {
                id: `${id}-n`,
                author: { role: "user" },
                create_time: time,
                content: { content_type: "text", parts: [`hello from ${id}`] },
              },
            },
          },
        });
        const path = `${s.data}/conversations.json`;
        await dropSettled(
          path,
          JSON.stringify([
            conversation("a", 1.7e9),
            conversation("b", 1e20),
            conversation("c", 1.7e9),
          ]),
        );
        const out = await runMeasured([...s.base, "--once"], "openai");
        assertEquals(out.code, 0, out.stderr);
        assertEquals(delivered(), 9, out.stderr);
      });
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "hostile input: ids the schema refuses are delivered under ids derived from them",
  ...opts,
  fn: async (t) => {
    // A message id with a NUL, and one of a megabyte: the schema refuses both, and the whole
    // session was refused with them, into the dead letters. Each is now delivered under a UUID
    // derived from it, which the message after it, naming it as parent, derives alike.
    const session = "0e000000-0000-4000-8000-000000000021";
    const nul = "bad\u0000id";
    const long = "x".repeat(2_000);
    const lines = [1, 2, 3, 4].map((n) => userLine(session, n, `"line ${n}"`));
    const withIds = (line: string, uuid: string, parent: string) =>
      line.replace(/"uuid":"[^"]+","parentUuid":null/, `"uuid":"${uuid}","parentUuid":"${parent}"`);
    lines[1] = withIds(lines[1], "bad\\u0000id", JSON.parse(lines[0]).uuid);
    lines[2] = withIds(lines[2], long, "bad\\u0000id");
    lines[3] = withIds(lines[3], "after", long);
    const run = async (server: Awaited<ReturnType<typeof startServer>> | null) => {
      const s = await scratch(server);
      await Deno.mkdir(`${s.data}/-p`);
      await Deno.writeTextFile(`${s.data}/-p/${session}.jsonl`, lines.join("\n") + "\n");
      const out = await runMeasured([...s.base, "--once"], "claude_code");
      assertEquals(out.code, 0, out.stderr);
      return s;
    };
    const assertLinked = (db: string) => {
      const store = new DatabaseSync(db, { readOnly: true });
      const rows = store.prepare("SELECT uuid, parent_uuid FROM messages").all() as {
        uuid: string;
        parent_uuid: string;
      }[];
      store.close();
      const parentOf = new Map(rows.map((r) => [r.uuid, r.parent_uuid]));
      assertEquals(rows.length, 4);
      assert(!parentOf.has(nul) && !parentOf.has(long), "the refused ids are not stored");
      const derived = parentOf.get("after")!;
      assert(parentOf.has(derived), "the message after names the derived id as its parent");
      assert(parentOf.has(parentOf.get(derived)!), "and so does the one after the NUL");
    };
    await t.step("into the reference server", async () => {
      const server = await startServer();
      try {
        await run(server);
        assertLinked(server.db);
      } finally {
        await server.stop();
      }
    });
    await t.step("into the embedded store", async () => {
      const s = await run(null);
      assertLinked(`${s.state}/conversations.db`);
    });
  },
});

Deno.test({
  name: "hostile input: a title of 10 MB costs only itself",
  ...opts,
  fn: async () => {
    // The title goes with every part of the conversation sent and with every checkpoint of
    // its file: this 45 MB session had the worker write 730 MB, with a peak of 469 MB.
    const session = "0e000000-0000-4000-8000-000000000031";
    const s = await scratch(null);
    await Deno.mkdir(`${s.data}/-p`);
    const lines = [
      JSON.stringify({
        type: "custom-title",
        customTitle: "T".repeat(10_000_000),
        sessionId: session,
      }),
      ...Array.from({ length: 20_000 }, (_, i) =>
        JSON.stringify({
          type: "user",
          uuid: derivedUuid("hostile", session, i),
          sessionId: session,
          timestamp: TEST_TIME,
          message: { role: "user", content: `prompt ${i} ${"w".repeat(2000)}` },
        })),
    ];
    await Deno.writeTextFile(`${s.data}/-p/${session}.jsonl`, lines.join("\n") + "\n");
    const out = await runMeasured([...s.base, "--once"], "claude_code");
    assertEquals(out.code, 0, out.stderr);
    assert(out.rss < 350e6, `peak RSS ${(out.rss / 1e6).toFixed(0)} MB`);
    const db = new DatabaseSync(`${s.state}/conversations.db`, { readOnly: true });
    const row = db.prepare("SELECT length(title) AS n FROM conversations").get() as { n: number };
    db.close();
    assertEquals(row.n, 1000);
  },
});

/** A rollout's first two lines (meta and one prompt), as bytes. */
function sessionRollout(thread: string): Uint8Array {
  const lines = [
    { timestamp: "2026-11-20T10:00:00.000Z", type: "session_meta", payload: { id: thread } },
    {
      timestamp: "2026-11-20T10:00:01.000Z",
      type: "response_item",
      payload: {
        type: "message",
        role: "user",
        content: [{ type: "input_text", text: "before the bomb" }],
      },
    },
  ];
  return new TextEncoder().encode(lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
}

/**
 * Runs `read` over text built to make a pattern backtrack, and checks it took well under what a
 * pattern that scans again from each position would take: linear work on half a megabyte takes
 * milliseconds, the quadratic kind minutes (each case below took seconds at a tenth of the size
 * before it was fixed). The bound is far from both, so a loaded machine does not fail it.
 */
function linear<T>(what: string, read: () => T): T {
  const started = performance.now();
  const result = read();
  assertQuick(what, started);
  return result;
}

/** The bound of {@link linear}, for work that began at `started`. */
function assertQuick(what: string, started: number): void {
  const ms = performance.now() - started;
  assert(ms < 2000, `${what}: ${ms.toFixed(0)} ms`);
}

/** A parse of one whole file (with `document`, of its one part), timed by {@link linear}. */
function parsedInLinearTime<Carry, Hint>(
  what: string,
  parse: (input: ParseInput<Carry, Hint>) => ParseOutput<Carry>,
  file: { path: string; hint: Hint },
  bytes: Uint8Array,
  document?: DocumentPart,
): ParseOutput<Carry> {
  return linear(
    what,
    () => parse({ bytes, firstLine: 1, carry: undefined, file: { ...file, host: "h" }, document }),
  );
}

Deno.test("hostile input: text built to be slow to read is read in linear time", async (t) => {
  const size = 500_000;
  const fill = (unit: string) => unit.repeat(Math.ceil(size / unit.length));
  await t.step("HTML to text: unclosed scripts, stray `<`, spaces without a line break", () => {
    assertEquals(linear("unclosed <script>", () => htmlToText(`a${fill("<script>")}`)), "a");
    assertEquals(linear("stray <", () => stripTags(fill("<"))).length, size);
    assertEquals(linear("spaces", () => htmlToText(`${fill(" \t")}x`)), "x");
    const page = '<div class="outer-cell"><div class="content-cell">Prompted&nbsp;hi<br>' +
      `2026/03/11 3:12:00 JST<br>${fill("<b")}</div></div>`;
    assertEquals(linear("a Takeout page", () => activityFromHtml(page, [])).length, 1);
    const divs = page.replace(fill("<b"), `${fill("</div> ")}x`);
    assertEquals(linear("closing divs before text", () => activityFromHtml(divs, [])).length, 1);
  });
  await t.step("a Claude.ai message of tags left open", () => {
    for (const unit of ["<antThinking x", "<antArtifact>", '<antArtifact a="1" b'] as const) {
      const text = fill(unit);
      const conversation = {
        uuid: "c0000000-0000-4000-8000-000000000001",
        name: "x",
        created_at: "2024-10-01T10:00:00Z",
        updated_at: "2024-10-01T10:00:00Z",
        chat_messages: [{
          uuid: "m1",
          sender: "assistant",
          text,
          created_at: "2024-10-01T10:00:00Z",
        }],
      };
      const out = parsedInLinearTime(
        unit,
        parseClaude,
        { path: "conversations.json", hint: {} },
        new Uint8Array(0),
        wholePart([conversation], CLAUDE_SHAPE),
      );
      assertEquals(out.conversations[0].messages[0].content_text, text.trim(), unit);
    }
  });
  await t.step("the viewer's Markdown and code: open strings, comments, brackets", () => {
    for (const unit of ['"\\', "`\\", "'\\", "/*"]) {
      assertStringIncludes(linear(unit, () => highlight(fill(unit))), "span");
    }
    assertStringIncludes(linear("brackets", () => markdownToHtml(fill("[a"))), "[a[a");
    assertStringIncludes(
      linear("a fence", () => markdownToHtml(`\`\`\`js\n${fill('"\\')}\n`)),
      "<pre",
    );
  });
  await t.step("a Claude Code session of 50,000 progress lines and 2,000 summaries", () => {
    // Progress lines are skipped but kept in the parent graph (the newest 1,000): dropping the
    // oldest listed every key, 90 µs a line (4.5 s for these 12 MB). Summaries whose message never
    // comes waited in the carry without bound.
    const session = "11111111-1111-4111-8111-111111111111";
    const id = (i: number) => `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`;
    const lines: unknown[] = [];
    for (let i = 1; i <= 50_000; i++) {
      lines.push({
        type: "progress",
        uuid: id(i),
        parentUuid: i > 1 ? id(i - 1) : null,
        sessionId: session,
        timestamp: TEST_TIME,
        data: { type: "hook_progress" },
      });
    }
    for (let i = 0; i < 2_000; i++) {
      lines.push({ type: "summary", summary: `t${i}`, leafUuid: id(100_000 + i) });
    }
    lines.push(
      JSON.parse(
        userLine(session, 1, '"hello"').replace(
          '"parentUuid":null',
          `"parentUuid":"${id(50_000)}"`,
        ),
      ),
    );
    const bytes = new TextEncoder().encode(lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    const out = parsedInLinearTime("progress lines", parseClaudeCode, {
      path: `${session}.jsonl`,
      hint: { kind: "session", sessionId: session },
    }, bytes);
    // The message's parent is the newest message before the progress lines: none.
    assertEquals(out.conversations[0].messages.map((m) => m.parent_uuid), [""]);
    assertEquals(Object.keys(out.carry.pendingTitles).length, 1_000);
  });
  await t.step("a ChatGPT export of 10,000 images", () => {
    // Each image was looked for by a scan of the export's asset list: 10,000 took 19 s.
    const n = 10_000;
    const file = (i: number) => `file-${String(i).padStart(22, "0")}`;
    const assets: Record<string, string> = {};
    for (let i = 0; i < n; i++) assets[`${file(i)}-image.png`] = `image${i}.png`;
    const mapping: Record<string, unknown> = {
      root: { id: "root", message: null, parent: null, children: ["m0"] },
    };
    for (let i = 0; i < n; i++) {
      const pointer = `file-service://${file(n - 1 - i)}`;
      mapping[`m${i}`] = {
        id: `m${i}`,
        parent: i ? `m${i - 1}` : "root",
        children: i + 1 < n ? [`m${i + 1}`] : [],
        message: {
          id: `m${i}`,
          author: { role: "user" },
          create_time: 1_700_000_000 + i,
          content: {
            content_type: "multimodal_text",
            parts: [{ content_type: "image_asset_pointer", asset_pointer: pointer }],
          },
        },
      };
    }
    const conversation = {
      id: "6925e174-0000-8000-8000-000000000001",
      title: "images",
      current_node: `m${n - 1}`,
      mapping,
    };
    const out = parsedInLinearTime(
      "images",
      parseChatGpt,
      { path: "conversations.json", hint: { assets } },
      new Uint8Array(0),
      wholePart([conversation], CHATGPT_SHAPE),
    );
    const first = out.conversations[0].messages[0].content as { parts?: { file_name?: string }[] };
    assertEquals(first.parts?.[0].file_name, `image${n - 1}.png`);
  });
  await t.step("a Codex rollout of 30,000 other threads' headers", () => {
    // Each header was looked up among all the ones before it, and all were kept in the carry.
    const header = (id: string) => ({
      timestamp: TEST_TIME,
      type: "session_meta",
      payload: { id, timestamp: TEST_TIME, cwd: "/w" },
    });
    const id = (i: number) => `019a0000-0000-7000-8000-${String(i).padStart(12, "0")}`;
    const lines = [header(id(999_999))];
    for (let i = 0; i < 30_000; i++) lines.push(header(id(i)));
    const bytes = new TextEncoder().encode(lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    const out = parsedInLinearTime(
      "headers",
      parseCodex,
      { path: "rollout.jsonl", hint: {} },
      bytes,
    );
    assertEquals(out.carry.otherSessions.length, 100);
  });
  await t.step("a Gemini CLI session of 10,000 rewinds", () => {
    // Each message added, then rewound: the bookkeeping of rewound messages took time to the
    // square of their number (9 s for these 2 MB; 20,000 took 35 s).
    const at = "2026-04-23T12:53:00.000Z";
    const message = (id: string) => ({ id, timestamp: at, type: "user", content: [{ text: id }] });
    const lines: unknown[] = [{ sessionId: "0ab84937-9fe7-4284-986a-33c832af0b6a", startTime: at }];
    for (let i = 0; i < 10_000; i++) lines.push(message(`kept-${i}`));
    for (let i = 0; i < 10_000; i++) lines.push(message(`gone-${i}`), { $rewindTo: `gone-${i}` });
    const bytes = new TextEncoder().encode(lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
    const out = parsedInLinearTime("rewinds", parseGeminiCli, {
      path: "session.jsonl",
      hint: { kind: "jsonl" },
    }, bytes);
    const [conversation] = out.conversations;
    assertEquals(conversation.metadata.message_count, 10_000);
    assertEquals((conversation.metadata.rewound_message_ids as string[]).length, 10_000);
  });
  await t.step("a Gemini CLI logs.json of 3,000 sessions, read twice", () => {
    // Each session's delivered prompts were picked out of all of them (5 s here, 11 s the second
    // time), and each entry copied its session's list.
    const entries = [];
    for (let s = 0; s < 3_000; s++) {
      for (let i = 0; i < 3; i++) {
        entries.push({
          sessionId: `${String(s).padStart(8, "0")}-0000-4000-8000-000000000000`,
          messageId: i,
          timestamp: TEST_TIME,
          type: "user",
          message: `prompt ${i}`,
        });
      }
    }
    const bytes = new TextEncoder().encode(JSON.stringify(entries));
    const logs = { path: "logs.json", hint: { kind: "logs" as const } };
    const first = parsedInLinearTime("logs", parseGeminiCli, logs, bytes);
    assertEquals(first.conversations.length, 3_000);
    const again = linear("logs again", () =>
      parseGeminiCli({
        bytes,
        firstLine: 1,
        carry: structuredClone(first.carry),
        file: { ...logs, host: "h" },
      }));
    assertEquals(again.conversations.length, 0);
    // Counted over every session (the last session's count stood for all of them).
    assertEquals(again.skipped["unchanged record appended again"], 9_000);
  });
  await t.step(
    "export emails: unclosed anchors, thousands of parts, a header too large",
    async () => {
      const head = "From: noreply@tm.openai.com\r\nSubject: Your data export is ready\r\n" +
        "Message-ID: <h@x>\r\n";
      const read = async (what: string, body: string) => {
        const started = performance.now();
        const email = await readExportEmail(new TextEncoder().encode(head + body), {
          sender: "noreply@tm.openai.com",
          subjectPattern: "export",
          linkTextPattern: "download data export",
          linkPattern: "^https://",
        });
        assertQuick(what, started);
        return email.notExport ?? "";
      };
      const anchors = `Content-Type: text/html\r\n\r\n${fill('<a href="https://x/">')}`;
      assertEquals(await read("unclosed anchors", anchors), "no download link in it");
      // The MIME parser takes time to the square of these (50,000 parts: 90 s).
      const parts = 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n' +
        fill("--b\r\nContent-Type: text/plain\r\n\r\nx\r\n");
      assertStringIncludes(await read("many parts", parts), "MIME boundary lines");
      // Over its limit the parser throws: refused as this email, not as the mailbox.
      assertStringIncludes(
        await read("a large header", `X-B: ${"a".repeat(2_200_000)}\r\n\r\nhi`),
        "not a readable email",
      );
    },
  );
});
