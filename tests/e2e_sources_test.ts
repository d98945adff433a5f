/**
 * End to end for the Codex and Gemini CLI workers: worker processes started with their binary's
 * permission flags, the reference server as a process, files written as the CLIs write them.
 */
import { DatabaseSync } from "node:sqlite";
import { zstdCompressSync } from "node:zlib";
import { assertEquals, assertStringIncludes } from "./assert.ts";
import { parseCodex } from "../parsers/codex.ts";
import { type GeminiCarry, parseGeminiCli } from "../parsers/gemini_cli.ts";
import { StateStore } from "../common/state/state.ts";
import { derivedUuid } from "../common/hash.ts";
import type { Message } from "../common/types.ts";
import {
  geminiDocument,
  rolloutLines,
  writeCodexCorpus,
  writeGeminiCorpus,
} from "../bench/sources_corpus.ts";
import {
  assertKillSafe,
  delay,
  eventually,
  runWorker,
  scratch,
  type ServerProcess,
  serverUuids,
  spawnWorker,
  startServer,
} from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const encoder = new TextEncoder();

function serverMessage(server: ServerProcess, uuid: string): { content_text: string } | undefined {
  const db = new DatabaseSync(server.db, { readOnly: true });
  try {
    return db.prepare("SELECT text AS content_text FROM message_text WHERE uuid = ?").get(uuid) as
      | { content_text: string }
      | undefined;
  } finally {
    db.close();
  }
}

function batchesCommitted(statePath: string): number {
  const state = new StateStore(statePath);
  try {
    return state.counters().batches ?? 0;
  } finally {
    state.close();
  }
}

function codexUuids(text: string, sessionId: string): string[] {
  const out = parseCodex({
    bytes: encoder.encode(text),
    firstLine: 1,
    carry: undefined,
    file: { path: "r", hint: { sessionId }, host: "h" },
  });
  return out.conversations.flatMap((c) => c.messages.map((m) => m.uuid));
}

Deno.test({
  name: "e2e codex: live appends, compression to .zst, archiving, restart",
  ...opts,
  fn: async (t) => {
    const server = await startServer();
    // No periodic reconcile during the test: every step must follow from the watcher's events.
    const s = await scratch(server, { flag: "sessions-dir", checkInterval: 3600 });
    const sessions = s.data;
    const archive = `${s.dir}/archived_sessions`;
    await Deno.mkdir(archive);
    const statePath = `${s.state}/codex.state.db`;
    let worker = spawnWorker(s.base, {}, "codex");
    const sessionId = "019a0000-0000-7000-8000-00000000e2e1";
    const dir = `${sessions}/2026/11/20`;
    const path = `${dir}/rollout-2026-11-20T09-00-00-${sessionId}.jsonl`;
    const lines = rolloutLines({ sessionId, turns: 6, seed: 5 });
    const text = lines.join("\n") + "\n";
    const expected = codexUuids(text, sessionId);
    try {
      await worker.waitFor("backfill done");

      await t.step("a rollout written line by line arrives as it is written", async () => {
        await Deno.mkdir(dir, { recursive: true });
        const file = await Deno.open(path, { create: true, append: true });
        for (const line of lines.slice(0, -3)) {
          await file.write(encoder.encode(line + "\n"));
          await delay(10);
        }
        const last = lines.at(-3)!;
        await file.write(encoder.encode(last.slice(0, 30)));
        const partial = codexUuids(lines.slice(0, -3).join("\n") + "\n", sessionId);
        await eventually(() => serverUuids(server).length === partial.length, 15_000, "lines");
        await delay(500);
        assertEquals(serverUuids(server).length, partial.length, "a half line is not sent");
        await file.write(encoder.encode(last.slice(30) + "\n" + lines.slice(-2).join("\n") + "\n"));
        file.close();
        await eventually(() => serverUuids(server).length === expected.length, 15_000, "all");
        assertEquals(new Set(serverUuids(server)), new Set(expected));
      });

      await t.step("compressed to .zst: nothing new is sent", async () => {
        const batches = batchesCommitted(statePath);
        // As zstd --rm does it: the copy is written, then (a moment later) the original goes.
        await Deno.writeFile(`${path}.zst`, zstdCompressSync(await Deno.readFile(path)));
        await delay(400);
        await Deno.remove(path);
        await worker.waitFor("compressed copy of");
        await delay(500);
        assertEquals(batchesCommitted(statePath), batches);
        assertEquals(serverUuids(server).length, expected.length);
      });

      await t.step("moved to archived_sessions: nothing new is sent", async () => {
        const batches = batchesCommitted(statePath);
        await Deno.rename(
          `${path}.zst`,
          `${archive}/rollout-2026-11-20T09-00-00-${sessionId}.jsonl.zst`,
        );
        await worker.waitFor("moved from", 10_000);
        await delay(500);
        assertEquals(serverUuids(server).length, expected.length);
        assertEquals(batchesCommitted(statePath), batches);
      });

      await t.step("a rollout written while the worker is down arrives after restart", async () => {
        worker.child.kill("SIGTERM");
        assertEquals(await worker.exit(), 0);
        const other = "019a0000-0000-7000-8000-00000000e2e2";
        const more = rolloutLines({ sessionId: other, turns: 3, seed: 6 }).join("\n") + "\n";
        await Deno.writeTextFile(`${dir}/rollout-2026-11-20T10-00-00-${other}.jsonl`, more);
        worker = spawnWorker(s.base, {}, "codex");
        await worker.waitFor("backfill done");
        const all = [...expected, ...codexUuids(more, other)];
        await eventually(() => serverUuids(server).length === all.length, 15_000, "restart");
        assertEquals(new Set(serverUuids(server)), new Set(all));
      });
    } finally {
      await worker.stop();
      await server.stop();
    }
  },
});

