import { dirname } from "node:path";
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { sessionLines } from "../bench/corpus.ts";
import { StateStore } from "../common/state/state.ts";
import { Logger } from "../common/log.ts";
import { Pipeline } from "../common/delivery/pipeline.ts";
import { deliverySettings } from "../common/engine/settings.ts";
import { ConfigSchema } from "../common/config.ts";
import { EmbeddedSink } from "../common/delivery/store_sinks.ts";
import { ReadScope } from "../common/io/guarded_file.ts";
import { ConversationStore } from "../store/store.ts";
import { parseClaudeCode } from "../parsers/claude_code.ts";
import { type FaultServer, startFaultServer } from "./fault_server.ts";
import { runWorker, spawnWorker } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A pipeline with the default settings into an in-memory store. */
function embeddedPipeline() {
  const state = new StateStore(":memory:");
  const store = new ConversationStore(":memory:");
  const pipeline = new Pipeline({
    sourceType: "claude_code",
    parser: parseClaudeCode,
    state,
    sink: new EmbeddedSink(store),
    log: new Logger("test", "error"),
    host: "h",
    // The tests' files are made with Deno.makeTempDir: their parent is the root.
    scope: new ReadScope([dirname(Deno.makeTempDirSync())]),
    settings: () => deliverySettings(ConfigSchema.parse({}), false),
  });
  return { pipeline, state, store };
}

/** A project of `sessions` sessions, each a conversation of its own. */
async function project(token: string, url: string, shutdownTimeout = 1, sessions = 1) {
  const dir = await Deno.makeTempDir();
  const id = "30000000-0000-4000-8000-000000000001";
  await Deno.mkdir(`${dir}/projects/-p`, { recursive: true });
  let expected = 0;
  for (let n = 1; n <= sessions; n++) {
    const sessionId = `${id.slice(0, -1)}${n}`;
    const lines = sessionLines({ sessionId, turns: 2 });
    await Deno.writeTextFile(`${dir}/projects/-p/${sessionId}.jsonl`, lines.join("\n") + "\n");
    expected += lines.length - 1;
  }
  await Deno.writeTextFile(
    `${dir}/config.yaml`,
    `server:\n  base_url: ${url}\n  timeout: 30\nsecurity:\n  worker_token: ${token}\nworker:\n  shutdown_timeout: ${shutdownTimeout}\n  batch_size: 1\n`,
  );
  return {
    dir,
    id,
    expected,
    base: [
      "--config",
      `${dir}/config.yaml`,
      "--state-dir",
      `${dir}/state`,
      "--projects-dir",
      `${dir}/projects`,
    ],
  };
}

/**
 * A worker on a project of `sessions` sessions (a batch each) whose first `hung` batches the
 * server holds without answering, all sent.
 */
async function workerWithHungBatch(
  fs: FaultServer,
  shutdownTimeout = 1,
  hung = 1,
  sessions = hung,
) {
  for (let n = 0; n < hung; n++) fs.faults.push({ slowMs: 20_000 });
  const p = await project(fs.token, fs.url, shutdownTimeout, sessions);
  const worker = spawnWorker(p.base);
  const until = performance.now() + 15_000;
  while (fs.requests.length < hung && performance.now() < until) {
    await new Promise((r) => setTimeout(r, 20));
  }
  assertEquals(fs.requests.length, hung, `${hung} batch(es) sent before any is answered`);
  return { p, worker };
}

/** Sends SIGTERM; the milliseconds the worker took to exit, which it must do with 0. */
async function stopTime(worker: ReturnType<typeof spawnWorker>): Promise<number> {
  const t0 = performance.now();
  worker.child.kill("SIGTERM");
  assertEquals(await worker.exit(), 0);
  return performance.now() - t0;
}

