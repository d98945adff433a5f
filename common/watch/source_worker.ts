/**
 * The worker for sources that append lines to files (Claude Code, Codex, Gemini CLI JSONL): the
 * seed's interface (`name`, `sourceType`, `start()`, `stop()`, `check()`) over the shared
 * {@link Pipeline}, with discovery, watching and the periodic reconcile.
 *
 * @module
 */
import type { ReadScope } from "../io/guarded_file.ts";
import type { Logger } from "../log.ts";
import { type Pipeline, StoppedError } from "../delivery/pipeline.ts";
import type { Intake, IntakeContext } from "../intake.ts";
import type { FileRef, UnitRules } from "../units/unit.ts";
import { StateDatabaseError } from "../state/state.ts";
import type { Parser } from "../source.ts";
import type { SourceType } from "../types.ts";
import { type FileStat, statFile } from "../units/lines.ts";
import { isInside } from "./walk.ts";
import { type ChangeSet, nextCheckMs, TreeWatcher, type WatchFs } from "./tree_watcher.ts";

/**
 * What a file source supplies: where its files are, how to read them, and which of its units
 * continue others.
 */
export interface FileSource<Carry, Hint = unknown> extends UnitRules<Hint> {
  /** Worker name (`claude_code`). */
  name: string;
  sourceType: SourceType;
  /** What the files are, for messages ("Claude Code sessions"). */
  label: string;
  parser: Parser<Carry, Hint>;
  /**
   * Every file of the source under `root`; `warn` reports what was passed over and why, and
   * side files (metadata beside a session) are read only through `files` (by default the
   * source's own roots).
   */
  discover(
    root: string,
    warn: (message: string) => void,
    files?: ReadScope,
    /** Told of files passed over on purpose (a name that is not the source's), for debug logs. */
    skip?: (message: string) => void,
    /**
     * Whether `root` is the source's own folder (`false`: a further folder the config lists,
     * such as `~/Downloads`, where only files named like the source's are touched).
     */
    own?: boolean,
  ): Promise<FileRef<Hint>[]>;
  /** The file at `path`, if it is one of the source's; `null` otherwise. */
  classify(
    path: string,
    root: string,
    files?: ReadScope,
    own?: boolean,
  ): Promise<FileRef<Hint> | null>;
  /**
   * Other paths to look at when `path` changes: a `.jsonl` rollout that disappears may have
   * just been compressed, and its `.zst` is then ready.
   */
  related?(path: string): string[];
  /** Its intake besides the files (a mailbox), when its config turns one on. */
  intake?(ctx: IntakeContext): Intake | undefined;
}

/**
 * The seed's worker interface, kept by every worker.
 */
export interface SyncWorker {
  readonly name: string;
  readonly sourceType: SourceType;
  /** Backfills, then keeps watching until {@link SyncWorker.stop}. */
  start(): Promise<Error | undefined>;
  /** Stops taking work and finishes or abandons the in-flight batch. */
  stop(): Promise<void>;
  /** One full pass: find files, read what is new, deliver it. */
  check(): Promise<CheckResult>;
}

/** What one check found. */
export interface CheckResult {
  files: number;
  /** Bytes not yet read when the check began. */
  backlogBytes: number;
}

/** Timing settings, read at each use so a config reload applies. */
export interface SourceWorkerTiming {
  debounceMs: () => number;
  checkIntervalMs: () => number;
  /** How soon a check that failed on the state database is tried again (30 s by default). */
  retryMs?: () => number;
  /** Whether to watch at all (`worker.watch`; false: poll, as on a network file system). */
  watch?: () => boolean;
  /** How often a folder is checked while it is not watched (`worker.poll_interval`). */
  pollIntervalMs?: () => number;
}

/**
 * A worker over append-only line files.
 *
 * @example Run one check over a folder
 * ```ts
 * import { SourceWorker } from "./source_worker.ts";
 * import { Pipeline } from "../delivery/pipeline.ts";
 * import { EmbeddedSink } from "../delivery/store_sinks.ts";
 * import { StateStore } from "../state/state.ts";
 * import { ReadScope } from "../io/guarded_file.ts";
 * import { Logger } from "../log.ts";
 * import { ConfigSchema } from "../config.ts";
 * import { deliverySettings, watchTiming } from "../engine/settings.ts";
 * import { ConversationStore } from "../../store/store.ts";
 * import { claudeCodeSource } from "../../workers/claude_code/source.ts";
 * const root = await Deno.makeTempDir();
 * const config = ConfigSchema.parse({});
 * const log = new Logger("doc", "error");
 * const pipeline = new Pipeline({
 *   sourceType: "claude_code", parser: claudeCodeSource.parser, state: new StateStore(":memory:"),
 *   sink: new EmbeddedSink(new ConversationStore(":memory:")), log, host: "h",
 *   scope: new ReadScope([root]), settings: () => deliverySettings(config, true),
 * });
 * const worker = new SourceWorker(claudeCodeSource, root, pipeline, log, watchTiming(() => config));
 * console.log(await worker.check()); // { files: 0, backlogBytes: 0 }
 * ```
 */
