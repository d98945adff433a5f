import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import {
  type ChangeSet,
  nextCheckMs,
  TreeWatcher,
  type WatchFs,
} from "../common/watch/tree_watcher.ts";
import { Logger } from "../common/log.ts";
import { delay, eventually } from "./helpers.ts";
import { rig, withFaults } from "./rig.ts";
import { sessionLines } from "../bench/corpus.ts";
import { claudeCodeSource } from "../workers/claude_code/source.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function watch(dir: string) {
  const changes: ChangeSet[] = [];
  const watcher = new TreeWatcher(
    dir,
    (c) => changes.push(c),
    () => 100,
    new Logger("test", "error"),
  );
  return { watcher, changes };
}

/** Runs `fn` with an active watcher on a fresh directory, closing it afterwards. */
async function withWatcher(
  fn: (dir: string, changes: ChangeSet[]) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const { watcher, changes } = watch(dir);
  try {
    assert(watcher.ensure());
    await fn(dir, changes);
  } finally {
    watcher.close();
  }
}

Deno.test({
  name: "watch: changes are gathered and handed on after the debounce",
  ...opts,
  fn: () =>
    withWatcher(async (dir, changes) => {
      for (let i = 0; i < 5; i++) {
        await Deno.writeTextFile(`${dir}/s${i}.jsonl`, "{}\n", { append: true });
      }
      await eventually(() => changes.length > 0, 5000, "a change set");
      await delay(300);
      const paths = changes.flatMap((c) => c === "rescan" ? [] : [...c]);
      for (let i = 0; i < 5; i++) {
        assert(paths.includes(`${dir}/s${i}.jsonl`), `s${i}.jsonl reported`);
      }
      assert(changes.length <= 2, `debounced into ${changes.length} calls`);
    }),
});

Deno.test({
  name: "watch: an overflowed event queue asks for a full rescan",
  ...opts,
  fn: () =>
    withWatcher(async (dir, changes) => {
      // Thousands of writes while the event loop is blocked overflow Deno's queue (DENO.md §2.3).
      for (let i = 0; i < 5000; i++) Deno.writeTextFileSync(`${dir}/f${i}.jsonl`, "{}\n");
      await eventually(() => changes.includes("rescan"), 10_000, "a rescan request");
    }),
});

Deno.test("watch: a root that does not exist yet is retried, not an error", async () => {
  const dir = `${await Deno.makeTempDir()}/later`;
  const { watcher } = watch(dir);
  try {
    assertEquals(watcher.ensure(), false);
    await Deno.mkdir(dir);
    assertEquals(watcher.ensure(), true);
  } finally {
    watcher.close();
  }
});

/** A watch that fails as Linux's does once the user's inotify watches are used up. */
function limitReached(root: string): never {
  throw new Error(`OS file watch limit reached. about ["${root}/-p"]`);
}

Deno.test("watch: a folder that cannot be watched says why once, with the fix, until it can be", async () => {
  const dir = await Deno.makeTempDir();
  const logPath = await Deno.makeTempFile();
  const log = new Logger("test", "info");
  log.setFile(logPath);
  let full = true;
  const watchFs: WatchFs = (root) =>
    full ? limitReached(root) : Deno.watchFs(root, { recursive: true });
  const watcher = new TreeWatcher(dir, () => {}, () => 100, log, watchFs);
  try {
    for (let i = 0; i < 3; i++) assertEquals(watcher.ensure(), false);
    assertStringIncludes(watcher.problem, "fs.inotify.max_user_watches");
    full = false;
    assert(watcher.ensure());
    assertEquals(watcher.problem, "");
  } finally {
    watcher.close();
    log.close();
  }
  const said = (await Deno.readTextFile(logPath)).trim().split("\n").map((l) => JSON.parse(l).msg);
  assertEquals(said.filter((m: string) => m.startsWith("cannot watch")).length, 1, said.join("\n"));
  assertStringIncludes(said[0], "sudo sysctl fs.inotify.max_user_watches=524288");
  assertEquals(said.at(-1), `watching ${dir} again`);
});

const SESSION = "0c000000-0000-4000-8000-000000000001";

/** Writes a session into `root` and waits for the server to hold it, well before a full check. */
async function sessionArrives(root: string, messages: () => number): Promise<void> {
  const lines = sessionLines({ sessionId: SESSION, turns: 2, seed: 3 });
  await Deno.mkdir(`${root}/-home-dev-p`, { recursive: true });
  await Deno.writeTextFile(`${root}/-home-dev-p/${SESSION}.jsonl`, lines.join("\n") + "\n");
  await eventually(() => messages() === lines.length - 1, 5000, "the session, by polling");
}

Deno.test({
  name: "watch: a worker polls a folder it cannot watch every worker.poll_interval",
  ...opts,
  fn: () =>
    withFaults(async (fs) => {
      const root = await Deno.makeTempDir();
      const r = rig(fs, claudeCodeSource, root, `${root}/state.db`, {
        // A full check only every five minutes: what arrives sooner was polled.
        timing: { checkIntervalMs: () => 300_000, pollIntervalMs: () => 200 },
        watchFs: limitReached,
      });
      try {
        await r.worker.start();
        assertStringIncludes(r.worker.polling, `${root}: the system's limit on watched folders`);
        await sessionArrives(root, () => fs.store.stats().total_messages);
      } finally {
        await r.worker.stop();
        r.state.close();
      }
    }),
});

Deno.test({
  name: "watch: worker.watch false never watches and polls instead",
  ...opts,
  fn: () =>
    withFaults(async (fs) => {
      const root = await Deno.makeTempDir();
      let watches = 0;
      const r = rig(fs, claudeCodeSource, root, `${root}/state.db`, {
        timing: {
          checkIntervalMs: () => 300_000,
          pollIntervalMs: () => 200,
          watch: () => false,
        },
        watchFs: (dir) => {
          watches++;
          return Deno.watchFs(dir, { recursive: true });
        },
      });
      try {
        await r.worker.start();
        assertEquals(r.worker.polling, "worker.watch is false");
        await sessionArrives(root, () => fs.store.stats().total_messages);
        assertEquals(watches, 0, "no watch started");
      } finally {
        await r.worker.stop();
        r.state.close();
      }
    }),
});

Deno.test("watch: polls are spaced by ten times the last check, within the check interval", () => {
  const intervals = { checkMs: 300_000, pollMs: 10_000 };
  assertEquals(nextCheckMs(intervals, false, 5_000), 300_000, "watched: the safety net only");
  assertEquals(nextCheckMs(intervals, true, 200), 10_000, "a quick check: poll_interval");
  // 50,000 sessions at the 0.66 s a check of 10,000 took: 3.3 s a check, polled every 33 s.
  assertEquals(nextCheckMs(intervals, true, 3_300), 33_000);
  assertEquals(nextCheckMs(intervals, true, 60_000), 300_000, "never later than check_interval");
});