Deno.test({
  name: "lifecycle: SIGTERM abandons a hung batch after shutdown_timeout; a restart delivers it",
  ...opts,
  fn: async () => {
    const fs = startFaultServer();
    try {
      const { p, worker } = await workerWithHungBatch(fs);
      const took = await stopTime(worker);
      assert(
        took >= 900 && took < 5000,
        `stopped after ${Math.round(took)} ms, expected about shutdown_timeout (1 s)`,
      );
      assertStringIncludes(worker.stderr(), "stopping: finishing the in-flight batch");
      const state = new StateStore(`${p.dir}/state/claude_code.state.db`);
      assertEquals(
        state.listUnits().map((u) => u.offset),
        [],
        "no checkpoint for an unacknowledged batch",
      );
      assertEquals(state.pendingBatches().length, 1);
      state.close();
      const again = await runWorker([...p.base, "--once"]);
      assertEquals(again.code, 0, again.stderr);
      assertStringIncludes(again.stderr, "re-sending batch");
      assertEquals(
        fs.requests.at(-1)!.key,
        fs.requests[0].key,
        "the same Idempotency-Key after the restart",
      );
      assertEquals(fs.store.stats().total_messages, p.expected);
    } finally {
      await fs.close();
    }
  },
});

Deno.test({
  name: "lifecycle: SIGTERM with two batches in flight; a restart re-sends both in order, once",
  ...opts,
  fn: async () => {
    const fs = startFaultServer();
    try {
      // Two sent before either is answered: two in flight.
      const { p, worker } = await workerWithHungBatch(fs, 1, 2, 3);
      const took = await stopTime(worker);
      assert(took < 5000, `stopped after ${Math.round(took)} ms, expected about 1 s`);
      const state = new StateStore(`${p.dir}/state/claude_code.state.db`);
      assertEquals(state.listUnits().map((u) => u.offset), [], "no checkpoint moved");
      assertEquals(
        state.pendingBatches().map((b) => b.key),
        fs.requests.map((r) => r.key),
        "both batches recorded, in the order they were sent",
      );
      state.close();
      const sent = fs.requests.length;
      const again = await runWorker([...p.base, "--once"]);
      assertEquals(again.code, 0, again.stderr);
      assertEquals(
        fs.requests.slice(sent, sent + 2).map((r) => r.key),
        fs.requests.slice(0, 2).map((r) => r.key),
        "the restart re-sends both, first to last, under their keys",
      );
      assertEquals(fs.store.stats().total_messages, p.expected);
      assertEquals(fs.store.stats().total_conversations, 3);
    } finally {
      await fs.close();
    }
  },
});

Deno.test({
  name: "lifecycle: a second signal exits at once",
  ...opts,
  fn: async () => {
    const fs = startFaultServer();
    try {
      const { worker } = await workerWithHungBatch(fs, 30);
      const t0 = performance.now();
      worker.child.kill("SIGINT");
      await new Promise((r) => setTimeout(r, 600));
      worker.child.kill("SIGINT");
      assertEquals(await worker.exit(), 130);
      assert(performance.now() - t0 < 5000);
      assertStringIncludes(worker.stderr(), "second signal, exiting at once");
    } finally {
      await fs.close();
    }
  },
});

Deno.test("lifecycle: a file deleted between discovery and reading is not an error", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/gone.jsonl`;
  await Deno.writeTextFile(path, sessionLines({ sessionId: "s", turns: 1 }).join("\n") + "\n");
  const { pipeline, state, store } = embeddedPipeline();
  await pipeline.syncFile({ path, hint: { kind: "session" as const, sessionId: "s" } });
  await pipeline.flush();
  const delivered = store.stats().total_messages;
  assert(delivered > 0);
  await Deno.remove(path);
  await pipeline.syncFile({ path, hint: { kind: "session" as const, sessionId: "s" } });
  await pipeline.flush();
  assertEquals(pipeline.stats.errors, 0);
  assertEquals(state.getUnit(path)?.status, "deleted");
  assertEquals(store.stats().total_messages, delivered);
  state.close();
  store.close();
});

Deno.test("lifecycle: a file deleted before it was fully read is reported as a loss", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/s.jsonl`;
  const lines = sessionLines({ sessionId: "s", turns: 1 });
  // The writer never finished the last line.
  await Deno.writeTextFile(path, lines.slice(0, -1).join("\n") + "\n" + lines.at(-1)!.slice(0, 50));
  const { pipeline, state, store } = embeddedPipeline();
  const ref = { path, hint: { kind: "session" as const, sessionId: "s" } };
  await pipeline.syncFile(ref);
  await pipeline.flush();
  assertEquals(store.stats().total_messages, lines.length - 2);
  await Deno.remove(path);
  await pipeline.syncFile(ref);
  assertEquals(pipeline.stats.lostBytes, 50);
  assertEquals(state.counters().lost_bytes, 50);
  assertStringIncludes(pipeline.stats.lastError, "deleted before it was fully read: 50 bytes");
  state.close();
  store.close();
});

