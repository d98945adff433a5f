/**
 * A state database written by an earlier version is migrated on first start and nothing is sent
 * again. `tests/fixtures/state_v1/` holds state databases written by the version of 2026-11-29
 * (before the schema had a version) over the repo's own fixtures laid out under
 * `/tmp/ai-sync-v1-fixture`; the test lays the same files out elsewhere, points the databases'
 * paths and inodes at them (as if the files had always been there), and runs each worker.
 */
import { DatabaseSync } from "node:sqlite";
import { dirname } from "node:path";
import { zstdCompressSync } from "node:zlib";
import { assertEquals } from "./assert.ts";
import { startFaultServer } from "./fault_server.ts";
import { REPO, runWorker, workerConfig } from "./helpers.ts";

const OLD_ROOT = "/tmp/ai-sync-v1-fixture";
const FIXTURES = `${REPO}/tests/fixtures`;
const opts = { sanitizeOps: false, sanitizeResources: false };

/** The files as the v1 databases knew them, under `root`. */
async function layOut(root: string): Promise<void> {
  const copy = async (from: string, to: string) => {
    await Deno.mkdir(dirname(`${root}/${to}`), { recursive: true });
    await Deno.copyFile(`${FIXTURES}/${from}`, `${root}/${to}`);
  };
  const shop = "claude_code/-home-dev-shop";
  const session = "11111111-1111-4111-8111-111111111111";
  await copy(`${shop}/${session}.jsonl`, `${shop}/${session}.jsonl`);
  await copy(`${shop}/agent-b9d1.jsonl`, `${shop}/agent-b9d1.jsonl`);
  for (const file of ["agent-a7c3.jsonl", "agent-a7c3.meta.json"]) {
    await copy(`${shop}/${session}/subagents/${file}`, `${shop}/${session}/subagents/${file}`);
  }
  await copy(
    "codex/rollout-2026-11-20T10-00-00-019a0000-0000-7000-8000-000000000171.jsonl",
    "codex/rollout-2026-11-20T10-00-00-019a0000-0000-7000-8000-000000000171.jsonl",
  );
  await copy(
    "codex/rollout-2025-04-20-0d0e0f00-aaaa-4bbb-8ccc-000000000001.json",
    "codex/rollout-2025-04-20-0d0e0f00-aaaa-4bbb-8ccc-000000000001.json",
  );
  const compressed = "rollout-2025-10-20T10-00-00-5c0a0047-0000-4000-8000-000000000047.jsonl";
  await Deno.writeFile(
    `${root}/codex/${compressed}.zst`,
    zstdCompressSync(await Deno.readFile(`${FIXTURES}/codex/${compressed}`)),
  );
  for (
    const file of [
      "session-2026-11-22T15-00-5e551011.jsonl",
      "session-2025-12-01T08-00-1e9ac700.json",
    ]
  ) {
    await copy(`gemini_cli/${file}`, `gemini_cli/proj/chats/${file}`);
  }
  for (const file of ["logs.json", "checkpoint-release.json"]) {
    await copy(`gemini_cli/${file}`, `gemini_cli/proj/${file}`);
  }
}

/** Points a v1 database's paths at `root` and its inodes at the files there. */
function repoint(path: string, root: string): void {
  const db = new DatabaseSync(path);
  const units = db.prepare("SELECT key FROM units").all() as { key: string }[];
  for (const { key } of units) {
    const now = key.replace(OLD_ROOT, root);
    const info = Deno.statSync(now);
    db.prepare("UPDATE units SET key = ?, path = ?, dev = ?, ino = ? WHERE key = ?")
      .run(now, now, info.dev ?? 0, info.ino ?? 0, key);
  }
  db.prepare("UPDATE conversation_units SET unit = replace(unit, ?, ?)").run(OLD_ROOT, root);
  db.close();
}

Deno.test({
  name: "state migration: a v1 state database is migrated on first start; nothing is sent again",
  ...opts,
  fn: async (t) => {
    const fs = startFaultServer();
    try {
      const root = await Deno.makeTempDir();
      await layOut(root);
      await Deno.mkdir(`${root}/state`);
      await Deno.writeTextFile(`${root}/config.yaml`, workerConfig(fs));
      for (
        const [worker, flag] of [
          ["claude_code", "projects-dir"],
          ["codex", "sessions-dir"],
          ["gemini_cli", "data-dir"],
        ]
      ) {
        await t.step(worker, async () => {
          const state = `${root}/state/${worker}.state.db`;
          await Deno.copyFile(`${FIXTURES}/state_v1/${worker}.state.db`, state);
          repoint(state, root);
          const args = [
            "--config",
            `${root}/config.yaml`,
            "--state-dir",
            `${root}/state`,
            `--${flag}`,
            `${root}/${worker}`,
            "--once",
          ];
          const before = fs.requests.length;
          const out = await runWorker(args, {}, worker);
          assertEquals(out.code, 0, out.stderr);
          const sent = fs.requests.slice(before).filter((r) => r.conversations.length > 0);
          assertEquals(sent.map((r) => r.conversations), [], "nothing is sent again");
          assertEquals(JSON.parse(out.stdout).messages, 0);
        });
      }
      await t.step("and reading goes on where it stopped", async () => {
        const session =
          `${root}/claude_code/-home-dev-shop/11111111-1111-4111-8111-111111111111.jsonl`;
        await Deno.writeTextFile(
          session,
          JSON.stringify({
            type: "user",
            uuid: "after-migration",
            parentUuid: null,
            sessionId: "11111111-1111-4111-8111-111111111111",
            timestamp: "2025-11-20T11:00:00.000Z",
            message: { role: "user", content: "one more" },
          }) + "\n",
          { append: true },
        );
        const before = fs.requests.length;
        const out = await runWorker([
          "--config",
          `${root}/config.yaml`,
          "--state-dir",
          `${root}/state`,
          "--projects-dir",
          `${root}/claude_code`,
          "--once",
        ]);
        assertEquals(out.code, 0, out.stderr);
        const sent = fs.requests.slice(before).filter((r) => r.conversations.length > 0);
        assertEquals(sent.length, 1);
        assertEquals(JSON.parse(out.stdout).messages, 1, "only the new line");
      });
    } finally {
      await fs.close();
    }
  },
});
