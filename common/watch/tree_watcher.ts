/**
 * Watching a directory tree: `Deno.watchFs` events are hints, gathered
 * in a set and handed on after a debounce; an overflow (`rescan`) or a watcher error asks for a
 * full rescan. A root that does not exist yet is retried by {@link TreeWatcher.ensure}; one that
 * cannot be watched (the system's limit on watches reached) says why once, in
 * {@link TreeWatcher.problem}, and its worker polls it instead.
 *
 * @module
 */
import type { Logger } from "../log.ts";

/** Changed paths, or `"rescan"` when events were lost and everything must be looked at. */
export type ChangeSet = Set<string> | "rescan";

/** Starts a recursive watch of `root` (`Deno.watchFs`, unless a test gives one that fails). */
export type WatchFs = (root: string) => Deno.FsWatcher;

/**
 * Why a folder cannot be watched, said so that a user can fix it: Linux's limit on inotify
 * watches (one per folder, shared by every program of the user: editors and IDEs take many) is
 * the usual reason, and Deno's own words for it ("OS file watch limit reached") do not say
 * which setting that is.
 *
 * @example The watch limit
 * ```ts
 * import { watchProblem } from "./tree_watcher.ts";
 * console.log(watchProblem(new Error("OS file watch limit reached. about [\"/p\"]")));
 * ```
 */
export function watchProblem(error: Error): string {
  return /watch limit/i.test(error.message)
    ? "the system's limit on watched folders is reached (fs.inotify.max_user_watches); raise it: " +
      "`sudo sysctl fs.inotify.max_user_watches=524288`, and to keep it after a reboot, put " +
      "`fs.inotify.max_user_watches=524288` in /etc/sysctl.d/90-ai-sync.conf"
    : error.message;
}

/**
 * How long after a full check the next one comes: every `checkMs` as the safety net behind
 * events, and while polling every `pollMs`, but at least ten times as long as the last check
 * took, so that polling a large history costs at most about a tenth of a core (a check of 10,000
 * unchanged sessions took 0.66 s here: polled every 10 s, 6.6 % of a core).
 *
 * @example A slow check spaces the polls
 * ```ts
 * import { nextCheckMs } from "./tree_watcher.ts";
 * console.log(nextCheckMs({ checkMs: 300_000, pollMs: 10_000 }, true, 50)); // 10000
 * console.log(nextCheckMs({ checkMs: 300_000, pollMs: 10_000 }, true, 3_000)); // 30000
 * console.log(nextCheckMs({ checkMs: 300_000, pollMs: 10_000 }, false, 3_000)); // 300000
 * ```
 */
export function nextCheckMs(
  intervals: { checkMs: number; pollMs: number },
  polling: boolean,
  lastCheckMs: number,
): number {
  const { checkMs, pollMs } = intervals;
  return polling ? Math.min(checkMs, Math.max(pollMs, 10 * lastCheckMs)) : checkMs;
}

/**
 * A debounced recursive watcher.
 *
 * @example Watch a temporary directory
 * ```ts
 * import { TreeWatcher } from "./tree_watcher.ts";
 * import { Logger } from "../log.ts";
 * const dir = await Deno.makeTempDir();
 * const watcher = new TreeWatcher(dir, (changes) => console.log(changes), () => 100, new Logger("doc"));
 * watcher.ensure();
 * watcher.close();
 * ```
 */
export class TreeWatcher {
  #watcher: Deno.FsWatcher | undefined;
  #pending = new Set<string>();
  #rescan = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #problem = "";

  /** Watches `root`, calling `onChange` at most once per `debounceMs()`. */
  constructor(
    readonly root: string,
    readonly onChange: (changes: ChangeSet) => void,
    readonly debounceMs: () => number,
    readonly log: Logger,
    readonly watchFs: WatchFs = (r) => Deno.watchFs(r, { recursive: true }),
  ) {}

  /** Whether the watch is active. */
  get active(): boolean {
    return this.#watcher !== undefined;
  }

  /**
   * Why the root, which is there, is not watched ({@link watchProblem}), or `""`: watched, or not
   * there yet.
   */
  get problem(): string {
    return this.#problem;
  }

  /**
   * Starts watching if not already; returns false when the root is not there yet or cannot be
   * watched (said once per reason, not at every try).
   */
  ensure(): boolean {
    if (this.#watcher || this.#closed) return this.#watcher !== undefined;
    try {
      this.#watcher = this.watchFs(this.root);
    } catch (error) {
      this.#fail(error instanceof Deno.errors.NotFound ? "" : watchProblem(error as Error));
      return false;
    }
    if (this.#problem) this.log.info(`watching ${this.root} again`);
    this.#problem = "";
    this.#loop(this.#watcher);
    return true;
  }

  #fail(problem: string): void {
    if (problem && problem !== this.#problem) {
      this.log.warn(
        `cannot watch ${this.root}: ${problem}; checking it every worker.poll_interval seconds ` +
          `instead`,
      );
    }
    this.#problem = problem;
  }

  /** Stops watching until the next {@link ensure} (`worker.watch: false`). */
  release(): void {
    try {
      this.#watcher?.close();
    } catch {
      // Already closed by a failure.
    }
    this.#watcher = undefined;
  }

  async #loop(watcher: Deno.FsWatcher): Promise<void> {
    try {
      for await (const event of watcher) {
        if (event.flag === "rescan") this.#rescan = true;
        else for (const path of event.paths) this.#pending.add(path);
        this.#schedule();
      }
    } catch (error) {
      if (!this.#closed) {
        // Polled until a watch starts again (a folder made later can take the last watch).
        this.#fail(watchProblem(error as Error));
        this.#rescan = true;
        this.#schedule();
      }
    }
    if (this.#watcher === watcher) this.#watcher = undefined;
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const changes: ChangeSet = this.#rescan ? "rescan" : this.#pending;
      this.#pending = new Set();
      this.#rescan = false;
      this.onChange(changes);
    }, this.debounceMs());
  }

  /** Stops watching. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.release();
  }
}