export class SourceWorker<Carry, Hint = unknown> implements SyncWorker {
  /** The last check's time (ISO), or ''. */
  lastCheck = "";
  /** Bytes behind at the last check. */
  backlogBytes = 0;
  /** Files found at the last check. */
  files = 0;
  /** Calls made for every check, after it ends. */
  onCheck: ((result: CheckResult) => void) | undefined;
  #refs = new Map<string, FileRef<Hint>>();
  /** One watcher per root. */
  #watchers: TreeWatcher[];
  #running: Promise<void> | undefined;
  #again: ChangeSet | undefined;
  #reconcile: ReturnType<typeof setTimeout> | undefined;
  #recovered = false;
  #stopped = false;
  #rootWarned = "";
  /** How long the last full check took (polls are spaced by it). */
  #lastCheckMs = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;
  /** Why the last check failed, while it has not succeeded since. */
  lastFailure: Error | undefined;

  /**
   * Creates the worker for `root` and the optional `extraRoots` beside it (Codex's
   * `archived_sessions`), which are watched too but may be missing without a warning;
   * `watchFs` starts a watch (a test gives one that fails as the system's limit does).
   */
  constructor(
    readonly source: FileSource<Carry, Hint>,
    readonly root: string,
    readonly pipeline: Pipeline<Carry, Hint>,
    readonly log: Logger,
    readonly timing: SourceWorkerTiming,
    readonly extraRoots: readonly string[] = [],
    watchFs?: WatchFs,
  ) {
    this.#watchers = [root, ...extraRoots].map((r) =>
      new TreeWatcher(r, (changes) => this.#request(changes), timing.debounceMs, log, watchFs)
    );
  }

