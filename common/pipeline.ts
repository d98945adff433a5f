/**
 * The delivery pipeline shared by every file worker (DESIGN §4): read complete lines from each
 * file's checkpoint, parse them, gather the pieces into batches bounded by count and bytes,
 * record each batch before its first send, deliver it (retry with full-jitter backoff, split on
 * 413, isolate and dead-letter what the server refuses, pause on 401/403/404), and only then move
 * the checkpoints, in the transaction that marks the batch done.
 *
 * @module
 */
import { backoffDelay, type OutgoingBatch, type Sink } from "./client.ts";
import { createHash } from "node:crypto";
import { fingerprint64, sha256Hex } from "./hash.ts";
import type { Logger } from "./log.ts";
import type { LineParser } from "./source.ts";
import type { BatchRange, StateStore, UnitState } from "./state.ts";
import {
  type FileStat,
  type LineChunk,
  readCompleteLines,
  readRange,
  resumePoint,
  statFile,
} from "./tail.ts";
import type { Conversation, SourceType } from "./types.ts";
import type { Config } from "./config.ts";
import { decompressZstd } from "./zstd.ts";

/**
 * How a file is written, which decides how it is read:
 * - `lines`: appended line by line; read from the checkpoint's byte offset (the default);
 * - `zstd`: a compressed copy of such a file (`.jsonl.zst`), decompressed and then read like
 *   one; it continues from the checkpoint of the file it was compressed from, so a delivered
 *   file that gets compressed sends nothing new;
 * - `whole`: rewritten whole; read again entirely when its size, mtime or inode changes and
 *   handed to the parser with the carry of the version delivered before it, so the parser can
 *   send only what changed.
 */
export type FileForm = "lines" | "zstd" | "whole";

/** A file the source found, with the facts its path gives the parser. */
export interface FileRef {
  path: string;
  hint: Record<string, string>;
  /** How the file is written; `lines` when absent. */
  form?: FileForm;
}

/** Settings read from the config at each use, so a reload applies at once. */
export interface DeliverySettings {
  batchSize: number;
  batchMaxBytes: number;
  chunkBytes: number;
  maxLineBytes: number;
  retryBaseMs: number;
  retryMaxMs: number;
  probeIntervalMs: number;
  shutdownTimeoutMs: number;
  /** Give up after this many failed sends of one batch (`--once`); unlimited when absent. */
  maxAttempts?: number;
}

/**
 * The delivery settings of a configuration; `once` limits attempts per batch (`--once`).
 *
 * @example The defaults
 * ```ts
 * import { ConfigSchema } from "./config.ts";
 * import { deliverySettings } from "./pipeline.ts";
 * console.log(deliverySettings(ConfigSchema.parse({}), false).batchSize); // 100
 * ```
 */
export function deliverySettings(config: Config, once: boolean): DeliverySettings {
  const w = config.worker;
  return {
    batchSize: w.batch_size,
    batchMaxBytes: w.batch_max_bytes,
    chunkBytes: w.chunk_bytes,
    maxLineBytes: w.max_line_bytes,
    retryBaseMs: w.retry_base_ms,
    retryMaxMs: w.retry_max_ms,
    probeIntervalMs: w.probe_interval * 1000,
    shutdownTimeoutMs: w.shutdown_timeout * 1000,
    maxAttempts: once ? 5 : undefined,
  };
}

/** What the pipeline has done in this process. */
export interface PipelineStats {
  conversations: number;
  messages: number;
  skipped: number;
  errors: number;
  bytesRead: number;
  batches: number;
  deadLettered: number;
  /** Bytes of files deleted before they were read. */
  lostBytes: number;
  lastError: string;
  lastErrorAt: string;
  pausedReason: string;
  retrying: string;
}

/** Options of a pipeline. */
export interface PipelineOptions<Carry> {
  sourceType: SourceType;
  parser: LineParser<Carry>;
  state: StateStore;
  sink: Sink;
  log: Logger;
  host: string;
  settings: () => DeliverySettings;
  /** With `--dry-run`: receives each batch body instead of sending it; nothing is committed. */
  dryRun?: (body: string) => void;
}

