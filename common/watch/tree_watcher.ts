/**
 * Watching a directory tree: `Deno.watchFs` events are hints, gathered
 * in a set and handed on after a debounce; an overflow (`rescan`) or a watcher error asks for a
 * full rescan. A root that does not exist yet is retried by {@link TreeWatcher.ensure}.
 *
 * @module
 */
import type { Logger } from "../log.ts";

/** Changed paths, or `"rescan"` when events were lost and everything must be looked at. */
export type ChangeSet = Set<string> | "rescan";

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

  /** Watches `root`, calling `onChange` at most once per `debounceMs()`. */
  constructor(
    readonly root: string,
    readonly onChange: (changes: ChangeSet) => void,
    readonly debounceMs: () => number,
    readonly log: Logger,
  ) {}

  /** Whether the watch is active. */
  get active(): boolean {
    return this.#watcher !== undefined;
  }

  /** Starts watching if not already (returns false when the root is not there yet). */
  ensure(): boolean {
    if (this.#watcher || this.#closed) return this.#watcher !== undefined;
    try {
      this.#watcher = Deno.watchFs(this.root, { recursive: true });
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        this.log.warn(
          `cannot watch ${this.root}: ${(error as Error).message}; relying on periodic checks`,
        );
      }
      return false;
    }
    this.#loop(this.#watcher);
    return true;
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
        this.log.warn(`watcher of ${this.root} failed: ${(error as Error).message}; rescanning`);
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
    try {
      this.#watcher?.close();
    } catch {
      // Already closed by a failure.
    }
    this.#watcher = undefined;
  }
}
