/**
 * Faults of the state directory (RELIABILITY T19, T21): a full disk, a read-only mount, a
 * damaged page, two instances at once. Each gives a message that names the file and the right
 * fix, and nothing is lost. The disk faults use a real tmpfs mount; where mounting is not
 * permitted those steps say so and are skipped.
 */
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { sessionLines } from "../bench/corpus.ts";
import {
  delay,
  eventually,
  runWorker,
  scratch,
  serverUuids,
  spawnWorker,
  startServer,
} from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function sh(cmd: string, ...args: string[]): boolean {
  return new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).outputSync().success;
}

/** A tmpfs of `size` at `dir`, or `undefined` (with a message) where mounting is not allowed. */
function tmpfs(
  dir: string,
  size: string,
): { remount(flags: string): void; unmount(): void } | undefined {
  Deno.mkdirSync(dir, { recursive: true });
  if (!sh("mount", "-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir)) {
    console.log(`skipping: cannot mount a tmpfs at ${dir} (needs root with CAP_SYS_ADMIN)`);
    return undefined;
  }
  return {
    remount: (flags) => void sh("mount", "-o", `remount,${flags}`, dir),
    unmount: () => void sh("umount", "-l", dir),
  };
}

async function writeSessions(data: string, count: number, seed = 1): Promise<number> {
  await Deno.mkdir(`${data}/-p`, { recursive: true });
  let messages = 0;
  for (let i = 0; i < count; i++) {
    const id = `0f00000${i}-0000-4000-8000-00000000000${seed}`;
    const lines = sessionLines({ sessionId: id, turns: 3, seed: seed * 10 + i });
    messages += lines.length - 1;
    await Deno.writeTextFile(`${data}/-p/${id}.jsonl`, lines.join("\n") + "\n");
  }
  return messages;
}

/** Fills the filesystem of `dir` until only about `leave` bytes are free. */
async function fill(dir: string, leave: number): Promise<void> {
  const filler = await Deno.open(`${dir}/filler`, { write: true, create: true });
  const block = new Uint8Array(16 * 1024);
  try {
    while (true) {
      const free = Number(
        new TextDecoder().decode(
          new Deno.Command("stat", { args: ["-f", "-c", "%a*%S", dir] }).outputSync().stdout,
        ).trim().split("*").reduce((a, b) => String(Number(a) * Number(b))),
      );
      if (free <= leave) break;
      await filler.write(block.subarray(0, Math.min(block.length, free - leave)));
    }
  } catch {
    // ENOSPC: full.
  } finally {
    filler.close();
  }
}

Deno.test({
  name: "state faults: a full disk pauses and names the cause; space freed, delivery resumes",
  ...opts,
  fn: async (t) => {
    const server = await startServer();
    try {
      await t.step("during the first backfill: incomplete, not done", async () => {
        // One batch per conversation: each commit adds to the WAL, which outgrows the room.
        const s = await scratch(server, { extra: "  batch_size: 1\n" });
        const mount = tmpfs(s.state, "4m");
        if (!mount) return;
        const expected = await writeSessions(s.data, 9);
        // Room to open the state database, not to commit the whole backfill.
        await fill(s.state, 320 * 1024);
        const worker = spawnWorker(s.base);
        try {
          await worker.waitFor("backfill incomplete", 20_000);
          assertStringIncludes(worker.stderr(), "the disk is full");
          assert(!worker.stderr().includes("cannot rollback"), "the failed rollback hides nothing");
          assert(!worker.stderr().includes("backfill done"), "no claim that the backfill is done");
          await Deno.remove(`${s.state}/filler`);
          await eventually(
            () => serverUuids(server).length === expected,
            20_000,
            "delivery once space is free",
          );
          await worker.waitFor("the state database is writable again");
        } finally {
          await worker.stop();
          await delay(100);
          mount.unmount();
        }
      });

      await t.step("while watching", async () => {
        const s = await scratch(server);
        const mount = tmpfs(s.state, "4m");
        if (!mount) return;
        const worker = spawnWorker(s.base);
        try {
          await worker.waitFor("backfill done");
          await fill(s.state, 0);
          const expected = await writeSessions(s.data, 4, 3);
          await worker.waitFor("the disk is full", 20_000);
          await Deno.remove(`${s.state}/filler`);
          await eventually(
            () => serverUuids(server).length >= expected,
            20_000,
            "delivery once space is free",
          );
        } finally {
          await worker.stop();
          await delay(100);
          mount.unmount();
        }
      });
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "state faults: a read-only state directory is not called damaged",
  ...opts,
  fn: async () => {
    const s = await scratch(null);
    const mount = tmpfs(s.state, "16m");
    if (!mount) return;
    try {
      await writeSessions(s.data, 1);
      assertEquals((await runWorker([...s.base, "--once"])).code, 0);
      mount.remount("ro");
      await writeSessions(s.data, 2, 2);
      const out = await runWorker([...s.base, "--once"]);
      assertEquals(out.code, 1);
      assertStringIncludes(out.stderr, `${s.state}/claude_code`);
      assertStringIncludes(out.stderr, "cannot be written");
      assert(!out.stderr.includes("move it aside"), `wrong advice:\n${out.stderr}`);
    } finally {
      mount.unmount();
    }
  },
});

Deno.test({
  name: "state faults: a damaged page is reported with the file and what to do",
  ...opts,
  fn: async () => {
    const s = await scratch(null);
    await writeSessions(s.data, 3);
    assertEquals((await runWorker([...s.base, "--once"])).code, 0);
    const path = `${s.state}/claude_code.state.db`;
    // Checkpoint the WAL into the file, then garble a page in the middle (not the header).
    const db = new (await import("node:sqlite")).DatabaseSync(path);
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    db.close();
    const bytes = await Deno.readFile(path);
    assert(bytes.length >= 3 * 4096, `the database has ${bytes.length} bytes`);
    // Pages 2 and 3 from their headers on: the b-tree structure, not just the data in it.
    for (let i = 4096; i < 3 * 4096; i++) bytes[i] = (i * 131) % 256;
    await Deno.writeFile(path, bytes);
    const out = await runWorker([...s.base, "--once"]);
    assertEquals(out.code, 1);
    assertStringIncludes(out.stderr, `state database ${path} is unreadable: it is damaged`);
    assertStringIncludes(out.stderr, "move it aside to start over");
  },
});

Deno.test({
  name: "state faults: a second instance on the same state directory exits naming the first",
  ...opts,
  fn: async () => {
    const s = await scratch(null);
    await writeSessions(s.data, 1);
    const first = spawnWorker(s.base);
    try {
      await first.waitFor("backfill done");
      const second = await runWorker([...s.base, "--once"]);
      assertEquals(second.code, 2);
      assertStringIncludes(
        second.stderr,
        `another claude_code worker is running with the state directory ${s.state}`,
      );
      assertStringIncludes(second.stderr, `pid ${first.child.pid}`);
    } finally {
      await first.stop();
    }
    // Once the first has stopped, the state directory is free again.
    assertEquals((await runWorker([...s.base, "--once"])).code, 0);
  },
});
