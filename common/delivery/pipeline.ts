/**
 * The pipeline shared by every file worker (docs/delivery.md): each unit is read by the reader
 * of its kind (`common/units/`, through the guarded open, so nothing outside the worker's roots
 * is read), parsed by the source's parser ({@link ParseStep}), gathered into batches, recorded,
 * delivered and committed ({@link Batcher}). A failure while reading or parsing one line or one
 * file is reported with the file (and line) and contained there: the rest flows.
 *
 * @module
 */
import type { Sink } from "./sink.ts";
import { Delivery, type DeliverySettings, isDeliveryFailure } from "./delivery.ts";
import { Batcher } from "./batcher.ts";
import { ParseStep } from "./parse_step.ts";
import { MAX_REPORTS, newStats, type PipelineStats } from "./stats.ts";
import { ConfinementError, type ReadScope } from "../io/guarded_file.ts";
import type { Logger } from "../log.ts";
import type { Parser } from "../source.ts";
import type { StateStore } from "../state/state.ts";
import type { SourceType } from "../types.ts";
import type { UnitState } from "../units/cursor.ts";
import { type FileStat, statFile } from "../units/lines.ts";
import { isFile } from "../units/line_reading.ts";
import { appendedFileReader } from "../units/appended_file.ts";
import { compressedFileReader } from "../units/compressed_file.ts";
import { documentReader } from "../units/document.ts";
import { exportReader } from "../units/export.ts";
import type {
  FileForm,
  FileRef,
  Piece,
  PieceRange,
  ReadContext,
  UnitReader,
  UnitRules,
  UnitSummary,
} from "../units/unit.ts";

export { DeliveryError, StoppedError } from "./delivery.ts";
export type { DeliverySettings } from "./delivery.ts";
export type { FileForm, FileRef } from "../units/unit.ts";
export type { PipelineStats } from "./stats.ts";

/** The reader of each form of file. */
const READERS: Record<FileForm, UnitReader> = {
  lines: appendedFileReader,
  zstd: compressedFileReader,
  whole: documentReader,
  export: exportReader,
};

function readerOf(form: FileForm | undefined): UnitReader {
  return READERS[form ?? "lines"];
}

/** Options of a pipeline. */
export interface PipelineOptions<Carry, Hint = unknown> {
  sourceType: SourceType;
  parser: Parser<Carry, Hint>;
  state: StateStore;
  sink: Sink;
  log: Logger;
  host: string;
  /** Where the source's files may be read from; every read goes through it. */
  scope: ReadScope;
  settings: () => DeliverySettings;
  /** The source's rules about units that continue others. */
  rules?: UnitRules<Hint>;
  /** With `--dry-run`: receives each batch body instead of sending it; nothing is committed. */
  dryRun?: (body: string) => void;
}

/**
 * The most characters one conversation parsed at once may hold: four times the most one parse
 * reads (a line, or a chunk of lines or records), and a MiB. A conversation holding more came from
 * a value repeated on every message, and would run the engine out of memory if serialised.
 */