/**
 * The pipeline was stopped before a batch was acknowledged; its checkpoints did not move.
 *
 * @example Tell a stop from a failure
 * ```ts
 * import { StoppedError } from "./pipeline.ts";
 * console.log(new StoppedError().name);
 * ```
 */
export class StoppedError extends Error {
  override name = "StoppedError";
  /** Creates the error. */
  constructor() {
    super("stopped before the batch was acknowledged");
  }
}

/**
 * A batch could not be delivered within `maxAttempts` (only with `--once`); nothing was lost:
 * its checkpoints did not move.
 *
 * @example Catch a delivery failure
 * ```ts
 * import { DeliveryError } from "./pipeline.ts";
 * console.log(new DeliveryError("HTTP 503").message);
 * ```
 */
export class DeliveryError extends Error {
  override name = "DeliveryError";
}

interface Item {
  conversation: Conversation;
  json: string;
}

interface Piece {
  range: BatchRange & { oversized?: boolean; form?: FileForm };
  ref: FileRef;
  cursor: UnitState;
  items: Item[];
  messages: number;
  bytes: number;
}

/**
 * The shared pipeline for one source.
 *
 * @example Sync one file into an in-memory store
 * ```ts
 * import { Pipeline } from "./pipeline.ts";
 * import { StateStore } from "./state.ts";
 * import { EmbeddedSink } from "./client.ts";
 * import { Logger } from "./log.ts";
 * import { ConversationStore } from "../server/store.ts";
 * import { parseClaudeCode } from "../parsers/claude_code.ts";
 * const pipeline = new Pipeline({
 *   sourceType: "claude_code", parser: parseClaudeCode, state: new StateStore(":memory:"),
 *   sink: new EmbeddedSink(new ConversationStore(":memory:")), log: new Logger("doc"), host: "h",
 *   settings: () => ({ batchSize: 100, batchMaxBytes: 1 << 22, chunkBytes: 1 << 20,
 *     maxLineBytes: 1 << 26, retryBaseMs: 1000, retryMaxMs: 60000, probeIntervalMs: 30000,
 *     shutdownTimeoutMs: 10000 }),
 * });
 * const path = await Deno.makeTempFile({ suffix: ".jsonl" });
 * await pipeline.syncFile({ path, hint: { kind: "session", sessionId: "s1" } });
 * await pipeline.flush();
 * ```
 */
export class Pipeline<Carry> {
  /** Counters since start. */
  readonly stats: PipelineStats = {
    conversations: 0,
    messages: 0,
    skipped: 0,
    errors: 0,
    bytesRead: 0,
    batches: 0,
    deadLettered: 0,
    lostBytes: 0,
    lastError: "",
    lastErrorAt: "",
    pausedReason: "",
    retrying: "",
  };
  /** Conversation uuids touched by this process. */
  readonly touched: Set<string> = new Set();
  readonly #o: PipelineOptions<Carry>;
  /** The options the pipeline was made with. */
  get options(): PipelineOptions<Carry> {
    return this.#o;
  }
  #pieces: Piece[] = [];
  #batchBytes = 0;
  #batchConversations = 0;
  /** Cursors ahead of the committed state: read and batched, not yet acknowledged. */
  #cursors = new Map<string, UnitState>();
  /** The batch being sent, if any. */
  #inflight: Promise<void> | undefined;
  /** The size each file had when last seen, to tell what a deletion took with it. */
  #sizes = new Map<string, number>();
  /** Files that could not be read, by path, with the stat they had then (not retried until it changes). */
  #failed = new Map<string, string>();
  #stopping = false;
  #stopController = new AbortController();
  #wake: (() => void) | undefined;

  /** Creates a pipeline. */
  constructor(options: PipelineOptions<Carry>) {
    this.#o = options;
  }

  /** Records an error for status and logs. */
  recordError(message: string, fields: Record<string, unknown> = {}): void {
    this.stats.errors++;
    this.stats.lastError = message;
    this.stats.lastErrorAt = new Date().toISOString();
    this.#o.log.error(message, fields);
  }

