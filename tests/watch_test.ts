import { assert, assertEquals } from "./assert.ts";
import { type ChangeSet, TreeWatcher } from "../common/watch/tree_watcher.ts";
import { Logger } from "../common/log.ts";
import { delay, eventually } from "./helpers.ts";

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