  /** Where side files may be read from: the pipeline's scope. */
  get #files(): ReadScope {
    return this.pipeline.options.scope;
  }

  /** The worker's name. */
  get name(): string {
    return this.source.name;
  }

  /** The batch `source_type`. */
  get sourceType(): SourceType {
    return this.source.sourceType;
  }

  /** One full pass over every file. */
  async check(): Promise<CheckResult> {
    const started = performance.now();
    const refs = await this.#discover();
    if (!this.#recovered) {
      await this.pipeline.recoverPending(refs);
      this.#recovered = true;
    }
    // One stat per file serves both the backlog figure (progress, status) and the read.
    const known = this.pipeline.options.state.offsets();
    const stats = new Map<string, FileStat | null | undefined>();
    let backlog = 0;
    for (const ref of refs.values()) {
      let stat: FileStat | null | undefined;
      try {
        stat = await statFile(ref.path);
      } catch {
        stat = undefined; // syncFile stats again and reports the error.
      }
      stats.set(ref.path, stat);
      const unit = known.get(ref.path);
      if (stat) backlog += this.pipeline.backlog(ref, stat, unit);
    }
    this.backlogBytes = backlog;
    for (const ref of refs.values()) {
      if (this.pipeline.stopping) break;
      const stat = stats.get(ref.path);
      // Let go as the files are read: a first backfill of 50,000 sessions held them all.
      stats.delete(ref.path);
      await this.pipeline.syncFile(ref, stat);
    }
    await this.pipeline.flush();
    for (const [key, unit] of known) {
      if (unit.active && !refs.has(key)) this.pipeline.markDeleted(key);
    }
    this.lastCheck = new Date().toISOString();
    this.backlogBytes = 0;
    this.#lastCheckMs = performance.now() - started;
    const result = { files: refs.size, backlogBytes: backlog };
    this.onCheck?.(result);
    return result;
  }

  async #discover(): Promise<Map<string, FileRef<Hint>>> {
    const refs = new Map<string, FileRef<Hint>>();
    const warn = (m: string) => this.log.warn(m);
    try {
      const skip = (m: string) => this.log.debug(m);
      for (const ref of await this.source.discover(this.root, warn, this.#files, skip, true)) {
        refs.set(ref.path, ref);
      }
      this.#rootWarned = "";
      for (const extra of this.extraRoots) {
        try {
          for (const ref of await this.source.discover(extra, warn, this.#files, skip, false)) {
            refs.set(ref.path, ref);
          }
        } catch (error) {
          if (!(error instanceof Deno.errors.NotFound)) {
            this.log.warn(`cannot read ${extra}: ${(error as Error).message}`);
          }
        }
      }
    } catch (error) {
      const message = error instanceof Deno.errors.NotFound
        ? `${this.root} does not exist yet; waiting for ${this.source.label} to appear`
        : `cannot read ${this.root}: ${(error as Error).message}`;
      if (this.#rootWarned !== message) {
        if (error instanceof Deno.errors.NotFound) this.log.warn(message);
        else this.pipeline.recordError(message);
        this.#rootWarned = message;
      }
      // Keep the last known files so a passing error does not mark them deleted.
      return this.#refs;
    }
    this.#refs = refs;
    this.files = refs.size;
    return refs;
  }

  /**
   * What the watcher does with a change set: reads only the files the events name; a directory
   * that appears (created, or moved in with files no event named) gets a full check, and so
   * does an overflow (`"rescan"`).
   */
  async checkChanges(changes: ChangeSet): Promise<void> {
    if (changes === "rescan") {
      await this.check();
      return;
    }
    const refs: FileRef<Hint>[] = [];
    const paths = new Set(changes);
    for (const path of changes) {
      for (const other of this.source.related?.(path) ?? []) paths.add(other);
    }
    for (const path of paths) {
      const root = [this.root, ...this.extraRoots].find((r) => isInside(path, r)) ?? this.root;
      const ref = this.#refs.get(path) ??
        await this.source.classify(path, root, this.#files, root === this.root);
      if (ref) {
        refs.push(ref);
        this.#refs.set(ref.path, ref);
      } else if (await isDirectory(path)) {
        await this.check();
        return;
      }
    }
    for (const ref of refs) await this.pipeline.syncFile(ref);
    await this.pipeline.flush();
    this.files = this.#refs.size;
    this.lastCheck = new Date().toISOString();
    this.onCheck?.({ files: this.files, backlogBytes: 0 });
  }

  #request(changes: ChangeSet): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = mergeChanges(this.#again, changes);
      return;
    }
    this.#running = this.#run(changes);
  }

  async #run(changes: ChangeSet | "full"): Promise<void> {
    try {
      if (changes === "full") await this.check();
      else await this.checkChanges(changes);
      if (this.lastFailure instanceof StateDatabaseError) {
        this.pipeline.stats.pausedReason = "";
        this.log.info("the state database is writable again; delivery goes on");
      }
      this.lastFailure = undefined;
    } catch (error) {
      if (!(error instanceof StoppedError)) {
        this.lastFailure = error as Error;
        if (error instanceof StateDatabaseError) {
          // Nothing moves while checkpoints cannot be written: pause, and try again soon.
          const retryMs = this.timing.retryMs?.() ?? 30_000;
          this.pipeline.stats.pausedReason = error.message;
          this.pipeline.recordError(`${error.message}; trying again in ${retryMs / 1000} s`);
          clearTimeout(this.#retry);
          this.#retry = setTimeout(() => this.#request("rescan"), retryMs);
        } else this.pipeline.recordError(`check failed: ${(error as Error).message}`);
      }
    } finally {
      this.#running = undefined;
      const again = this.#again;
      this.#again = undefined;
      if (again && !this.#stopped) this.#running = this.#run(again);
    }
  }

  /**
   * Watches and backfills; returns once the first check is done, with the reason it failed if
   * it did (it is tried again by itself).
   */
  async start(): Promise<Error | undefined> {
    // Watch before the first check, so nothing written during the backfill is missed.
    this.#ensureWatching();
    this.#running = this.#run("full");
    await this.#running;
    const failure = this.lastFailure;
    const tick = () => {
      if (this.#stopped) return;
      this.#ensureWatching();
      this.#request("rescan");
      this.#reconcile = setTimeout(tick, this.#nextCheckMs());
    };
    this.#reconcile = setTimeout(tick, this.#nextCheckMs());
    return failure;
  }

  /**
   * Why a folder is polled rather than watched (`worker.watch` off, or a folder that cannot be
   * watched), or `""` while every folder that is there is watched.
   */
  get polling(): string {
    if (!(this.timing.watch?.() ?? true)) return "worker.watch is false";
    const unwatched = this.#watchers.find((w) => w.problem !== "");
    return unwatched ? `${unwatched.root}: ${unwatched.problem}` : "";
  }

  #ensureWatching(): void {
    const watch = this.timing.watch?.() ?? true;
    for (const watcher of this.#watchers) watch ? watcher.ensure() : watcher.release();
  }

  /** The full check is the safety net behind events; without them, it is how changes are seen. */
  #nextCheckMs(): number {
    const checkMs = this.timing.checkIntervalMs();
    const pollMs = this.timing.pollIntervalMs?.() ?? checkMs;
    return nextCheckMs({ checkMs, pollMs }, this.polling !== "", this.#lastCheckMs);
  }

  /** Stops watching and waits for the running check to end. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reconcile);
    clearTimeout(this.#retry);
    for (const watcher of this.#watchers) watcher.close();
    this.pipeline.stop();
    await this.#running;
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch {
    return false;
  }
}

function mergeChanges(a: ChangeSet | undefined, b: ChangeSet): ChangeSet {
  if (!a) return b;
  if (a === "rescan" || b === "rescan") return "rescan";
  return new Set([...a, ...b]);
}