  /**
   * Reads what is new in one file and adds it to the current batch, flushing full batches on
   * the way; `statNow` spares a second stat when the caller has just made one. A file that is
   * gone is marked deleted; what was delivered stays delivered.
   */
  async syncFile(ref: FileRef, statNow?: FileStat | null): Promise<void> {
    const { state, log } = this.#o;
    let stat = statNow;
    try {
      if (stat === undefined) stat = await statFile(ref.path);
    } catch (error) {
      this.recordError(`${ref.path}: cannot stat: ${(error as Error).message}`);
      return;
    }
    if (!stat) {
      this.markDeleted(ref.path);
      return;
    }
    if (ref.form === "whole") return await this.#syncWhole(ref, stat);
    let content: Uint8Array | undefined;
    let cursor = this.#cursors.get(ref.path);
    let known = cursor ? undefined : state.getUnit(ref.path);
    const fileStat = stat;
    if (ref.form === "zstd") {
      const last = cursor ?? known;
      if (last?.status === "active" && sameFile(last, stat)) return;
      content = await this.#decompress(ref, stat);
      if (!content) return;
      // From here on, offsets are positions in the decompressed content.
      stat = { ...stat, size: content.length };
    } else this.#sizes.set(ref.path, stat.size);
    if (!cursor) {
      // Up to date: skip opening the file (a tick over thousands of idle files reads nothing).
      if (
        !content && known?.status === "active" && known.offset === stat.size &&
        known.dev === stat.dev && known.ino === stat.ino
      ) return;
      let inherited = "";
      // A compressed copy continues where its original stopped, if the bytes agree.
      const compressedFrom = content && !known
        ? state.getUnit(ref.path.replace(/\.zst$/, ""))
        : undefined;
      // A moved file (Codex archiving a rollout) keeps its inode and its checkpoint.
      const original = known ? undefined : compressedFrom ??
        state.unitsByInode(stat.dev, stat.ino).find((u) => u.path !== ref.path && !isFile(u.path));
      if (original) {
        known = {
          ...original,
          key: ref.path,
          path: ref.path,
          dev: stat.dev,
          ino: stat.ino,
          status: "active",
        };
        inherited = original.path;
      }
      let point;
      try {
        // A file that reappears after a deletion is a new file, even on a reused inode (T14).
        point = await resumePoint(
          ref.path,
          stat,
          known?.status === "active" ? known : undefined,
          content,
        );
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return this.markDeleted(ref.path);
        this.recordError(`${ref.path}: cannot read: ${(error as Error).message}`);
        return;
      }
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
      cursor = point.unit;
    }
    if (content && cursor.offset >= content.length) {
      // Nothing new: remember this file as read, so it is not decompressed again.
      if (!this.#cursors.has(ref.path)) {
        state.putUnit({ ...cursor, fileSize: fileStat.size, mtimeMs: fileStat.mtimeMs });
      }
      return;
    }
    const settings = this.#o.settings();
    while (cursor.offset < stat.size && !this.#stopping) {
      let chunk: LineChunk | null;
      try {
        chunk = await readCompleteLines(
          ref.path,
          cursor.offset,
          settings.chunkBytes,
          settings.maxLineBytes,
          content,
        );
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) {
          log.warn(`${ref.path}: deleted while being read; what was read is still delivered`);
          break;
        }
        this.recordError(`${ref.path}: cannot read: ${(error as Error).message}`);
        break;
      }
      if (!chunk) break;
      const piece = this.#buildPiece(ref, cursor, chunk, false);
      cursor = piece.cursor;
      if (content && cursor.offset >= content.length) {
        // Read to the end: the stat says so from now on (a partial read leaves it unset).
        cursor.fileSize = fileStat.size;
        cursor.mtimeMs = fileStat.mtimeMs;
      }
      this.#cursors.set(ref.path, cursor);
      // Progress counts file bytes: a compressed file's share of what was decompressed.
      const scale = content ? fileStat.size / Math.max(1, content.length) : 1;
      this.stats.bytesRead += Math.round((chunk.end - piece.range.from) * scale);
      await this.#add(piece);
    }
  }

  /**
   * A file rewritten whole: read it all when its size, mtime or inode moved, and hand it to the
   * parser with the carry of the version delivered before (the parser sends what changed). The
   * content hash spares the parse when only the mtime moved.
   */
  async #syncWhole(ref: FileRef, stat: FileStat): Promise<void> {
    const { state } = this.#o;
    const known = this.#cursors.get(ref.path) ?? state.getUnit(ref.path);
    if (known?.status === "active" && sameFile(known, stat)) return;
    const limit = this.#o.settings().maxLineBytes;
    if (stat.size > limit) {
      this.#failOnce(
        ref.path,
        stat,
        `${ref.path}: ${stat.size} bytes exceeds worker.max_line_bytes (${limit}), the limit ` +
          `for a document read whole; skipped until it changes`,
      );
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(ref.path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return this.markDeleted(ref.path);
      this.recordError(`${ref.path}: cannot read: ${(error as Error).message}`);
      return;
    }
    // Checked at every rewrite of a live file, so a fast hash (xxHash64), not MD5.
    const hash = fingerprint64(bytes);
    const base: UnitState = {
      key: ref.path,
      path: ref.path,
      dev: stat.dev,
      ino: stat.ino,
      headLen: 0,
      headHash: "",
      offset: 0,
      line: 0,
      tailHash: "",
      // Kept across rewrites, replacements and deletions: it says what the server already has.
      carry: known?.carry ?? "",
      status: "active",
      fileSize: stat.size,
      mtimeMs: stat.mtimeMs,
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
    const lines = 1;
    const piece = this.#buildPiece(
      ref,
      base,
      { bytes, end: bytes.length, lines, tail: hash },
      false,
    );
    this.#cursors.set(ref.path, piece.cursor);
    this.stats.bytesRead += bytes.length;
    await this.#add(piece);
  }

  /** A `.zst` file's content, or `undefined` after reporting why it cannot be read. */
  async #decompress(ref: FileRef, stat: FileStat): Promise<Uint8Array | undefined> {
    if (this.#failed.get(ref.path) === statKey(stat)) return undefined;
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(ref.path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) this.markDeleted(ref.path);
      else this.recordError(`${ref.path}: cannot read: ${(error as Error).message}`);
      return undefined;
    }
    try {
      const content = decompressZstd(bytes);
      this.#failed.delete(ref.path);
      return content;
    } catch (error) {
      this.#failOnce(
        ref.path,
        stat,
        `${ref.path}: cannot decompress (${(error as Error).message}); ` +
          `read again when the file changes`,
      );
      return undefined;
    }
  }

  /** Reports a file that cannot be read, once per version of it. */
  #failOnce(path: string, stat: FileStat, message: string): void {
    if (this.#failed.get(path) === statKey(stat)) return;
    this.#failed.set(path, statKey(stat));
    this.stats.skipped++;
    this.recordError(message);
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
      // Never silent: bytes nobody read are gone with the file (RELIABILITY T16).
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

  #buildPiece(ref: FileRef, cursor: UnitState, chunk: LineChunk, replay: boolean): Piece {
    const whole = ref.form === "whole";
    const range = {
      unit: ref.path,
      from: whole ? 0 : cursor.offset,
      to: chunk.end,
      fromLine: whole ? 0 : cursor.line,
    } as Piece["range"];
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
        this.stats.skipped++;
        this.recordError(
          `${ref.path}:${cursor.line + 1}: line of ${chunk.oversizedLine} bytes exceeds ` +
            `worker.max_line_bytes (${this.#o.settings().maxLineBytes}); skipped`,
        );
      }
      return { range, ref, cursor: next, items: [], messages: 0, bytes: 0 };
    }
    const out = this.#o.parser({
      bytes: chunk.bytes,
      firstLine: whole ? 1 : cursor.line + 1,
      carry: cursor.carry ? JSON.parse(cursor.carry) as Carry : undefined,
      file: { path: ref.path, hint: ref.hint, host: this.#o.host },
    });
    next.carry = JSON.stringify(out.carry);
    if (!replay) {
      for (const [reason, n] of Object.entries(out.skipped)) {
        this.stats.skipped += n;
        this.#o.log.debug(`${ref.path}: skipped ${n} line(s): ${reason}`);
      }
      for (const issue of out.issues) {
        this.stats.skipped++;
        this.recordError(`${ref.path}:${issue.line}: ${issue.message}`);
      }
      for (const warning of out.warnings ?? []) {
        this.#o.log.warn(`${ref.path}:${warning.line}: ${warning.message}`);
      }
    }
    const items = out.conversations.map((conversation) => ({
      conversation,
      json: JSON.stringify(conversation),
    }));
    return {
      range,
      ref,
      cursor: next,
      items,
      messages: out.messages,
      bytes: items.reduce((n, i) => n + i.json.length, 0),
    };
  }

  async #add(piece: Piece): Promise<void> {
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
   * {@link StoppedError} when stopped first, {@link DeliveryError} when attempts ran out.
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
    const body = this.#body(items);
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
      throw error;
    }
  }

  async #send(
    pieces: Piece[],
    items: Item[],
    ranges: BatchRange[],
    body: string,
    key: string,
  ): Promise<void> {
    const { state } = this.#o;
    if (items.length > 0) {
      state.recordBatch(key, ranges);
      await this.#deliver(key, items, body);
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

  #count(pieces: Piece[]): void {
    for (const p of pieces) {
      this.stats.messages += p.messages;
      for (const i of p.items) {
        if (!this.touched.has(i.conversation.uuid)) {
          this.touched.add(i.conversation.uuid);
          this.stats.conversations++;
        }
      }
    }
  }

  #body(items: Item[]): string {
    return `{"source_type":${JSON.stringify(this.#o.sourceType)},"conversations":[${
      items.map((i) => i.json).join(",")
    }]}`;
  }

  async #deliver(key: string, items: Item[], body = this.#body(items)): Promise<void> {
    const out: OutgoingBatch = {
      body,
      batch: { source_type: this.#o.sourceType, conversations: items.map((i) => i.conversation) },
      key,
    };
    let attempt = 0;
    while (true) {
      if (this.#stopping) throw new StoppedError();
      const outcome = await this.#sendWithGrace(out);
      const settings = this.#o.settings();
      if (outcome.kind === "ok") {
        if (this.stats.pausedReason || this.stats.retrying) {
          this.#o.log.info("delivery resumed", { target: this.#o.sink.target });
        }
        this.stats.pausedReason = "";
        this.stats.retrying = "";
        return;
      }
      if (outcome.kind === "retry" || outcome.kind === "pause") {
        attempt++;
        if (settings.maxAttempts !== undefined && attempt >= settings.maxAttempts) {
          throw new DeliveryError(
            `batch ${key} not delivered after ${attempt} attempts: ${outcome.reason}`,
          );
        }
        let delay: number;
        if (outcome.kind === "pause") {
          this.stats.pausedReason = outcome.reason;
          delay = settings.probeIntervalMs;
          this.recordError(
            `delivery paused (checkpoints frozen, nothing dropped): ${outcome.reason}`,
            {
              probe_in_ms: delay,
            },
          );
        } else {
          this.stats.retrying = outcome.reason;
          delay = backoffDelay(
            attempt - 1,
            settings.retryBaseMs,
            settings.retryMaxMs,
            outcome.retryAfterMs,
          );
          this.#o.log.warn(`send failed, retrying: ${outcome.reason}`, {
            attempt,
            retry_in_ms: Math.round(delay),
          });
        }
        await this.#sleep(delay);
        continue;
      }
      // too_large or rejected: split until the offending conversation stands alone.
      if (items.length > 1) {
        const half = Math.ceil(items.length / 2);
        await this.#deliver(`${key}.a`, items.slice(0, half));
        await this.#deliver(`${key}.b`, items.slice(half));
        return;
      }
      const [item] = items;
      const messages = item.conversation.messages;
      if (outcome.kind === "too_large" && messages.length > 1) {
        const half = Math.ceil(messages.length / 2);
        const part = (m: typeof messages): Item => {
          const conversation = { ...item.conversation, messages: m };
          return { conversation, json: JSON.stringify(conversation) };
        };
        await this.#deliver(`${key}.a`, [part(messages.slice(0, half))]);
        await this.#deliver(`${key}.b`, [part(messages.slice(half))]);
        return;
      }
      const status = outcome.kind === "too_large" ? 413 : outcome.status;
      this.#o.state.deadLetter(key, item.conversation.uuid, status, outcome.reason, item.json);
      this.stats.deadLettered++;
      this.recordError(
        `conversation ${item.conversation.uuid} (${messages.length} messages) refused by the server ` +
          `and kept in the dead-letter table: ${outcome.reason}`,
      );
      return;
    }
  }

  /** Sends; once stopping, the in-flight send gets `shutdownTimeoutMs` before it is aborted. */
  #sendWithGrace(out: OutgoingBatch) {
    return this.#o.sink.send(out, this.#stopController.signal).catch((error) => {
      if (this.#stopping) throw new StoppedError();
      throw error;
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  /** Ends a backoff or pause wait at once (after a config change, say). */
  wake(): void {
    this.#wake?.();
  }

  /**
   * Re-sends batches recorded before a crash with their original boundaries, so the same
   * Idempotency-Key and ids go out again; a batch whose files changed since is abandoned (the
   * data is then read again normally, with the same deterministic ids).
   */
  async recoverPending(refs: Map<string, FileRef>): Promise<void> {
    const { state, log } = this.#o;
    for (const pending of state.pendingBatches()) {
      const pieces: Piece[] = [];
      const cursors = new Map<string, UnitState>();
      let why = "";
      for (const range of pending.ranges as Piece["range"][]) {
        const ref = refs.get(range.unit);
        let cursor = cursors.get(range.unit) ?? state.getUnit(range.unit);
        if (range.form) {
          // Whole and compressed files are simply read again: their ids are deterministic and
          // their carry did not move, so the same messages go out again.
          why = `${range.unit} is read whole; it is read again`;
          break;
        }
        if (!ref) why = `${range.unit} is no longer found`;
        else if (!cursor && range.from === 0) {
          const stat = await statFile(range.unit);
          cursor = stat ? (await resumePoint(range.unit, stat, undefined)).unit : undefined;
        }
        if (!why && (!cursor || cursor.offset !== range.from)) why = `${range.unit} moved on`;
        const stat = why ? null : await statFile(range.unit);
        if (!why && (!stat || stat.size < range.to)) why = `${range.unit} shrank or vanished`;
        if (why || !ref || !cursor) break;
        const point = await resumePoint(
          range.unit,
          stat!,
          cursor.offset === 0 ? undefined : cursor,
        );
        if (point.resetReason) {
          why = `${range.unit}: ${point.resetReason}`;
          break;
        }
        const bytes = range.oversized
          ? new Uint8Array(0)
          : await readRange(range.unit, range.from, range.to);
        let lines = 0;
        for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) lines++;
        const tailFrom = Math.max(0, range.to - 64);
        const chunk: LineChunk = {
          bytes,
          end: range.to,
          lines: range.oversized ? 1 : lines,
          tail: sha256Hex(await readRange(range.unit, tailFrom, range.to)),
        };
        if (range.oversized) chunk.oversizedLine = range.to - range.from;
        const piece = this.#buildPiece(ref, point.unit, chunk, true);
        cursors.set(range.unit, piece.cursor);
        pieces.push(piece);
      }
      if (why) {
        log.info(`abandoning batch ${pending.key} recorded before a restart: ${why}`);
        state.abandonBatch(pending.key);
        continue;
      }
      const items = pieces.flatMap((p) => p.items);
      const body = this.#body(items);
      if (this.#batchKey(pending.ranges, body) !== pending.key) {
        log.info(
          `abandoning batch ${pending.key} recorded before a restart: its content differs now`,
        );
        state.abandonBatch(pending.key);
        continue;
      }
      log.info(`re-sending batch ${pending.key} recorded before a restart`, {
        conversations: items.length,
      });
      await this.#deliver(pending.key, items, body);
      state.commitBatch(pending.key, [...cursors.values()], {
        messages: pieces.reduce((n, p) => n + p.messages, 0),
        batches: 1,
      });
      this.#count(pieces);
    }
  }

  /**
   * Stops: no new sends; a backoff or pause wait ends now; an in-flight send gets
   * `shutdownTimeoutMs`, then is aborted (its checkpoints stay where they were).
   */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.wake();
    const timer = setTimeout(
      () => this.#stopController.abort(new StoppedError()),
      this.#o.settings().shutdownTimeoutMs,
    );
    Deno.unrefTimer(timer);
  }

  /** Whether {@link stop} was called. */
  get stopping(): boolean {
    return this.#stopping;
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