Deno.test({
  name: "e2e codex: SIGKILL at several points of a backfill, then restart",
  ...opts,
  fn: async () => {
    const server = await startServer();
    const s = await scratch(server, { flag: "sessions-dir", extra: "  batch_size: 2\n" });
    const corpus = await writeCodexCorpus(s.data, 3_000_000, { turns: 12, seed: 4 });
    const expected = new Set<string>();
    const idOf = (path: string) => path.match(/([0-9a-f-]{36})\.jsonl$/)![1];
    for (const path of corpus.files) {
      for (const uuid of codexUuids(await Deno.readTextFile(path), idOf(path))) expected.add(uuid);
    }
    try {
      await assertKillSafe({
        server,
        args: s.base,
        worker: "codex",
        statePath: `${s.state}/codex.state.db`,
        killAfterMs: [400, 800, 1200],
        expected,
        uuidsUpTo: (path, offset) =>
          codexUuids(
            new TextDecoder().decode(Deno.readFileSync(path).subarray(0, offset)),
            idOf(path),
          ),
      });
    } finally {
      await server.stop();
    }
  },
});

function geminiUuids(path: string, bytes: Uint8Array): string[] {
  const out = parseGeminiCli({
    bytes,
    firstLine: 1,
    carry: undefined,
    file: { path, hint: { kind: path.endsWith(".json") ? "json" : "jsonl" }, host: "h" },
  });
  return out.conversations.flatMap((c) => c.messages.map((m) => m.uuid));
}

