import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { parseClaudeCode } from "../parsers/claude_code.ts";
import type { Message } from "../common/types.ts";
import { sessionLines, writeCorpus } from "../bench/corpus.ts";
import {
  assertKillSafe,
  delay,
  eventually,
  freePort,
  runWorker,
  scratch,
  serverUuids,
  spawnWorker,
  startServer,
  workerConfig,
} from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A Claude Code prompt line of session `sessionId`. */
function promptLine(sessionId: string, uuid: string, text: string): string {
  return JSON.stringify({
    type: "user",
    uuid,
    parentUuid: null,
    sessionId,
    timestamp: "2025-01-01T00:00:00.000Z",
    message: { role: "user", content: text },
  });
}

/** What the parser makes of a whole file (the reference the server must match). */
function expectedMessages(path: string, sessionId: string): Message[] {
  const bytes = Deno.readFileSync(path);
  const out = parseClaudeCode({
    bytes,
    firstLine: 1,
    carry: undefined,
    file: { path, hint: { kind: "session" as const, sessionId }, host: "h" },
  });
  return out.conversations.flatMap((c) => c.messages);
}

/** The ids of every message of the corpus' session files. */
function corpusUuids(files: readonly string[]): Set<string> {
  const expected = new Set<string>();
  for (const path of files) {
    const id = path.split("/").pop()!.replace(".jsonl", "");
    for (const m of expectedMessages(path, id)) expected.add(m.uuid);
  }
  return expected;
}

Deno.test({
  name: "e2e: live sync of files written as Claude Code writes them",
  ...opts,
  fn: async (t) => {
    const server = await startServer();
    const s = await scratch(server);
    const statusPort = freePort();
    const worker = spawnWorker([...s.base, "--status-port", String(statusPort)]);
    try {
      await worker.waitFor("backfill done");
      await worker.waitFor("syncing");

      const sessionId = "0a000000-0000-4000-8000-000000000001";
      const project = `${s.data}/-home-dev-live`;
      const path = `${project}/${sessionId}.jsonl`;
      const lines = sessionLines({ sessionId, turns: 4, seed: 7 });
      const expected = lines.length - 1;

      await t.step("a new project and session are picked up line by line", async () => {
        await Deno.mkdir(project);
        const file = await Deno.open(path, { create: true, append: true });
        const encoder = new TextEncoder();
        for (const line of lines.slice(0, -1)) {
          await file.write(encoder.encode(line + "\n"));
          await delay(20);
        }
        // A half-written last line is not sent until it is complete.
        const last = lines.at(-1)!;
        await file.write(encoder.encode(last.slice(0, 40)));
        await eventually(
          () => serverUuids(server).length === expected - 1,
          15_000,
          "all complete lines",
        );
        await delay(800);
        assertEquals(serverUuids(server).length, expected - 1);
        await file.write(encoder.encode(last.slice(40) + "\n"));
        file.close();
        await eventually(
          () => serverUuids(server).length === expected,
          15_000,
          "the finished line",
        );
      });

      await t.step(
        "the read API shows every message once with uuids, parents, rounds and roles",
        async () => {
          const page = await server.get(
            `/api/v1/conversations/${sessionId}/messages?page_size=1000`,
          ) as {
            items: Message[];
            total: number;
          };
          const want = expectedMessages(path, sessionId);
          assertEquals(page.total, want.length);
          const got = new Map(page.items.map((m) => [m.uuid, m]));
          for (const m of want) {
            const g = got.get(m.uuid);
            assert(g, `message ${m.uuid} on the server`);
            assertEquals([g.parent_uuid, g.round_index, g.role], [
              m.parent_uuid,
              m.round_index,
              m.role,
            ]);
          }
          const overview = await server.get("/api/v1/stats/overview") as {
            sources: Record<string, number>;
          };
          assertEquals(overview.sources.claude_code, 1);
        },
      );

      await t.step("status, /metrics and the status subcommand", async () => {
        const anonymous = await fetch(`http://127.0.0.1:${statusPort}/status`);
        await anonymous.body?.cancel();
        assertEquals(anonymous.status, 401, "/status needs the status token");
        const token = (await Deno.readTextFile(`${s.state}/claude_code.status-token`)).trim();
        const headers = { authorization: `Bearer ${token}` };
        const status = await (await fetch(`http://127.0.0.1:${statusPort}/status`, { headers }))
          .json();
        assertEquals(status.running, true);
        assertEquals(status.total_synced, expected);
        assertEquals(status.paused_reason, "");
        const metrics = await (await fetch(`http://127.0.0.1:${statusPort}/metrics`, { headers }))
          .text();
        assertStringIncludes(
          metrics,
          `ai_sync_messages_synced_total{worker="claude_code"} ${expected}`,
        );
        const port = ["--status-port", String(statusPort), "--state-dir", s.state];
        const cli = await runWorker(["status", ...port]);
        assertEquals(cli.code, 0);
        assertStringIncludes(cli.stdout, `synced:       ${expected} messages in all`);
        const json = await runWorker(["status", "--json", ...port]);
        assertEquals(JSON.parse(json.stdout).worker, "claude_code");
      });

      await t.step("a deleted session keeps what was delivered", async () => {
        await Deno.remove(path);
        await worker.waitFor("file deleted; its delivered messages are kept", 10_000);
        assertEquals(serverUuids(server).length, expected);
      });

      await t.step("SIGTERM stops gracefully with exit 0", async () => {
        worker.child.kill("SIGTERM");
        assertEquals(await worker.exit(), 0);
        assertStringIncludes(worker.stderr(), '"msg":"stopped"');
      });

      await t.step("a second --once sends nothing", async () => {
        await Deno.writeTextFile(path, lines.join("\n") + "\n"); // the same bytes again, a new inode
        const before = serverUuids(server).length;
        const once = await runWorker([...s.base, "--once"]);
        assertEquals(once.code, 0, once.stderr);
        assertEquals(serverUuids(server).length, before);
        const again = await runWorker([...s.base, "--once"]);
        const summary = JSON.parse(again.stdout);
        assertEquals(
          [
            summary.source,
            summary.conversations,
            summary.messages,
            summary.skipped,
            summary.errors,
          ],
          ["claude_code", 0, 0, 0, 0],
        );
      });
    } finally {
      try {
        worker.child.kill("SIGKILL");
      } catch {
        // Already exited.
      }
      await server.stop();
    }
  },
});

