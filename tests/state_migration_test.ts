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
import { assert, assertEquals, assertThrows } from "./assert.ts";
import { StateDatabaseError, StateStore } from "../common/state/state.ts";
import { SCHEMA_VERSION } from "../common/state/schema.ts";
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

/** A copy of a v1 fixture database, to open without touching the checked-in one. */
async function copyOfV1(worker: string): Promise<string> {
  const path = `${await Deno.makeTempDir()}/${worker}.state.db`;
  await Deno.copyFile(`${FIXTURES}/state_v1/${worker}.state.db`, path);
  return path;
}

function readV1(path: string): { units: Record<string, unknown>[]; counters: unknown[] } {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return {
      units: db.prepare("SELECT * FROM units ORDER BY key").all() as Record<string, unknown>[],
      counters: db.prepare("SELECT * FROM counters ORDER BY name").all(),
    };
  } finally {
    db.close();
  }
}

function userVersion(path: string): number {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return Number(
      (db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version,
    );
  } finally {
    db.close();
  }
}

Deno.test("state migration: each v1 unit gets its kind and cursor, carry and counters kept", async (t) => {
  const expected: Record<string, Record<string, string>> = {
    claude_code: {
      "11111111-1111-4111-8111-111111111111.jsonl": "appended",
      "agent-a7c3.jsonl": "appended",
      "agent-b9d1.jsonl": "appended",
    },
    codex: {
      "rollout-2025-04-20-0d0e0f00-aaaa-4bbb-8ccc-000000000001.json": "snapshot",
      "rollout-2025-10-20T10-00-00-5c0a0047-0000-4000-8000-000000000047.jsonl.zst": "compressed",
      "rollout-2026-11-20T10-00-00-019a0000-0000-7000-8000-000000000171.jsonl": "appended",
    },
    gemini_cli: {
      "checkpoint-release.json": "snapshot",
      "logs.json": "snapshot",
      "session-2025-12-01T08-00-1e9ac700.json": "snapshot",
      "session-2026-11-22T15-00-5e551011.jsonl": "appended",
    },
  };
  for (const [worker, kinds] of Object.entries(expected)) {
    await t.step(worker, async () => {
      const path = await copyOfV1(worker);
      const v1 = readV1(path);
      assertEquals(userVersion(path), 0, "the fixture is unnumbered");
      const state = new StateStore(path);
      try {
        const units = state.listUnits();
        assertEquals(
          Object.fromEntries(units.map((u) => [u.path.split("/").pop(), u.kind])),
          kinds,
        );
        for (const old of v1.units) {
          const unit = units.find((u) => u.key === old.key)!;
          assertEquals(unit.carry, old.carry, `${old.key}: carry kept byte for byte`);
          assertEquals(unit.offset, old.offset);
          assertEquals([unit.dev, unit.ino], [old.dev, old.ino]);
          assertEquals([unit.fileSize, unit.mtimeMs], [old.file_size, old.mtime_ms]);
          assertEquals(unit.totals, old.totals);
          if (unit.kind === "snapshot") assertEquals(unit.hash, old.tail_hash);
          else {
            assertEquals(
              [unit.headLen, unit.headHash, unit.line, unit.tailHash],
              [old.head_len, old.head_hash, old.line, old.tail_hash],
            );
          }
        }
        assertEquals(Object.entries(state.counters()).length, v1.counters.length);
      } finally {
        state.close();
      }
      assertEquals(userVersion(path), SCHEMA_VERSION);
      // A second open finds nothing to do and changes nothing.
      const again = new StateStore(path);
      assertEquals(again.listUnits().length, v1.units.length);
      again.close();
    });
  }

  await t.step("a dry run migrates a copy in memory and leaves the file as it was", async () => {
    const path = await copyOfV1("codex");
    const bytes = await Deno.readFile(path);
    const state = StateStore.copyInMemory(path);
    assertEquals(state.listUnits().map((u) => u.kind).sort(), [
      "appended",
      "compressed",
      "snapshot",
    ]);
    state.close();
    assertEquals(await Deno.readFile(path), bytes);
    assertEquals(userVersion(path), 0);
  });

  await t.step("a database from a newer version is refused, untouched", async () => {
    const path = await copyOfV1("codex");
    const db = new DatabaseSync(path);
    db.exec("PRAGMA user_version = 7");
    db.close();
    const bytes = await Deno.readFile(path);
    const error = assertThrows(() => new StateStore(path));
    assert(error instanceof StateDatabaseError);
    assertEquals(error.fault, "newer");
    assert(error.message.includes(path) && error.message.includes("schema version 7"));
    assertEquals(await Deno.readFile(path), bytes);
  });
});