Deno.test({
  name: "lifecycle: a garbled state database stops the worker with a clear message",
  ...opts,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    await Deno.mkdir(`${dir}/state`);
    await Deno.mkdir(`${dir}/projects`);
    await Deno.writeFile(
      `${dir}/state/claude_code.state.db`,
      Uint8Array.from({ length: 8192 }, (_, i) => (i * 31) % 251),
    );
    const out = await runWorker([
      "--projects-dir",
      `${dir}/projects`,
      "--state-dir",
      `${dir}/state`,
      "--once",
    ]);
    assertEquals(out.code, 1);
    assertStringIncludes(
      out.stderr,
      `state database ${dir}/state/claude_code.state.db is unreadable`,
    );
    assertStringIncludes(out.stderr, "move it aside to start over");
  },
});

Deno.test("lifecycle: a file that reappears after a deletion is read from the start", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/s.jsonl`;
  const first = sessionLines({ sessionId: "s", turns: 2, seed: 1 });
  await Deno.writeTextFile(path, first.join("\n") + "\n");
  const { pipeline, state, store } = embeddedPipeline();
  const ref = { path, hint: { kind: "session" as const, sessionId: "s" } };
  await pipeline.syncFile(ref);
  await pipeline.flush();
  // Seen gone, then back on the same inode with the same first bytes (inode reuse, T14).
  pipeline.markDeleted(path);
  assertEquals(state.getUnit(path)?.status, "deleted");
  const more = sessionLines({ sessionId: "other", turns: 1, seed: 9 }).slice(1);
  await Deno.writeTextFile(path, more.join("\n") + "\n", { append: true });
  const before = pipeline.stats.bytesRead;
  await pipeline.syncFile(ref);
  await pipeline.flush();
  const size = (await Deno.stat(path)).size;
  assertEquals(pipeline.stats.bytesRead - before, size, "read again from offset 0");
  assertEquals(state.getUnit(path)?.status, "active");
  assertEquals(store.stats().total_messages, first.length - 1 + more.length);
  state.close();
  store.close();
});

Deno.test({
  name:
    "lifecycle: one signal delivered twice at once (Ctrl-C plus a forwarding launcher) stops gracefully",
  ...opts,
  fn: async () => {
    const fs = startFaultServer();
    try {
      // A batch in flight makes the graceful stop take shutdown_timeout (1 s).
      const { worker } = await workerWithHungBatch(fs);
      worker.child.kill("SIGINT");
      // Apart enough to be delivered separately (back-to-back signals coalesce in the kernel).
      await new Promise((r) => setTimeout(r, 50));
      worker.child.kill("SIGINT");
      assertEquals(await worker.exit(), 0);
      assertStringIncludes(worker.stderr(), '"msg":"stopped"');
      assert(!worker.stderr().includes("second signal"));
    } finally {
      await fs.close();
    }
  },
});

Deno.test({
  name: "lifecycle: a signal at any point of start-up stops the worker",
  ...opts,
  fn: async () => {
    // The Codex and Gemini CLI engines finish loading after a top-level await (their hasher):
    // the init and the stop wait for the engine's handler instead of being lost before it
    // exists, which left the worker waiting for ever.
    const dir = await Deno.makeTempDir();
    for (const [name, flag] of [["codex", "sessions-dir"], ["gemini_cli", "data-dir"]]) {
      for (const after of [0, 40, 80, 160, 320, 640]) {
        const worker = spawnWorker(
          [`--${flag}`, dir, "--state-dir", `${dir}/state-${name}`],
          {},
          name,
        );
        await new Promise((r) => setTimeout(r, after));
        worker.child.kill("SIGTERM");
        const exited = await Promise.race([
          worker.exit(),
          new Promise<"hung">((r) => setTimeout(() => r("hung"), 15_000)),
        ]);
        if (exited === "hung") worker.child.kill("SIGKILL");
        // 143: the signal came before the worker set its handlers, and nothing had begun.
        assert(
          exited === 0 || (exited === 143 && worker.stderr() === ""),
          `${name}, signal after ${after} ms: exit ${exited}; ${worker.stderr()}`,
        );
      }
    }
  },
});
