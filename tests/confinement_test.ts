/**
 * A worker reads nothing outside its roots, whatever appears in them: links renamed in on the
 * watcher's path, side files that are FIFOs, devices or links out. Worker processes with their
 * binary's flags, the reference server as a process.
 */
import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { sessionLines } from "../bench/corpus.ts";
import { geminiJsonlLines, rolloutLines } from "../bench/sources_corpus.ts";
import {
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

/** Every text the server holds: titles, message texts, metadata, contents. */
function serverText(server: ServerProcess): string {
  const db = new DatabaseSync(server.db, { readOnly: true });
  try {
    const rows = [
      ...db.prepare("SELECT title || metadata AS t FROM conversations").all(),
      ...db.prepare("SELECT content_text || content || coalesce(metadata, '') AS t FROM messages")
        .all(),
    ] as { t: string }[];
    return rows.map((r) => r.t).join("\n");
  } finally {
    db.close();
  }
}

function mkfifo(path: string): void {
  const out = new Deno.Command("mkfifo", { args: [path] }).outputSync();
  if (!out.success) throw new Error(`mkfifo ${path} failed`);
}

/** `ln -s target dir/.t && mv -T dir/.t path`: a link made elsewhere and renamed in. */
async function renameLinkIn(target: string, path: string): Promise<void> {
  const staging = `${path}.staging-${crypto.randomUUID()}`;
  await Deno.symlink(target, staging);
  await Deno.rename(staging, path);
}

Deno.test({
  name: "confinement: a link renamed into a watched folder is never read (Claude Code, Codex)",
  ...opts,
  fn: async (t) => {
    const server = await startServer();
    try {
      await t.step("Claude Code session", async () => {
        const s = await scratch(server, { checkInterval: 3600 });
        // Outside: a real session the user keeps elsewhere, which must stay there.
        const outside = `${s.dir}/elsewhere`;
        await Deno.mkdir(outside);
        const secretId = "5ec00000-0000-4000-8000-000000000001";
        await Deno.writeTextFile(
          `${outside}/${secretId}.jsonl`,
          sessionLines({ sessionId: secretId, turns: 2, seed: 9 }).join("\n") + "\n",
        );
        await Deno.mkdir(`${s.data}/-p`);
        const worker = spawnWorker(s.base);
        try {
          await worker.waitFor("backfill done");
          const link = `${s.data}/-p/${secretId}.jsonl`;
          await renameLinkIn(`${outside}/${secretId}.jsonl`, link);
          await renameLinkIn(
            "/etc/passwd",
            `${s.data}/-p/0a000000-0000-4000-8000-0000000000e1.jsonl`,
          );
          await worker.waitFor(`${link}: not read: it resolves to ${outside}/${secretId}.jsonl`);
          await worker.waitFor("it resolves to /etc/passwd");
          await delay(500);
          assertEquals(serverUuids(server).length, 0, "nothing from outside reached the server");
          assert(!worker.stderr().includes("root:"), "no line of /etc/passwd reached the log");
        } finally {
          await worker.stop();
        }
      });

      await t.step("Codex rollout", async () => {
        const s = await scratch(server, { flag: "sessions-dir", checkInterval: 3600 });
        const outside = `${s.dir}/elsewhere`;
        await Deno.mkdir(outside);
        const thread = "019a5ec0-0000-7000-8000-000000000001";
        const name = `rollout-2026-11-20T10-00-00-${thread}.jsonl`;
        await Deno.writeTextFile(
          `${outside}/${name}`,
          rolloutLines({ sessionId: thread, turns: 2, seed: 3 }).join("\n") + "\n",
        );
        await Deno.mkdir(`${s.data}/2026/11/20`, { recursive: true });
        const worker = spawnWorker(s.base, {}, "codex");
        try {
          await worker.waitFor("backfill done");
          await renameLinkIn(`${outside}/${name}`, `${s.data}/2026/11/20/${name}`);
          await worker.waitFor(`it resolves to ${outside}/${name}`);
          await delay(500);
          assert(
            !serverText(server).includes(thread),
            "no message of the outside rollout on the server",
          );
        } finally {
          await worker.stop();
        }
      });
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "confinement: side files that are FIFOs, devices or links out are not read",
  ...opts,
  fn: async (t) => {
    const server = await startServer();
    try {
      await t.step("Claude Code sub-agent .meta.json: FIFO, link out, /dev/zero", async () => {
        const s = await scratch(server);
        const outside = `${s.dir}/elsewhere`;
        await Deno.mkdir(outside);
        await Deno.writeTextFile(`${outside}/meta.json`, JSON.stringify({ agentType: "LEAKED" }));
        const session = "0c000000-0000-4000-8000-000000000001";
        const agents = `${s.data}/-p/${session}/subagents`;
        await Deno.mkdir(agents, { recursive: true });
        const lines = sessionLines({ sessionId: session, turns: 1, seed: 2 });
        await Deno.writeTextFile(`${s.data}/-p/${session}.jsonl`, lines.join("\n") + "\n");
        for (const [agent, side] of [["a1", "fifo"], ["a2", "link"], ["a3", "zero"]]) {
          await Deno.writeTextFile(
            `${agents}/agent-${agent}.jsonl`,
            lines.slice(1).join("\n") + "\n",
          );
          const meta = `${agents}/agent-${agent}.meta.json`;
          if (side === "fifo") mkfifo(meta);
          else if (side === "link") await Deno.symlink(`${outside}/meta.json`, meta);
          else await Deno.symlink("/dev/zero", meta);
        }
        const started = performance.now();
        const out = await runWorker([...s.base, "--once"]);
        const seconds = (performance.now() - started) / 1000;
        assert(seconds < 30, `--once ended in ${seconds.toFixed(1)} s`);
        assertStringIncludes(out.stderr, `${agents}/agent-a1.meta.json: not read: it is a FIFO`);
        assertStringIncludes(out.stderr, `${agents}/agent-a2.meta.json: not read: it resolves to`);
        assertStringIncludes(
          out.stderr,
          `${agents}/agent-a3.meta.json: not read: it resolves to /dev/zero`,
        );
        assert(!serverText(server).includes("LEAKED"), "nothing of the outside file was delivered");
        assert(serverUuids(server).length > 0, "the sessions themselves were delivered");
      });

      await t.step("Gemini CLI .project_root: link out and FIFO", async () => {
        const s = await scratch(server, { flag: "data-dir" });
        const outside = `${s.dir}/elsewhere`;
        await Deno.mkdir(outside);
        await Deno.writeTextFile(`${outside}/root.txt`, "/home/victim/LEAKED-PROJECT\n");
        for (const [project, side] of [["linked", "link"], ["piped", "fifo"]]) {
          await Deno.mkdir(`${s.data}/${project}/chats`, { recursive: true });
          const marker = `${s.data}/${project}/.project_root`;
          if (side === "link") await Deno.symlink(`${outside}/root.txt`, marker);
          else mkfifo(marker);
          const id = project === "linked" ? "11111111" : "22222222";
          const lines = geminiJsonlLines({
            sessionId: `${id}-0000-4000-8000-000000000000`,
            turns: 1,
            seed: 4,
          });
          await Deno.writeTextFile(
            `${s.data}/${project}/chats/session-2026-11-22T15-00-${id}.jsonl`,
            lines.join("\n") + "\n",
          );
        }
        const started = performance.now();
        const out = await runWorker([...s.base, "--once"], {}, "gemini_cli");
        assert((performance.now() - started) / 1000 < 30, "--once ended");
        assertStringIncludes(
          out.stderr,
          `${s.data}/linked/.project_root: not read: it resolves to`,
        );
        assertStringIncludes(out.stderr, `${s.data}/piped/.project_root: not read: it is a FIFO`);
        await eventually(() => serverUuids(server).length > 0, 5000, "the sessions delivered");
        assert(!serverText(server).includes("LEAKED"), "the outside path is in no metadata");
      });
    } finally {
      await server.stop();
    }
  },
});
