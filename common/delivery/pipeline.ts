/**
 * The pipeline shared by every file worker (docs/delivery.md): read complete lines from each file's
 * checkpoint (through the guarded open, so nothing outside the worker's roots is read), parse
 * them, gather the pieces into batches bounded by count and bytes, record each batch before its
 * first send, hand it to {@link Delivery}, and only then move the checkpoints, in the
 * transaction that marks the batch done. A failure while reading or parsing one line or one
 * file is reported with the file (and line) and contained there: the rest flows.
 *
 * @module
 */
import type { Sink } from "./sinks.ts";
import { createHash } from "node:crypto";
import {
  batchBody,
  Delivery,
  DeliveryError,
  type DeliverySettings,
  type Item,
  StoppedError,
} from "./delivery.ts";
import { ConfinementError, FileTooLargeError, type ReadScope } from "../io/guarded_file.ts";
import { fingerprint64, sha256Hex } from "../hash.ts";
import type { Logger } from "../log.ts";
import type { ConversationTotals, ParseOutput, Parser } from "../source.ts";
import {
  type BatchRange,
  StateDatabaseError,
  type StateStore,
  type UnitState,
} from "../state/state.ts";
import {
  type ByteSource,
  countLines,
  type FileStat,
  type LineChunk,
  readCompleteLines,
  resumePoint,
  statFile,
  StreamSource,
  tailHashAt,
} from "../units/lines.ts";
import type { SourceType } from "../types.ts";
import { checkZstdFrames, decompressZstdStream, ZstdError, ZstdLimitError } from "../io/zstd.ts";

export { DeliveryError, deliverySettings, StoppedError } from "./delivery.ts";
export type { DeliverySettings } from "./delivery.ts";

/**
 * How a file is written, which decides how it is read:
 * - `lines`: appended line by line; read from the checkpoint's byte offset (the default);
 * - `zstd`: a compressed copy of such a file (`.jsonl.zst`), decompressed as a stream and read
 *   like one; it continues from the checkpoint of the file it was compressed from, so a
 *   delivered file that gets compressed sends nothing new;
 * - `whole`: rewritten whole; read again entirely when its size, mtime or inode changes and
 *   handed to the parser with the carry of the version delivered before it, so the parser can
 *   send only what changed.
 */
export type FileForm = "lines" | "zstd" | "whole";

/** A file the source found, with the facts its path gives the parser. */
export interface FileRef<Hint = unknown> {
  path: string;
  /** Facts about the file for its parser, typed by the source. */
  hint: Hint;
  /** How the file is written; `lines` when absent. */
  form?: FileForm;
}

/** What the pipeline has done in this process. */
export interface PipelineStats {
  conversations: number;
  messages: number;
  skipped: number;
  /** Problems with the input that were reported (each also counts in `skipped`). */
  problems: number;
  errors: number;
  /** Tokens (`usage.total`) of the messages delivered. */
  tokens: number;
  bytesRead: number;
  batches: number;
  deadLettered: number;
  /** Bytes of files deleted before they were read. */
  lostBytes: number;
  lastError: string;
  lastErrorAt: string;
  /** The last problem with the input (a malformed line, a file that may not be read). */
  lastProblem: string;
  pausedReason: string;
  retrying: string;
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
  /** With `--dry-run`: receives each batch body instead of sending it; nothing is committed. */
  dryRun?: (body: string) => void;
}

interface Piece<Hint> {
  range: BatchRange & { oversized?: boolean; form?: FileForm };
  ref: FileRef<Hint>;
  cursor: UnitState;
  items: Item[];
  messages: number;
  bytes: number;
}

/** A parse and the JSON it produced (both can fail on hostile input). */
interface Parsed<Carry> {
  out: ParseOutput<Carry>;
  items: Item[];
  carry: string;
}