Deno.test({
  name: "e2e gemini_cli: live JSONL appends with re-appended records and a rewind, restart",
  ...opts,
  fn: async (t) => {
    const server = await startServer();
    const s = await scratch(server, { flag: "data-dir" });
    await Deno.writeTextFile(
      `${s.dir}/projects.json`,
      JSON.stringify({ projects: { "/home/dev/todo-app": "todo-app" } }),
    );
    const chats = `${s.data}/todo-app/chats`;
    await Deno.mkdir(chats, { recursive: true });
    const fixture = new URL(
      "./fixtures/gemini_cli/session-2026-11-22T15-00-5e551011.jsonl",
      import.meta.url,
    );
    const lines = (await Deno.readTextFile(fixture)).split("\n").filter(Boolean);
    const path = `${chats}/session-2026-11-22T15-00-5e551011.jsonl`;
    const sessionId = "5e551011-aaaa-4bbb-8ccc-000000000061";
    let worker = spawnWorker(s.base, {}, "gemini_cli");
    try {
      await worker.waitFor("backfill done");
      await t.step("records appended one by one end as the CLI's last versions", async () => {
        const file = await Deno.open(path, { create: true, append: true });
        for (const line of lines) {
          await file.write(encoder.encode(line + "\n"));
          await delay(40);
        }
        file.close();
        const all = geminiUuids(path, await Deno.readFile(path));
        await eventually(() => serverUuids(server).length === all.length, 15_000, "all records");
        const edited = derivedUuid("gemini_cli", sessionId, "m-g2");
        await eventually(
          () => serverMessage(server, edited)?.content_text.endsWith("(edited)"),
          10_000,
          "the checkpoint's version of m-g2",
        );
        const list = await server.get("/api/v1/conversations?source_type=gemini_cli") as {
          items: {
            uuid: string;
            title: string;
            metadata: { rewound_message_ids: string[]; cwd: string; message_count: number };
          }[];
        };
        const conversation = list.items.find((c) => c.uuid === sessionId)!;
        assertEquals(conversation.title, "Find open tasks in src");
        assertEquals(conversation.metadata.cwd, "/home/dev/todo-app");
        assertEquals(conversation.metadata.message_count, 7);
        assertEquals(
          conversation.metadata.rewound_message_ids,
          ["m-i1", "m-u2", "m-g3"].map((id) => derivedUuid("gemini_cli", sessionId, id)),
        );
      });
      await t.step("what is appended while the worker is down arrives after restart", async () => {
        worker.child.kill("SIGTERM");
        assertEquals(await worker.exit(), 0);
        const late = {
          id: "m-late",
          timestamp: "2026-11-22T15:01:00.000Z",
          type: "user",
          content: [{ text: "one more" }],
        };
        await Deno.writeTextFile(path, JSON.stringify(late) + "\n", { append: true });
        worker = spawnWorker(s.base, {}, "gemini_cli");
        const uuid = derivedUuid("gemini_cli", sessionId, "m-late");
        await eventually(() => serverUuids(server).includes(uuid), 15_000, "the late record");
        assertEquals(serverUuids(server).length, 11);
      });
    } finally {
      await worker.stop();
      await server.stop();
    }
  },
});