function conversationCharLimit(s: DeliverySettings): number {
  return 4 * Math.max(s.maxLineBytes, s.chunkBytes) + (1 << 20);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The shared pipeline for one source.
 *
 * @example Sync one file into an in-memory store
 * ```ts
 * import { Pipeline } from "./pipeline.ts";
 * import { StateStore } from "../state/state.ts";
 * import { EmbeddedSink } from "./store_sinks.ts";
 * import { ReadScope } from "../io/guarded_file.ts";
 * import { Logger } from "../log.ts";
 * import { ConfigSchema } from "../config.ts";
 * import { deliverySettings } from "../engine/settings.ts";
 * import { ConversationStore } from "../../store/store.ts";
 * import { parseClaudeCode } from "../../parsers/claude_code.ts";
 * const path = await Deno.makeTempFile({ suffix: ".jsonl" });
 * const pipeline = new Pipeline({
 *   sourceType: "claude_code", parser: parseClaudeCode, state: new StateStore(":memory:"),
 *   sink: new EmbeddedSink(new ConversationStore(":memory:")), log: new Logger("doc"), host: "h",
 *   scope: new ReadScope([path]), settings: () => deliverySettings(ConfigSchema.parse({}), false),
 * });
 * await pipeline.syncFile({ path, hint: { kind: "session", sessionId: "s1" } });
 * await pipeline.flush();
 * ```
 */
export class Pipeline<Carry, Hint = unknown> {
  /** Counters since start. */
  readonly stats: PipelineStats = newStats();
  /** Conversation uuids touched by this process. */
  readonly touched: Set<string> = new Set();
  readonly #o: PipelineOptions<Carry, Hint>;
  readonly #delivery: Delivery;
  readonly #batcher: Batcher<Hint>;
  /** Cursors ahead of the committed state: read and batched, not yet acknowledged. */
  readonly #cursors = new Map<string, UnitState>();
  /** Export fingerprints ahead of the committed state, likewise. */
  readonly #marks = new Map<string, string>();
  /** The size each file of lines had when last seen, to tell what a deletion took with it. */
  readonly #sizes = new Map<string, number>();
  /** Files that could not be read, by path, with the stat they had then (not retried until it changes). */
  readonly #failed = new Map<string, string>();
  /** What readers may use of the pipeline. */
  readonly #context: ReadContext<Hint>;

  /** Creates a pipeline. */
  constructor(options: PipelineOptions<Carry, Hint>) {
    this.#o = options;
    this.#delivery = new Delivery({
      sourceType: options.sourceType,
      sink: options.sink,
      state: options.state,
      log: options.log,
      settings: options.settings,
      stats: this.stats,
      recordError: (message, fields) => this.recordError(message, fields),
    });
    this.#batcher = new Batcher({
      sourceType: options.sourceType,
      state: options.state,
      delivery: this.#delivery,
      settings: options.settings,
      stats: this.stats,
      touched: this.touched,
      pending: this.#cursors,
      marks: this.#marks,
      log: options.log,
      dryRun: options.dryRun,
    });
    const parseStep = new ParseStep({
      parser: options.parser,
      host: options.host,
      state: options.state,
      log: options.log,
      pending: this.#cursors,
      skipped: (n) => this.stats.skipped += n,
      problem: (message) => this.recordProblem(message),
      form: options.sink.form ?? "json",
      maxConversationChars: () => conversationCharLimit(options.settings()),
    });
    this.#context = {
      state: options.state,
      scope: options.scope,
      log: options.log,
      limits: () => options.settings(),
      rules: options.rules ?? {},
      stopping: () => this.stopping,
      pending: (key) => this.#cursors.get(key),
      exportDone: (report) => {
        this.stats.exports.push(report);
        if (this.stats.exports.length > MAX_REPORTS) this.stats.exports.shift();
      },
      fingerprint: (key) => this.#marks.get(key) ?? options.state.fingerprint(key),
      parse: (ref, cursor, input, replay) => parseStep.parse(ref, cursor, input, replay),
      problem: (message) => this.recordProblem(message),
      add: (piece) => {
        this.#cursors.set(piece.range.unit, piece.cursor);
        return this.#batcher.add(piece);
      },
      sizeSeen: (path, size) => this.#sizes.set(path, size),
      countRead: (bytes) => this.stats.bytesRead += bytes,
      failOnce: (path, stat, message) => this.#failOnce(path, stat, message),
    };
  }

  /** The options the pipeline was made with. */
  get options(): PipelineOptions<Carry, Hint> {
    return this.#o;
  }

  /** Bytes still to read in a file, from what the state's cheap scan says of it. */
  backlog(ref: FileRef<Hint>, stat: FileStat, known: UnitSummary | undefined): number {
    return readerOf(ref.form).backlog(stat, known);
  }

  /**
   * Records a failure of the worker (delivery, state, a file it could not read, data lost) for
   * status and logs, secrets masked in both. A `--once` run with errors exits 1.
   */
  recordError(message: string, fields: Record<string, unknown> = {}): void {
    this.stats.errors++;
    this.stats.lastError = this.#o.log.redact(message);
    this.stats.lastErrorAt = new Date().toISOString();
    this.#o.log.error(message, fields);
  }

  /**
   * Records a problem with the input (a malformed or over-long line, a file that may not be
   * read): skipped, counted and named, but not a failure of the worker.
   */
  recordProblem(message: string): void {
    this.stats.skipped++;
    this.stats.problems++;
    this.stats.lastProblem = this.#o.log.redact(message);
    this.#o.log.warn(message);
  }

  /**
   * Reads what is new in one file and adds it to the current batch, flushing full batches on
   * the way; `statNow` spares a second stat when the caller has just made one. A file that is
   * gone is marked deleted; what was delivered stays delivered. A file that cannot be read, or
   * may not be (a link out of the roots, a FIFO), is reported and left; only delivery and state
   * failures, which concern every file, are thrown.
   */
  async syncFile(ref: FileRef<Hint>, statNow?: FileStat | null): Promise<void> {
    let stat = statNow;
    try {
      if (stat === undefined) stat = await statFile(ref.path);
    } catch (error) {
      if (error instanceof ConfinementError) this.#failOnce(ref.path, undefined, error.message);
      else this.recordError(`${ref.path}: cannot stat: ${describe(error)}`);
      return;
    }
    if (!stat) {
      this.markDeleted(ref.path);
      return;
    }
    if (this.#failed.get(ref.path) === statKey(stat)) return;
    try {
      await readerOf(ref.form).read(ref, stat, this.#context);
    } catch (error) {
      if (isDeliveryFailure(error)) throw error;
      if (error instanceof Deno.errors.NotFound) this.markDeleted(ref.path);
      else if (error instanceof ConfinementError) this.#failOnce(ref.path, stat, error.message);
      else this.recordError(`${ref.path}: cannot read: ${describe(error)}`);
    }
  }

  /** Reports a file that cannot or may not be read, once per version of it. */
  #failOnce(path: string, stat: FileStat | undefined, message: string): void {
    const key = stat ? statKey(stat) : "unknown";
    if (this.#failed.get(path) === key) return;
    this.#failed.set(path, key);
    this.recordProblem(message);
  }

  /** Marks a vanished file as deleted (no data is removed anywhere). */
  markDeleted(path: string): void {
    const known = this.#o.state.getUnit(path);
    if (known?.status === "deleted") return;
    const size = this.#sizes.get(path);
    this.#sizes.delete(path);
    const reached = Math.max(known?.offset ?? 0, this.#cursors.get(path)?.offset ?? 0);
    const successor = this.#o.rules?.successor?.(path);
    if (known && successor && isFile(successor)) {
      // Compressed, not gone: the copy continues from this file's checkpoint.
      this.#o.log.info(`${path}: compressed to ${successor}; reading continues there`);
    } else if (size !== undefined && size > reached) {
      // Never silent: bytes nobody read are gone with the file, and that is said and counted.
      const lost = size - reached;
      this.stats.lostBytes += lost;
      this.#o.state.addCounter("lost_bytes", lost);
      this.recordError(
        `${path}: deleted before it was fully read: ${lost} bytes after offset ${reached} are lost`,
      );
    } else if (
      known && size === undefined && !this.#cursors.has(path) && (known.fileSize ?? -1) < 0
    ) {
      this.#o.log.warn(
        `${path}: deleted while not watched; delivered up to byte ${known.offset}, anything written after that was not read`,
      );
    } else if (known) {
      this.#o.log.info(`${path}: file deleted; its delivered messages are kept`);
    }
    if (known) this.#o.state.putUnit({ ...known, status: "deleted" });
  }

  /**
   * Sends what is gathered and waits until every batch is acknowledged and committed. Throws
   * `StoppedError` when stopped first, `DeliveryError` when attempts ran out, and
   * `StateDatabaseError` when a checkpoint cannot be written.
   */
  flush(): Promise<void> {
    return this.#batcher.flush();
  }

  /** Ends a backoff or pause wait at once (after a config change, say). */
  wake(): void {
    this.#delivery.wake();
  }

  /** Whether a batch is being delivered or gathered. */
  get busy(): boolean {
    return this.#batcher.busy;
  }

  /**
   * Re-sends batches recorded before a crash with their original boundaries, so the same
   * Idempotency-Key and ids go out again; a batch whose files changed since is abandoned (the
   * data is then read again normally, with the same deterministic ids).
   */
  async recoverPending(refs: Map<string, FileRef<Hint>>): Promise<void> {
    const { state, log } = this.#o;
    for (const pending of state.pendingBatches()) {
      const ranges = pending.ranges as PieceRange[];
      const pieces: Piece<Hint>[] = [];
      const cursors = new Map<string, UnitState>();
      let why = "";
      for (const range of ranges) {
        const ref = refs.get(range.unit);
        if (!ref) {
          why = `${range.unit} is no longer found`;
          break;
        }
        try {
          // Each reader replays its own ranges, or says why it reads the unit again instead.
          const piece = await readerOf(range.form).replay(
            ref,
            range,
            cursors.get(range.unit),
            this.#context,
          );
          if (typeof piece === "string") why = piece;
          else {
            cursors.set(range.unit, piece.cursor);
            pieces.push(piece);
          }
        } catch (error) {
          if (isDeliveryFailure(error)) throw error;
          why = `${range.unit}: ${describe(error)}`;
        }
        if (why) break;
      }
      if (!why && !await this.#batcher.resend(pending.key, ranges, pieces, [...cursors.values()])) {
        why = "its content differs now";
      }
      if (why) {
        log.info(`abandoning batch ${pending.key} recorded before a restart: ${why}`);
        state.abandonBatch(pending.key);
      }
    }
  }

  /**
   * Stops: no new sends; a backoff or pause wait ends now; an in-flight send gets
   * `shutdownTimeoutMs`, then is aborted (its checkpoints stay where they were).
   */
  stop(): void {
    this.#delivery.stop();
  }

  /** Whether {@link stop} was called. */
  get stopping(): boolean {
    return this.#delivery.stopping;
  }
}

function statKey(stat: FileStat): string {
  return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}`;
}