/** Errors of delivery and state, which concern every file, not the one being read. */
function isDeliveryFailure(error: unknown): boolean {
  return error instanceof StoppedError || error instanceof DeliveryError ||
    error instanceof StateDatabaseError;
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
 * import { EmbeddedSink } from "./sinks.ts";
 * import { ReadScope } from "../io/guarded_file.ts";
 * import { Logger } from "../log.ts";
 * import { ConfigSchema } from "../config.ts";
 * import { deliverySettings } from "./delivery.ts";
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
  readonly stats: PipelineStats = {
    conversations: 0,
    messages: 0,
    skipped: 0,
    problems: 0,
    errors: 0,
    tokens: 0,
    bytesRead: 0,
    batches: 0,
    deadLettered: 0,
    lostBytes: 0,
    lastError: "",
    lastErrorAt: "",
    lastProblem: "",
    pausedReason: "",
    retrying: "",
  };
  /** Conversation uuids touched by this process. */
  readonly touched: Set<string> = new Set();
  readonly #o: PipelineOptions<Carry, Hint>;
  readonly #delivery: Delivery;
  /** The options the pipeline was made with. */
  get options(): PipelineOptions<Carry, Hint> {
    return this.#o;
  }
  #pieces: Piece<Hint>[] = [];
  #batchBytes = 0;
  #batchConversations = 0;
  /** Cursors ahead of the committed state: read and batched, not yet acknowledged. */
  #cursors = new Map<string, UnitState>();
  /** The batch being sent, if any. */
  #inflight: Promise<void> | undefined;
  /** Sends under way (the one in flight may be awaited by `flush` while it runs). */
  #sending = 0;
  /** The size each file had when last seen, to tell what a deletion took with it. */
  #sizes = new Map<string, number>();
  /** Files that could not be read, by path, with the stat they had then (not retried until it changes). */
  #failed = new Map<string, string>();

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
      if (ref.form === "whole") await this.#syncWhole(ref, stat);
      else if (ref.form === "zstd") await this.#syncCompressed(ref, stat);
      else await this.#syncLines(ref, stat);
    } catch (error) {
      if (isDeliveryFailure(error)) throw error;
      if (error instanceof Deno.errors.NotFound) this.markDeleted(ref.path);
      else if (error instanceof ConfinementError) this.#failOnce(ref.path, stat, error.message);
      else if (error instanceof ZstdError) {
        this.#failOnce(
          ref.path,
          stat,
          `${ref.path}: cannot decompress (${error.message}); read again when the file changes`,
        );
      } else this.recordError(`${ref.path}: cannot read: ${describe(error)}`);
    }
  }

  /** An append-only file: the lines after its checkpoint. */
  async #syncLines(ref: FileRef<Hint>, stat: FileStat): Promise<void> {
    const { state } = this.#o;
    let cursor = this.#cursors.get(ref.path);
    const known = cursor ? undefined : state.getUnit(ref.path);
    this.#sizes.set(ref.path, stat.size);
    // Up to date: skip opening the file (a tick over thousands of idle files reads nothing). The
    // mtime is part of it: a rewrite of the same size is read.
    if (
      !cursor && known?.status === "active" && known.offset === stat.size &&
      known.dev === stat.dev && known.ino === stat.ino && known.mtimeMs === stat.mtimeMs
    ) return;
    await using file = await this.#o.scope.open(ref.path);
    const opened = file.stat;
    cursor ??= await this.#resume(ref, file, opened, opened.size, known);
    const settings = this.#o.settings();
    let read = false;
    while (cursor.offset < opened.size && !this.stopping) {
      const chunk = await readCompleteLines(
        file,
        cursor.offset,
        settings.chunkBytes,
        settings.maxLineBytes,
      );
      if (!chunk) break;
      const piece = this.#buildPiece(ref, cursor, chunk, false);
      cursor = piece.cursor;
      cursor.fileSize = opened.size;
      cursor.mtimeMs = opened.mtimeMs;
      this.#cursors.set(ref.path, cursor);
      this.stats.bytesRead += chunk.end - piece.range.from;
      read = true;
      await this.#add(piece);
    }
    if (
      !read && !this.#cursors.has(ref.path) && cursor.offset === opened.size &&
      (cursor.mtimeMs !== opened.mtimeMs || cursor.fileSize !== opened.size ||
        cursor.path !== known?.path)
    ) {
      // Checked and unchanged: remember this version, so the next check need not open it.
      state.putUnit({ ...cursor, fileSize: opened.size, mtimeMs: opened.mtimeMs });
    }
  }

  /**
   * Where reading of a file resumes: its own checkpoint, else that of the file it was moved or
   * compressed from (same bytes), else the start; says why it starts over when it does.
   */
  async #resume(
    ref: FileRef<Hint>,
    source: ByteSource,
    identity: FileStat,
    size: number | undefined,
    known: UnitState | undefined,
  ): Promise<UnitState> {
    const { state, log } = this.#o;
    let inherited = "";
    // A compressed copy continues where its original stopped, if the bytes agree.
    const compressedFrom = ref.form === "zstd" && !known
      ? state.getUnit(ref.path.replace(/\.zst$/, ""))
      : undefined;
    // A moved file (Codex archiving a rollout) keeps its inode and its checkpoint.
    const original = known ? undefined : compressedFrom ??
      state.unitsByInode(identity.dev, identity.ino).find((u) =>
        u.path !== ref.path && !isFile(u.path)
      );
    if (original) {
      known = {
        ...original,
        key: ref.path,
        path: ref.path,
        dev: identity.dev,
        ino: identity.ino,
        status: "active",
        movedFrom: original.path,
      };
      inherited = original.path;
    }
    // A file that reappears after a deletion is a new file, even on a reused inode (T14).
    const point = await resumePoint(
      ref.path,
      source,
      identity,
      size,
      known?.status === "active" ? known : undefined,
    );
    const relation = compressedFrom ? "compressed copy of" : "moved from";
    if (inherited && !point.resetReason) {
      log.info(
        `${ref.path}: ${relation} ${inherited}; continuing from its checkpoint at byte ${point.unit.offset}`,
      );
    } else if (inherited) {
      log.info(`${ref.path}: not the same content as ${inherited}; reading it from the start`);
    } else if (point.resetReason) {
      log.warn(`${ref.path}: reading again from the start: ${point.resetReason}`);
      state.putUnit(point.unit);
    }
    return point.unit;
  }

  /**
   * A compressed copy (`.jsonl.zst`): decompressed as a stream, at most
   * `worker.max_decompressed_bytes`, and read from its checkpoint like the file it was.
   */
  async #syncCompressed(ref: FileRef<Hint>, stat: FileStat): Promise<void> {
    const { state } = this.#o;
    let cursor = this.#cursors.get(ref.path);
    const known = cursor ? undefined : state.getUnit(ref.path);
    const last = cursor ?? known;
    if (last?.status === "active" && sameFile(last, stat)) return;
    const settings = this.#o.settings();
    const limit = settings.maxDecompressedBytes;
    let frames: Uint8Array[];
    let identity: FileStat;
    {
      await using file = await this.#o.scope.open(ref.path);
      identity = file.stat;
      frames = checkZstdFrames(await file.readAll(limit, " (worker.max_decompressed_bytes)"));
    }
    const decompress = () => new StreamSource(decompressZstdStream(frames, limit));
    let source = decompress();
    /** The next lines, or where the decompression limit stopped them. */
    const next = async (offset: number) => {
      try {
        return {
          chunk: await readCompleteLines(
            source,
            offset,
            settings.chunkBytes,
            settings.maxLineBytes,
          ),
        };
      } catch (error) {
        if (error instanceof ZstdLimitError) return { chunk: null, limit: error };
        throw error;
      }
    };
    try {
      if (!cursor) {
        cursor = await this.#resume(ref, source, identity, undefined, known);
        // Starting over needs the content from its start, which the stream has passed.
        if (cursor.offset === 0) {
          await source.close();
          source = decompress();
        }
      }
      let step = await next(cursor.offset);
      let read = false;
      while (step.chunk && !this.stopping) {
        const piece = this.#buildPiece(ref, cursor, step.chunk, false);
        cursor = piece.cursor;
        // One step ahead, to know whether this piece reaches the end.
        const following = await next(cursor.offset);
        if (!following.chunk) {
          // Read to the end: the stat says so from now on (a partial read leaves it unset).
          cursor.fileSize = stat.size;
          cursor.mtimeMs = stat.mtimeMs;
        }
        this.#cursors.set(ref.path, cursor);
        read = true;
        await this.#add(piece);
        step = following;
      }
      // Progress counts file bytes: a compressed file counts its size on disk once read.
      this.stats.bytesRead += stat.size;
      if (step.limit) {
        this.#failOnce(
          ref.path,
          stat,
          `${ref.path}: ${step.limit.message}; everything before byte ${cursor.offset} of its ` +
            `content was read; raise the limit and restart to read the rest`,
        );
      } else if (!read && !this.#cursors.has(ref.path)) {
        // Nothing new: remember this file as read, so it is not decompressed again.
        state.putUnit({ ...cursor, fileSize: stat.size, mtimeMs: stat.mtimeMs });
      }
    } finally {
      await source.close();
    }
  }

  /**
   * A file rewritten whole: read it all when its size, mtime or inode moved, and hand it to the
   * parser with the carry of the version delivered before (the parser sends what changed). The
   * content hash spares the parse when only the mtime moved.
   */
  async #syncWhole(ref: FileRef<Hint>, stat: FileStat): Promise<void> {
    const { state } = this.#o;
    const known = this.#cursors.get(ref.path) ?? state.getUnit(ref.path);
    if (known?.status === "active" && sameFile(known, stat)) return;
    const limit = this.#o.settings().maxLineBytes;
    let bytes: Uint8Array;
    let opened: FileStat;
    {
      await using file = await this.#o.scope.open(ref.path);
      opened = file.stat;
      try {
        bytes = await file.readAll(limit);
      } catch (error) {
        if (!(error instanceof FileTooLargeError)) throw error;
        this.#failOnce(
          ref.path,
          stat,
          `${ref.path}: ${opened.size} bytes exceeds worker.max_line_bytes (${limit}), the limit ` +
            `for a document read whole; skipped until it changes`,
        );
        return;
      }
    }
    // Checked at every rewrite of a live file, so a fast hash (xxHash64), not MD5.
    const hash = fingerprint64(bytes);
    const base: UnitState = {
      key: ref.path,
      path: ref.path,
      dev: opened.dev,
      ino: opened.ino,
      headLen: 0,
      headHash: "",
      offset: 0,
      line: 0,
      tailHash: "",
      // Kept across rewrites, replacements and deletions: it says what the server already has.
      carry: known?.carry ?? "",
      status: "active",
      fileSize: opened.size,
      mtimeMs: opened.mtimeMs,
    };
    if (known?.tailHash === hash) {
      if (!this.#cursors.has(ref.path)) {
        state.putUnit({
          ...known,
          ...base,
          offset: known.offset,
          line: known.line,
          tailHash: hash,
        });
      }
      return;
    }
    // The document is one record: its line count is not needed.
    const piece = this.#buildPiece(
      ref,
      base,
      { bytes, end: bytes.length, lines: 1, tail: hash },
      false,
    );
    this.#cursors.set(ref.path, piece.cursor);
    this.stats.bytesRead += bytes.length;
    await this.#add(piece);
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
    if (known && isFile(`${path}.zst`)) {
      // Compressed, not gone: the `.zst` copy continues from this file's checkpoint.
      this.#o.log.info(`${path}: compressed to ${path}.zst; reading continues there`);
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

  #buildPiece(
    ref: FileRef<Hint>,
    cursor: UnitState,
    chunk: LineChunk,
    replay: boolean,
  ): Piece<Hint> {
    const whole = ref.form === "whole";
    const range = {
      unit: ref.path,
      from: whole ? 0 : cursor.offset,
      to: chunk.end,
      fromLine: whole ? 0 : cursor.line,
    } as Piece<Hint>["range"];
    if (ref.form && ref.form !== "lines") range.form = ref.form;
    const next: UnitState = {
      ...cursor,
      offset: chunk.end,
      line: whole ? chunk.lines : cursor.line + chunk.lines,
      tailHash: chunk.tail,
    };
    if (chunk.oversizedLine !== undefined) {
      range.oversized = true;
      if (!replay) {
        this.recordProblem(
          `${ref.path}:${cursor.line + 1}: line of ${chunk.oversizedLine} bytes exceeds ` +
            `worker.max_line_bytes (${this.#o.settings().maxLineBytes}); skipped`,
        );
      }
      return { range, ref, cursor: next, items: [], messages: 0, bytes: 0 };
    }
    const firstLine = whole ? 1 : cursor.line + 1;
    let parsed: Parsed<Carry>;
    try {
      parsed = this.#parse(ref, cursor, chunk.bytes, firstLine, cursor.carry);
    } catch (error) {
      // Hostile input (a line nested 100,000 deep, say) must cost only itself.
      parsed = whole
        ? this.#unprocessable(firstLine, cursor.carry, `the document`, error)
        : this.#parseLineByLine(ref, cursor, chunk.bytes, firstLine, cursor.carry);
    }
    const { out, items } = parsed;
    next.carry = parsed.carry;
    if (out.totals) next.totals = JSON.stringify(out.totals);
    if (!replay) {
      for (const [reason, n] of Object.entries(out.skipped)) {
        this.stats.skipped += n;
        this.#o.log.debug(`${ref.path}: skipped ${n} line(s): ${reason}`);
      }
      for (const issue of out.issues) {
        this.recordProblem(`${ref.path}:${issue.line}: ${issue.message}`);
      }
      for (const warning of out.warnings ?? []) {
        this.#o.log.warn(`${ref.path}:${warning.line}: ${warning.message}`);
      }
    }
    return {
      range,
      ref,
      cursor: next,
      items,
      messages: out.messages,
      bytes: items.reduce((n, i) => n + i.json.length, 0),
    };
  }

  /** Parses lines and serialises what came out; throws whatever hostile input makes them throw. */
  #parse(
    ref: FileRef<Hint>,
    cursor: UnitState,
    bytes: Uint8Array,
    firstLine: number,
    carry: string,
  ): Parsed<Carry> {
    const out = this.#o.parser({
      bytes,
      firstLine,
      carry: carry ? JSON.parse(carry) as Carry : undefined,
      file: { path: ref.path, hint: ref.hint, host: this.#o.host },
    });
    if (out.totals) this.#rollUp(cursor, out);
    const items = out.conversations.map((conversation) => ({
      conversation,
      json: JSON.stringify(conversation),
    }));
    return { out, items, carry: JSON.stringify(out.carry) };
  }

  /** After a chunk failed as a whole: each line on its own, so only the culprit is lost. */
  #parseLineByLine(
    ref: FileRef<Hint>,
    cursor: UnitState,
    bytes: Uint8Array,
    firstLine: number,
    carry: string,
  ): Parsed<Carry> {
    const out: ParseOutput<Carry> = {
      conversations: [],
      carry: undefined as Carry,
      messages: 0,
      metadata: 0,
      skipped: {},
      issues: [],
      warnings: [],
    };
    const items: Item[] = [];
    let start = 0;
    let line = firstLine;
    for (let nl = bytes.indexOf(10); nl !== -1; nl = bytes.indexOf(10, start)) {
      let one: Parsed<Carry>;
      try {
        one = this.#parse(ref, cursor, bytes.subarray(start, nl + 1), line, carry);
      } catch (error) {
        one = this.#unprocessable(line, carry, "this line", error);
      }
      carry = one.carry;
      items.push(...one.items);
      out.messages += one.out.messages;
      out.metadata += one.out.metadata;
      for (const [reason, n] of Object.entries(one.out.skipped)) {
        out.skipped[reason] = (out.skipped[reason] ?? 0) + n;
      }
      out.issues.push(...one.out.issues);
      out.warnings!.push(...one.out.warnings ?? []);
      if (one.out.totals) out.totals = one.out.totals;
      start = nl + 1;
      line++;
    }
    return { out, items, carry };
  }

  /**
   * A conversation that spans several files (Claude Code's sub-agents) is sent with the sum of
   * their counts: this file's new totals plus what every other file of it contributes (as read
   * and batched, else as committed), leaving out a file this one continues.
   */
  #rollUp(cursor: UnitState, out: ParseOutput<Carry>): void {
    for (const conversation of out.conversations) {
      const own = out.totals?.[conversation.uuid];
      if (!own) continue;
      const parts: ConversationTotals[] = [own];
      const others = this.#o.state.contributions(conversation.uuid);
      const continued = new Set([cursor.movedFrom]);
      for (const [key, pending] of this.#cursors) {
        if (pending.totals && !others.has(key)) others.set(key, pending.totals);
        if (pending.movedFrom) continued.add(pending.movedFrom);
      }
      for (const [key, committed] of others) {
        if (key === cursor.key || continued.has(key)) continue;
        const json = this.#cursors.get(key)?.totals ?? committed;
        const part = json ? (JSON.parse(json) as Record<string, ConversationTotals>) : {};
        if (part[conversation.uuid]) parts.push(part[conversation.uuid]);
      }
      if (parts.length === 1) continue;
      conversation.metadata.message_count = parts.reduce((n, p) => n + p.messages, 0);
      const usage: Record<string, number> = {};
      for (const part of parts) {
        for (const [k, v] of Object.entries(part.usage)) usage[k] = (usage[k] ?? 0) + v;
      }
      conversation.metadata.usage = usage;
    }
  }

  /** The result of input that made the parser or the serialiser throw: an issue, nothing else. */
  #unprocessable(line: number, carry: string, what: string, error: unknown): Parsed<Carry> {
    const again = what === "the document" ? "read again at its next change" : "skipped";
    return {
      out: {
        conversations: [],
        carry: undefined as Carry,
        messages: 0,
        metadata: 0,
        skipped: {},
        issues: [{ line, message: `cannot process ${what} (${describe(error)}); ${again}` }],
      },
      items: [],
      carry,
    };
  }

  async #add(piece: Piece<Hint>): Promise<void> {
    const { batchSize, batchMaxBytes } = this.#o.settings();
    if (
      this.#pieces.length > 0 &&
      (this.#batchConversations + piece.items.length > batchSize ||
        this.#batchBytes + piece.bytes > batchMaxBytes)
    ) await this.#dispatch();
    this.#pieces.push(piece);
    this.#batchConversations += piece.items.length;
    this.#batchBytes += piece.bytes;
    if (this.#batchConversations >= batchSize || this.#batchBytes >= batchMaxBytes) {
      await this.#dispatch();
    }
  }

  /**
   * Sends what is gathered and waits until every batch is acknowledged and committed. Throws
   * {@link StoppedError} when stopped first, {@link DeliveryError} when attempts ran out, and
   * {@link StateDatabaseError} when a checkpoint cannot be written.
   */
  async flush(): Promise<void> {
    await this.#dispatch();
    const inflight = this.#inflight;
    this.#inflight = undefined;
    await this.#surface(inflight);
  }

  /**
   * Cuts the gathered pieces into a batch and starts sending it as soon as the batch before it
   * is acknowledged: one batch in flight at a time, committed in order, while reading and
   * parsing go on for the next one (the server and the worker use both cores).
   */
  async #dispatch(): Promise<void> {
    if (this.#pieces.length === 0) return;
    const pieces = this.#pieces;
    this.#pieces = [];
    this.#batchBytes = 0;
    this.#batchConversations = 0;
    const items = pieces.flatMap((p) => p.items);
    const ranges = pieces.map((p) => p.range);
    const body = batchBody(this.#o.sourceType, items);
    if (this.#o.dryRun) {
      if (items.length > 0) this.#o.dryRun(body);
      this.#count(pieces);
      return;
    }
    const key = this.#batchKey(ranges, body);
    const previous = this.#inflight;
    this.#inflight = undefined;
    await this.#surface(previous);
    const sending = this.#send(pieces, items, ranges, body, key);
    // A failure is raised by the next dispatch or flush, which also drops what was read since.
    sending.catch(() => {});
    this.#inflight = sending;
  }

  /** Awaits a send; on failure, drops every read not yet acknowledged, then rethrows. */
  async #surface(sending: Promise<void> | undefined): Promise<void> {
    try {
      await sending;
    } catch (error) {
      // The next check starts again from the checkpoints.
      this.#cursors.clear();
      this.#pieces = [];
      this.#batchBytes = 0;
      this.#batchConversations = 0;
      if (isDeliveryFailure(error)) throw error;
      throw new DeliveryError(`delivery failed: ${describe(error)}`);
    }
  }

  async #send(
    pieces: Piece<Hint>[],
    items: Item[],
    ranges: BatchRange[],
    body: string,
    key: string,
  ): Promise<void> {
    const { state } = this.#o;
    if (items.length > 0) {
      state.recordBatch(key, ranges);
      this.#sending++;
      try {
        await this.#delivery.deliver(key, items, body);
      } finally {
        this.#sending--;
      }
    }
    const finals = new Map<string, UnitState>();
    for (const p of pieces) finals.set(p.ref.path, p.cursor);
    state.commitBatch(key, [...finals.values()], {
      messages: pieces.reduce((n, p) => n + p.messages, 0),
      batches: items.length > 0 ? 1 : 0,
    });
    for (const [path, cursor] of finals) {
      if (this.#cursors.get(path) === cursor) this.#cursors.delete(path);
    }
    this.#count(pieces);
    if (items.length > 0) this.stats.batches++;
  }

  /**
   * The Idempotency-Key: a hash of the boundaries and the payload, so a re-cut batch gets a new
   * key. The payload is fingerprinted with MD5, which is fast and enough to tell payloads apart.
   */
  #batchKey(ranges: BatchRange[], body: string): string {
    const payload = createHash("md5").update(body).digest("hex");
    return `b_${sha256Hex(`${this.#o.sourceType}|${JSON.stringify(ranges)}|${payload}`)}`;
  }

  #count(pieces: Piece<Hint>[]): void {
    for (const p of pieces) {
      this.stats.messages += p.messages;
      for (const i of p.items) {
        for (const m of i.conversation.messages) {
          const total = m.usage?.total;
          if (typeof total === "number") this.stats.tokens += total;
        }
        if (!this.touched.has(i.conversation.uuid)) {
          this.touched.add(i.conversation.uuid);
          this.stats.conversations++;
        }
      }
    }
  }

  /** Ends a backoff or pause wait at once (after a config change, say). */
  wake(): void {
    this.#delivery.wake();
  }

  /** Whether a batch is being delivered or gathered. */
  get busy(): boolean {
    return this.#sending > 0 || this.#pieces.length > 0;
  }

  /**
   * Re-sends batches recorded before a crash with their original boundaries, so the same
   * Idempotency-Key and ids go out again; a batch whose files changed since is abandoned (the
   * data is then read again normally, with the same deterministic ids).
   */
  async recoverPending(refs: Map<string, FileRef<Hint>>): Promise<void> {
    const { state, log } = this.#o;
    for (const pending of state.pendingBatches()) {
      const pieces: Piece<Hint>[] = [];
      const cursors = new Map<string, UnitState>();
      let why = "";
      for (const range of pending.ranges as Piece<Hint>["range"][]) {
        if (range.form) {
          // Whole and compressed files are simply read again: their ids are deterministic and
          // their carry did not move, so the same messages go out again.
          why = `${range.unit} is read whole; it is read again`;
          break;
        }
        const ref = refs.get(range.unit);
        if (!ref) {
          why = `${range.unit} is no longer found`;
          break;
        }
        try {
          const piece = await this.#replayRange(ref, range, cursors.get(range.unit));
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
      if (why) {
        log.info(`abandoning batch ${pending.key} recorded before a restart: ${why}`);
        state.abandonBatch(pending.key);
        continue;
      }
      const items = pieces.flatMap((p) => p.items);
      const body = batchBody(this.#o.sourceType, items);
      if (this.#batchKey(pending.ranges, body) !== pending.key) {
        log.info(
          `abandoning batch ${pending.key} recorded before a restart: its content differs now`,
        );
        state.abandonBatch(pending.key);
        continue;
      }
      if (this.#o.dryRun) {
        // What a real run would re-send first; nothing is sent or committed.
        this.#o.dryRun(body);
        this.#count(pieces);
        continue;
      }
      log.info(`re-sending batch ${pending.key} recorded before a restart`, {
        conversations: items.length,
      });
      await this.#delivery.deliver(pending.key, items, body);
      state.commitBatch(pending.key, [...cursors.values()], {
        messages: pieces.reduce((n, p) => n + p.messages, 0),
        batches: 1,
      });
      this.#count(pieces);
    }
  }

  /** The piece a recorded range holds, read again; or why it can no longer be replayed. */
  async #replayRange(
    ref: FileRef<Hint>,
    range: Piece<Hint>["range"],
    before: UnitState | undefined,
  ): Promise<Piece<Hint> | string> {
    await using file = await this.#o.scope.open(range.unit);
    const size = file.stat.size;
    let cursor = before ?? this.#o.state.getUnit(range.unit);
    if (!cursor && range.from === 0) {
      cursor = (await resumePoint(range.unit, file, file.stat, size, undefined)).unit;
    }
    if (!cursor || cursor.offset !== range.from) return `${range.unit} moved on`;
    if (size < range.to) return `${range.unit} shrank or vanished`;
    const point = await resumePoint(
      range.unit,
      file,
      file.stat,
      size,
      cursor.offset === 0 ? undefined : cursor,
    );
    if (point.resetReason) return `${range.unit}: ${point.resetReason}`;
    const bytes = range.oversized
      ? new Uint8Array(0)
      : await file.read(range.from, range.to - range.from);
    const chunk: LineChunk = {
      bytes,
      end: range.to,
      lines: range.oversized ? 1 : countLines(bytes),
      tail: await tailHashAt(file, range.to),
    };
    if (range.oversized) chunk.oversizedLine = range.to - range.from;
    return this.#buildPiece(ref, point.unit, chunk, true);
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

/** Whether a unit was last read from a file with exactly this stat (whole and compressed files). */
function sameFile(unit: UnitState, stat: FileStat): boolean {
  return unit.fileSize === stat.size && unit.mtimeMs === stat.mtimeMs && unit.dev === stat.dev &&
    unit.ino === stat.ino;
}

function statKey(stat: FileStat): string {
  return `${stat.dev}:${stat.ino}:${stat.size}:${stat.mtimeMs}`;
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