Deno.test({
  name: "e2e gemini_cli: SIGKILL at several points of a backfill, then restart",
  ...opts,
  fn: async () => {
    const server = await startServer();
    const s = await scratch(server, { flag: "data-dir", extra: "  batch_size: 2\n" });
    const corpus = await writeGeminiCorpus(s.data, 3_000_000, { turns: 10, seed: 8 });
    const expected = new Set<string>();
    for (const path of corpus.files) {
      for (const uuid of geminiUuids(path, await Deno.readFile(path))) expected.add(uuid);
    }
    try {
      await assertKillSafe({
        server,
        args: s.base,
        worker: "gemini_cli",
        statePath: `${s.state}/gemini_cli.state.db`,
        killAfterMs: [400, 800, 1200],
        expected,
        uuidsUpTo: (path, offset) => geminiUuids(path, Deno.readFileSync(path).subarray(0, offset)),
      });
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "e2e gemini_cli: a JSON session rewritten 50 times while the worker runs",
  ...opts,
  fn: async () => {
    const server = await startServer();
    const s = await scratch(server, { flag: "data-dir" });
    const chats = `${s.data}/${"c".repeat(64)}/chats`;
    await Deno.mkdir(chats, { recursive: true });
    const sessionId = "1e9ac700-0000-4000-8000-0000000000e2";
    const path = `${chats}/session-2026-11-22T15-00-1e9ac700.json`;
    const full = geminiDocument({ sessionId, turns: 50, seed: 9 });
    const worker = spawnWorker(s.base, {}, "gemini_cli");
    try {
      await worker.waitFor("backfill done");
      // Each update rewrites the file in place, as the CLI does (no rename): the worker may read
      // it half-written, and must then wait for the next version.
      for (let n = 1; n <= 50; n++) {
        const doc = { ...full, messages: full.messages.slice(0, n * 4) };
        // The answer of the last turn grows between versions, as a streamed reply would.
        const last = doc.messages.at(-1)!;
        doc.messages[doc.messages.length - 1] = { ...last, content: `${last.content} (v${n})` };
        await Deno.writeTextFile(path, JSON.stringify(doc, null, 2));
        await delay(n % 7 === 0 ? 250 : 30);
      }
      await Deno.writeTextFile(path, JSON.stringify(full, null, 2));
      const want = parseGeminiCli({
        bytes: encoder.encode(JSON.stringify(full)),
        firstLine: 1,
        carry: undefined as GeminiCarry | undefined,
        file: { path, hint: { kind: "json" as const }, host: "h" },
      }).conversations[0].messages as Message[];
      await eventually(() => serverUuids(server).length === want.length, 20_000, "all messages");
      await delay(500);
      const uuids = serverUuids(server);
      assertEquals(uuids.length, want.length, "each message once");
      assertEquals(new Set(uuids), new Set(want.map((m) => m.uuid)));
      for (const m of [want[3], want.at(-1)!]) {
        assertEquals(
          serverMessage(server, m.uuid)?.content_text,
          m.content_text,
          "the last version",
        );
      }
    } finally {
      await worker.stop();
      await server.stop();
    }
  },
});

Deno.test({
  name: "e2e: bad input gives clear messages and the worker goes on",
  ...opts,
  fn: async (t) => {
    const server = await startServer();
    try {
      await t.step("a truncated .zst rollout", async () => {
        const s = await scratch(server, { flag: "sessions-dir" });
        const id = "019a0000-0000-7000-8000-0000000bad01";
        const text = rolloutLines({ sessionId: id, turns: 2, seed: 1 }).join("\n") + "\n";
        const frame = zstdCompressSync(encoder.encode(text));
        const bad = `${s.data}/rollout-2026-11-20T09-00-00-${id}.jsonl.zst`;
        await Deno.writeFile(bad, frame.subarray(0, frame.length - 20));
        const good = "019a0000-0000-7000-8000-0000000bad02";
        await Deno.writeTextFile(
          `${s.data}/rollout-2026-11-20T09-00-00-${good}.jsonl`,
          rolloutLines({ sessionId: good, turns: 2, seed: 2 }).join("\n") + "\n",
        );
        const out = await runWorker([...s.base, "--once"], {}, "codex");
        assertEquals(out.code, 0, "a bad file is named and skipped; it fails nothing");
        assertStringIncludes(out.stderr, `${bad}: cannot decompress (truncated`);
        assertEquals(JSON.parse(out.stdout).conversations, 1, "the good rollout is delivered");
      });

      await t.step("invalid JSON mid-rewrite and unknown record kinds", async () => {
        const s = await scratch(server, { flag: "data-dir" });
        const chats = `${s.data}/proj/chats`;
        await Deno.mkdir(chats, { recursive: true });
        const half = `${chats}/session-2026-11-22T15-00-0bad0001.json`;
        const doc = JSON.stringify(
          geminiDocument({ sessionId: "0bad0001-0000-4000-8000-000000000001", turns: 2, seed: 3 }),
        );
        await Deno.writeTextFile(half, doc.slice(0, doc.length >> 1));
        const jsonl = `${chats}/session-2026-11-22T15-00-0bad0002.jsonl`;
        await Deno.writeTextFile(
          jsonl,
          [
            {
              sessionId: "0bad0002-0000-4000-8000-000000000002",
              startTime: "2026-11-22T15:00:00.000Z",
            },
            {
              id: "u1",
              timestamp: "2026-11-22T15:00:01.000Z",
              type: "user",
              content: [{ text: "hi" }],
            },
            { $teleport: { to: "mars" } },
          ].map((l) => JSON.stringify(l)).join("\n") + "\n",
        );
        const out = await runWorker([...s.base, "--once"], {}, "gemini_cli");
        assertStringIncludes(out.stderr, `${half}:1: invalid JSON`);
        assertStringIncludes(out.stderr, "read again when it changes");
        assertStringIncludes(
          out.stderr,
          `${jsonl}:3: record with keys $teleport is not a known kind`,
        );
        assertEquals(JSON.parse(out.stdout).messages, 1);
      });
    } finally {
      await server.stop();
    }
  },
});