Deno.test({
  name: "e2e: SIGKILL at several points of a backfill, then restart",
  ...opts,
  fn: async () => {
    const server = await startServer();
    const s = await scratch(server, { extra: "  batch_size: 2\n" });
    const corpus = await writeCorpus(s.data, 3_000_000, {
      turnsPerSession: 15,
      projects: 4,
      seed: 3,
    });
    const expected = corpusUuids(corpus.files);
    try {
      await assertKillSafe({
        server,
        args: s.base,
        worker: "claude_code",
        statePath: `${s.state}/claude_code.state.db`,
        killAfterMs: [400, 700, 1000, 1300],
        expected,
        uuidsUpTo: (path, offset) => {
          const id = path.split("/").pop()!.replace(".jsonl", "");
          const out = parseClaudeCode({
            bytes: Deno.readFileSync(path).subarray(0, offset),
            firstLine: 1,
            carry: undefined,
            file: { path, hint: { kind: "session" as const, sessionId: id }, host: "h" },
          });
          return out.conversations.flatMap((c) => c.messages.map((m) => m.uuid));
        },
      });
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "e2e: 401 pauses; fixing the token in the config file resumes without restart",
  ...opts,
  fn: async () => {
    const server = await startServer();
    const s = await scratch(null);
    await Deno.writeTextFile(s.cfg, workerConfig(server, { token: "wrong-token" }));
    const sessionId = "0b000000-0000-4000-8000-000000000001";
    await Deno.mkdir(`${s.data}/-p`);
    const lines = sessionLines({ sessionId, turns: 2 });
    await Deno.writeTextFile(`${s.data}/-p/${sessionId}.jsonl`, lines.join("\n") + "\n");
    const statusPort = freePort();
    const worker = spawnWorker([...s.base, "--status-port", String(statusPort)]);
    try {
      await worker.waitFor("delivery paused");
      const status = await runWorker([
        "status",
        "--status-port",
        String(statusPort),
        "--state-dir",
        s.state,
      ]);
      assertEquals(status.code, 1);
      assertStringIncludes(status.stdout, "PAUSED: HTTP 401");
      assert(!worker.stderr().includes("wrong-token"), "the token never appears in logs");
      assertEquals(serverUuids(server).length, 0);
      await Deno.writeTextFile(s.cfg, workerConfig(server));
      await eventually(
        () => serverUuids(server).length === lines.length - 1,
        15_000,
        "delivery after the token fix",
      );
      await worker.waitFor("configuration reloaded");
    } finally {
      await worker.stop();
      await server.stop();
    }
  },
});

Deno.test({
  name: "e2e: bad configuration gives a clear message and exit 2",
  ...opts,
  fn: async (t) => {
    const s = await scratch(null);
    const cases: [string, string, string][] = [
      ["invalid YAML", "worker: [\n", "invalid YAML"],
      ["an unknown key", "worker:\n  batch_sise: 10\n", "worker: unknown key batch_sise"],
      [
        "a wrong type",
        "worker:\n  batch_size: abc\n",
        'worker.batch_size: expected a positive integer, got "abc"',
      ],
      [
        "a remote server without token",
        "server:\n  base_url: https://sync.example.com\n",
        "security.worker_token: required",
      ],
      ["a bad URL", "server:\n  base_url: not a url\n", "server.base_url: expected an http(s) URL"],
    ];
    for (const [name, text, message] of cases) {
      await t.step(name, async () => {
        await Deno.writeTextFile(s.cfg, text);
        const out = await runWorker([...s.base, "--once"]);
        assertEquals(out.code, 2, out.stderr);
        assertStringIncludes(out.stderr, `${s.cfg}`);
        assertStringIncludes(out.stderr, message);
      });
    }
    await t.step("a usage error", async () => {
      const out = await runWorker(["--projects-dri", "/x"]);
      assertEquals(out.code, 2);
      assertStringIncludes(out.stderr, "usage: claude-code-sync-worker");
    });
  },
});

Deno.test({
  name: "e2e: bad input is reported and the rest is delivered",
  ...opts,
  fn: async (t) => {
    const server = await startServer();
    try {
      await t.step(
        "binary garbage, an empty file, two 15.5 MB lines and a 20 MB line",
        async () => {
          const s = await scratch(server);
          await Deno.mkdir(`${s.data}/-p`);
          const good = "0c000000-0000-4000-8000-000000000001";
          const lines = sessionLines({ sessionId: good, turns: 2 });
          await Deno.writeTextFile(`${s.data}/-p/${good}.jsonl`, lines.join("\n") + "\n");
          await Deno.writeFile(
            `${s.data}/-p/0c000000-0000-4000-8000-000000000002.jsonl`,
            Uint8Array.from({ length: 3000 }, (_, i) => (i * 7919 + 13) % 256 || 10),
          );
          await Deno.writeTextFile(`${s.data}/-p/0c000000-0000-4000-8000-000000000003.jsonl`, "");
          const big = "0c000000-0000-4000-8000-000000000004";
          // A euro sign makes V8 keep the text two bytes per character: the worst case of the
          // memory budget, which a line under worker.max_line_bytes (16 MiB) must fit.
          const line = (uuid: string, chars: number, session = big) =>
            promptLine(session, uuid, "€" + "x".repeat(chars - 1));
          await Deno.writeTextFile(
            `${s.data}/-p/${big}.jsonl`,
            [line("large-1", 15_500_000), line("huge-1", 20_000_000), line("after-1", 10)].join(
              "\n",
            ) + "\n",
          );
          // Another, read while the first is sent.
          await Deno.writeTextFile(
            `${s.data}/-p/0c000000-0000-4000-8000-000000000005.jsonl`,
            line("large-2", 15_500_000, "0c000000-0000-4000-8000-000000000005") + "\n",
          );
          const out = await runWorker([...s.base, "--once"]);
          assertEquals(out.code, 0, "bad lines are counted and named on stderr; they fail nothing");
          assertStringIncludes(
            out.stderr,
            "0c000000-0000-4000-8000-000000000002.jsonl:1: invalid JSON",
          );
          // Over the default worker.max_line_bytes (16 MiB, the memory budget): skipped and named.
          assertStringIncludes(out.stderr, `${big}.jsonl:2: line of 20000`);
          assertStringIncludes(out.stderr, "exceeds worker.max_line_bytes (16777216); skipped");
          const summary = JSON.parse(out.stdout);
          assertEquals(summary.messages, lines.length - 1 + 3);
          const uuids = serverUuids(server);
          assert(
            uuids.includes("large-1") && uuids.includes("after-1") && !uuids.includes("huge-1"),
          );
          assert(uuids.includes("large-2"));
          const msgs = await server.get(`/api/v1/conversations/${big}/messages`) as {
            items: Message[];
          };
          assertEquals(
            msgs.items.find((m) => m.uuid === "large-1")?.content_text.length,
            15_500_000,
          );
        },
      );

      await t.step(
        "a line over worker.max_line_bytes is skipped with its line number",
        async () => {
          const s = await scratch(server, { extra: "  max_line_bytes: 100000\n" });
          await Deno.mkdir(`${s.data}/-p`);
          const id = "0d000000-0000-4000-8000-000000000001";
          const line = (uuid: string, text: string) => promptLine(id, uuid, text);
          await Deno.writeTextFile(
            `${s.data}/-p/${id}.jsonl`,
            [line("ok-1", "a"), line("big-1", "y".repeat(300_000)), line("ok-2", "b")].join("\n") +
              "\n",
          );
          const out = await runWorker([...s.base, "--once"]);
          assertEquals(out.code, 0, "an over-long line is skipped and named, not a failure");
          assertStringIncludes(out.stderr, `${id}.jsonl:2: line of 300`);
          assertStringIncludes(out.stderr, "exceeds worker.max_line_bytes (100000); skipped");
          const uuids = serverUuids(server);
          assert(uuids.includes("ok-1") && uuids.includes("ok-2") && !uuids.includes("big-1"));
        },
      );

      await t.step("a projects dir that cannot be read", async () => {
        const s = await scratch(server);
        const notDir = `${s.dir}/not-a-dir`;
        await Deno.writeTextFile(notDir, "x");
        const out = await runWorker([
          "--config",
          s.cfg,
          "--state-dir",
          s.state,
          "--projects-dir",
          notDir,
          "--once",
        ]);
        assertEquals(out.code, 1);
        assertStringIncludes(out.stderr, `cannot read ${notDir}`);
      });

      await t.step("a missing projects dir says where it looked and what to set", async () => {
        const s = await scratch(server);
        const missing = `${s.dir}/nowhere`;
        const out = await runWorker([
          "--config",
          s.cfg,
          "--state-dir",
          s.state,
          "--projects-dir",
          missing,
          "--once",
        ]);
        assertEquals(out.code, 0);
        assertStringIncludes(out.stderr, `no Claude Code sessions found in ${missing}`);
        assertStringIncludes(out.stderr, "pass the directory flag or set the claude_code section");
      });

      await t.step(
        "the worker keeps running through bad input and a broken config edit",
        async () => {
          const s = await scratch(server);
          await Deno.mkdir(`${s.data}/-p`);
          const worker = spawnWorker(s.base);
          try {
            await worker.waitFor("backfill done");
            await Deno.writeFile(
              `${s.data}/-p/0e000000-0000-4000-8000-000000000009.jsonl`,
              new Uint8Array([0, 1, 2, 10, 255, 254, 10]),
            );
            await worker.waitFor("0e000000-0000-4000-8000-000000000009.jsonl:1: invalid JSON");
            await Deno.writeTextFile(s.cfg, "worker: [\n");
            await worker.waitFor("keeping the previous configuration");
            const id = "0e000000-0000-4000-8000-000000000001";
            const lines = sessionLines({ sessionId: id, turns: 1 });
            await Deno.writeTextFile(`${s.data}/-p/${id}.jsonl`, lines.join("\n") + "\n");
            await eventually(
              async () => {
                const r = await server.get(`/api/v1/conversations/${id}/messages`).catch(() =>
                  null
                ) as { total: number } | null;
                return r?.total === lines.length - 1;
              },
              15_000,
              "delivery after bad input",
            );
          } finally {
            worker.child.kill("SIGTERM");
            assertEquals(await worker.exit(), 0);
          }
        },
      );
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "e2e: --dry-run prints batches and sends nothing",
  ...opts,
  fn: async () => {
    const server = await startServer();
    try {
      const s = await scratch(server);
      await Deno.mkdir(`${s.data}/-p`);
      const id = "0f000000-0000-4000-8000-000000000001";
      const lines = sessionLines({ sessionId: id, turns: 2 });
      await Deno.writeTextFile(`${s.data}/-p/${id}.jsonl`, lines.join("\n") + "\n");
      const out = await runWorker([...s.base, "--dry-run"]);
      assertEquals(out.code, 0, out.stderr);
      const batches = out.stdout.trim().split("\n").map((l) => JSON.parse(l));
      assertEquals(batches.length, 1);
      assertEquals(batches[0].source_type, "claude_code");
      assertEquals(batches[0].conversations[0].uuid, id);
      assertEquals(batches[0].conversations[0].messages.length, lines.length - 1);
      assertStringIncludes(out.stderr, "dry run: nothing was sent");
      assertEquals(serverUuids(server).length, 0);
      // Nothing was committed either: a real run sends everything.
      const real = await runWorker([...s.base, "--once"]);
      assertEquals(JSON.parse(real.stdout).messages, lines.length - 1);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "e2e: worker.watch false polls every worker.poll_interval; status and doctor say so",
  ...opts,
  fn: async () => {
    const server = await startServer();
    // A full check every five minutes: a session that arrives within seconds was polled.
    const s = await scratch(server, {
      checkInterval: 300,
      extra: "  watch: false\n  poll_interval: 1\n",
    });
    const statusPort = freePort();
    const worker = spawnWorker([...s.base, "--status-port", String(statusPort)]);
    try {
      await worker.waitFor("backfill done");
      await worker.waitFor("checking for changes every 1 s");
      const sessionId = "0d000000-0000-4000-8000-000000000001";
      const lines = sessionLines({ sessionId, turns: 2, seed: 5 });
      await Deno.mkdir(`${s.data}/-home-dev-polled`);
      await Deno.writeTextFile(
        `${s.data}/-home-dev-polled/${sessionId}.jsonl`,
        lines.join("\n") + "\n",
      );
      await eventually(() => serverUuids(server).length === lines.length - 1, 10_000, "polled");
      const port = ["--status-port", String(statusPort), "--state-dir", s.state];
      const status = await runWorker(["status", ...port]);
      assertStringIncludes(
        status.stdout,
        "watching:     no, polled every worker.poll_interval s: worker.watch is false",
      );
      const doctor = await runWorker(["doctor", ...s.base]);
      assertStringIncludes(
        doctor.stdout,
        `watch: off (worker.watch: false); ${s.data} is checked every 1 s`,
      );
    } finally {
      worker.child.kill("SIGKILL");
      await server.stop();
    }
  },
});

Deno.test({
  name: "e2e: doctor says what works and what to fix",
  ...opts,
  fn: async (t) => {
    const server = await startServer();
    try {
      const s = await scratch(server);
      await Deno.mkdir(`${s.data}/-p`);
      await Deno.writeTextFile(`${s.data}/-p/x.jsonl`, "");
      await t.step("all good", async () => {
        const out = await runWorker(["doctor", ...s.base]);
        assertEquals(out.code, 0, out.stdout);
        assertStringIncludes(out.stdout, "accepts the token");
        assertStringIncludes(out.stdout, "all checks passed");
        assertStringIncludes(out.stdout, `watch: ${s.data} can be watched`);
        assertStringIncludes(out.stdout, `the engine may read ${s.data}, `);
      });
      await t.step("a wrong token and a missing projects dir", async () => {
        await Deno.writeTextFile(s.cfg, workerConfig(server, { token: "nope" }));
        const out = await runWorker([
          "doctor",
          "--config",
          s.cfg,
          "--state-dir",
          s.state,
          "--projects-dir",
          `${s.dir}/missing`,
        ]);
        assertEquals(out.code, 1);
        assertStringIncludes(out.stdout, "FAIL server:");
        assertStringIncludes(out.stdout, "refuses the token: HTTP 401");
        assertStringIncludes(out.stdout, "fix: set security.worker_token");
        assertStringIncludes(out.stdout, "does not exist");
        assertStringIncludes(
          out.stdout,
          "fix: pass --projects-dir DIR or set claude_code.projects_dir",
        );
      });
      await t.step("an unreachable server", async () => {
        await Deno.writeTextFile(
          s.cfg,
          `server:\n  base_url: http://127.0.0.1:${freePort()}\n  timeout: 2\nsecurity:\n  worker_token: t\n`,
        );
        const out = await runWorker(["doctor", ...s.base]);
        assertEquals(out.code, 1);
        assertStringIncludes(out.stdout, "cannot reach");
      });
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "e2e: zero-config delivers into the embedded store and says where",
  ...opts,
  fn: async () => {
    const s = await scratch(null);
    await Deno.mkdir(`${s.data}/-p`);
    const id = "10000000-0000-4000-8000-000000000001";
    const lines = sessionLines({ sessionId: id, turns: 2 });
    await Deno.writeTextFile(`${s.data}/-p/${id}.jsonl`, lines.join("\n") + "\n");
    const worker = spawnWorker(s.base);
    try {
      await worker.waitFor("backfill done");
      assertStringIncludes(
        worker.stderr(),
        `delivering into the embedded store ${s.state}/conversations.db`,
      );
    } finally {
      worker.child.kill("SIGINT");
      assertEquals(await worker.exit(), 0);
    }
    const db = new DatabaseSync(`${s.state}/conversations.db`, { readOnly: true });
    const n = (db.prepare("SELECT COUNT(*) AS n FROM messages").get() as { n: number }).n;
    db.close();
    assertEquals(n, lines.length - 1);
  },
});

Deno.test({
  name: "e2e: a store restored in place from an older backup is noticed and sent what it lacks",
  ...opts,
  fn: async (t) => {
    const s = await scratch(null);
    const store = `${s.state}/conversations.db`;
    const messages = () => {
      const db = new DatabaseSync(store, { readOnly: true });
      try {
        return (db.prepare("SELECT COUNT(*) AS n FROM messages").get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    const session = async (n: number) => {
      const id = `1e000000-0000-4000-8000-00000000000${n}`;
      const lines = sessionLines({ sessionId: id, turns: 2, seed: n });
      await Deno.mkdir(`${s.data}/-p`, { recursive: true });
      await Deno.writeTextFile(`${s.data}/-p/${id}.jsonl`, lines.join("\n") + "\n");
      return lines.length - 1;
    };
    const once = async () => {
      const out = await runWorker([...s.base, "--once"]);
      assertEquals(out.code, 0, out.stderr);
      return out.stderr;
    };
    const first = await session(1);
    await once();
    const backup = await Deno.readFile(store);
    const second = await session(2);
    await once();
    assertEquals(messages(), first + second);

    await t.step("a restart with the store as it was starts nothing over", async () => {
      const log = await once();
      assert(!log.includes("it acknowledged"), log);
    });

    await t.step("the backup copied over the store (cp keeps the file) is noticed", async () => {
      await Deno.writeFile(store, backup);
      assertEquals(messages(), first);
      const log = await once();
      assertStringIncludes(log, "the store holds 1 of the 2 batches it acknowledged");
      assertStringIncludes(log, "reading everything again");
      assertEquals(messages(), first + second, "each message once");
      assert(!(await once()).includes("it acknowledged"), "noticed once");
    });

    await t.step(
      "resync by hand: refused while the worker runs, then all is read again",
      async () => {
        const worker = spawnWorker(s.base);
        try {
          await worker.waitFor("backfill done");
          const refused = await runWorker(["resync", ...s.base]);
          assertEquals(refused.code, 1, "not while the worker runs");
          assertStringIncludes(refused.stderr, "stop it first");
        } finally {
          worker.child.kill("SIGINT");
          assertEquals(await worker.exit(), 0);
        }
        const out = await runWorker(["resync", ...s.base]);
        assertEquals(out.code, 0, out.stderr);
        assertStringIncludes(out.stdout, "its next run reads the whole history again");
        const again = await runWorker([...s.base, "--once"]);
        assertEquals(again.code, 0, again.stderr);
        assertEquals(JSON.parse(again.stdout).messages, first + second, "all sent again");
        assertEquals(messages(), first + second, "each message once");
      },
    );
  },
});

Deno.test({
  name:
    "e2e: SIGKILL while backfilling into the embedded store: each message once, never started over",
  ...opts,
  fn: async () => {
    const s = await scratch(null, { extra: "  batch_size: 2\n  batch_max_bytes: 65536\n" });
    const corpus = await writeCorpus(s.data, 20_000_000, {
      turnsPerSession: 10,
      projects: 3,
      seed: 9,
    });
    const expected = corpusUuids(corpus.files);
    const logs: string[] = [];
    for (const killAfter of [100, 200, 300, 400]) {
      const worker = spawnWorker(s.base);
      await worker.waitFor("syncing", 10_000);
      await delay(killAfter);
      worker.child.kill("SIGKILL");
      await worker.exit();
      logs.push(worker.stderr());
    }
    const finish = await runWorker([...s.base, "--once"]);
    assertEquals(finish.code, 0, finish.stderr);
    logs.push(finish.stderr);
    // The store may be ahead of the checkpoints after a kill, never behind: a restart that
    // started over would read the whole history again.
    for (const log of logs) assert(!log.includes("it acknowledged"), log);
    assert(!logs[0].includes("backfill done"), "the first kill fell mid-backfill");
    const db = new DatabaseSync(`${s.state}/conversations.db`, { readOnly: true });
    try {
      const uuids = (db.prepare("SELECT uuid FROM messages").all() as { uuid: string }[])
        .map((r) => r.uuid);
      assertEquals(uuids.length, expected.size);
      assert(uuids.every((u) => expected.has(u)), "only the corpus' messages");
      const receipt = db.prepare("SELECT batches FROM receipts WHERE source_type = 'claude_code'")
        .get() as { batches: number };
      assert(receipt.batches > 20, `only ${receipt.batches} batches`);
    } finally {
      db.close();
    }
  },
});

Deno.test({
  name: "e2e: a FIFO where the store belongs is reported, not waited on",
  ...opts,
  fn: async () => {
    const s = await scratch(null);
    const id = "1f000000-0000-4000-8000-000000000001";
    await Deno.mkdir(`${s.data}/-p`, { recursive: true });
    await Deno.writeTextFile(
      `${s.data}/-p/${id}.jsonl`,
      sessionLines({ sessionId: id, turns: 1, seed: 1 }).join("\n") + "\n",
    );
    await Deno.mkdir(s.state, { recursive: true });
    const made = new Deno.Command("mkfifo", { args: [`${s.state}/conversations.db`] }).outputSync();
    assert(made.success, "mkfifo");
    // Opening a FIFO waits for a writer: the worker hung at start, then at its first batch.
    const out = await runWorker([...s.base, "--once"]);
    assertEquals(out.code, 1, out.stderr);
    assertStringIncludes(out.stderr, "conversations.db is not a regular file; expected the store");
  },
});

Deno.test({
  name: "e2e: a server set up after the embedded store receives the whole history",
  ...opts,
  fn: async (t) => {
    const s = await scratch(null);
    const corpus = await writeCorpus(s.data, 200_000, { turnsPerSession: 4, projects: 2, seed: 5 });
    const expected = corpusUuids(corpus.files);
    const store = () => {
      const db = new DatabaseSync(`${s.state}/conversations.db`, { readOnly: true });
      const uuids = (db.prepare("SELECT uuid FROM messages").all() as { uuid: string }[])
        .map((r) => r.uuid);
      db.close();
      return new Set(uuids);
    };
    await t.step("first, everything into the embedded store", async () => {
      const out = await runWorker([...s.base, "--once", "--json"]);
      assertEquals(out.code, 0, out.stderr);
      assertEquals(store(), expected);
    });
    await t.step("the store deleted: it is filled again", async () => {
      for (const suffix of ["", "-wal", "-shm"]) {
        await Deno.remove(`${s.state}/conversations.db${suffix}`).catch(() => {});
      }
      const out = await runWorker([...s.base, "--once", "--json"]);
      assertEquals(out.code, 0, out.stderr);
      assertStringIncludes(out.stderr, "the store it delivered to is gone");
      assertEquals(store(), expected);
    });
    const server = await startServer();
    try {
      await Deno.writeTextFile(s.cfg, workerConfig(server));
      await t.step("then a server: it receives the history, not only what comes next", async () => {
        const out = await runWorker([...s.base, "--once", "--json"]);
        assertEquals(out.code, 0, out.stderr);
        assertStringIncludes(out.stderr, "it delivered to the embedded store");
        const held = serverUuids(server);
        assertEquals(held.length, new Set(held).size, "each message once");
        assertEquals(new Set(held), expected);
      });
      await t.step("a second run sends nothing", async () => {
        const out = await runWorker([...s.base, "--once", "--json"]);
        assertEquals(out.code, 0, out.stderr);
        assertEquals(JSON.parse(out.stdout.trim().split("\n").at(-1)!).messages, 0);
      });
    } finally {
      await server.stop();
    }
  },
});
