/**
 * Batching for the pipeline: pieces gathered into batches bounded by count and bytes, each
 * recorded before its first send, handed to {@link Delivery}, and only then committed, cursors
 * and batch together in one transaction. As many batches as the sink takes (`Sink.inFlight`)
 * may be in flight while reading goes on for the next, and they are committed in the order they
 * were cut. A batch recorded before a crash is re-sent with its original key.
 *
 * @module
 */
import { sha256Hex } from "../hash.ts";
import type { Logger } from "../log.ts";
import type { StateStore } from "../state/state.ts";
import type { SourceType } from "../types.ts";
import type { UnitState } from "../units/cursor.ts";
import type { Piece, PieceRange } from "../units/unit.ts";
import {
  type Delivery,
  DeliveryError,
  type DeliverySettings,
  isDeliveryFailure,
} from "./delivery.ts";
import { batchBody } from "./outgoing.ts";
import type { Item } from "./item.ts";
import type { PipelineStats } from "./stats.ts";

/** How often, at most, adding pieces lets the event loop turn while a send is in flight. */
const YIELD_EVERY_MS = 2;
const NOTHING = new Uint8Array(0);

/** What the batcher works with. */
export interface BatcherOptions {
  sourceType: SourceType;
  state: StateStore;
  delivery: Delivery;
  settings: () => DeliverySettings;
  stats: PipelineStats;
  /** Conversation uuids delivered by this process (counted once each). */
  touched: Set<string>;
  /** Cursors read and batched but not acknowledged yet, by unit key (shared with readers). */
  pending: Map<string, UnitState>;
  /** Fingerprints of pieces read but not acknowledged yet (see {@link Piece.marks}). */
  marks?: Map<string, string>;
  log: Logger;
  /** With `--dry-run`: receives each batch body instead of sending it; nothing is committed. */
  dryRun?: (body: string) => void;
}

/**
 * Gathers pieces into batches and delivers them in order.
 *
 * @example Commit a batch of nothing
 * ```ts
 * import { Batcher } from "./batcher.ts";
 * import { Delivery } from "./delivery.ts";
 * import { deliverySettings } from "../engine/settings.ts";
 * import { EmbeddedSink } from "./store_sinks.ts";
 * import { newStats } from "./stats.ts";
 * import { StateStore } from "../state/state.ts";
 * import { ConversationStore } from "../../store/store.ts";
 * import { ConfigSchema } from "../config.ts";
 * import { Logger } from "../log.ts";
 * const state = new StateStore(":memory:");
 * const stats = newStats();
 * const settings = () => deliverySettings(ConfigSchema.parse({}), true);
 * const delivery = new Delivery({
 *   sourceType: "codex", sink: new EmbeddedSink(new ConversationStore(":memory:")), state,
 *   log: new Logger("doc"), settings, stats, recordError: console.error,
 * });
 * const batcher = new Batcher({
 *   sourceType: "codex", state, delivery, settings, stats, touched: new Set(), pending: new Map(),
 *   log: new Logger("doc"),
 * });
 * await batcher.flush();
 * ```
 */
export class Batcher<Hint = unknown> {
  readonly #o: BatcherOptions;
  #pieces: Piece<Hint>[] = [];
  #batchBytes = 0;
  #batchConversations = 0;
  /** The batches being sent, oldest first; each is committed only after the one before it. */
  #inflight: Promise<void>[] = [];
  /** Sends under way (one in flight may be awaited by `flush` while it runs). */
  #sending = 0;
  /** When {@link add} last let the event loop turn. */
  #yieldedAt = 0;

  /** Creates a batcher. */
  constructor(options: BatcherOptions) {
    this.#o = options;
  }

  /** Whether a batch is being delivered or gathered. */
  get busy(): boolean {
    return this.#sending > 0 || this.#pieces.length > 0;
  }

  /** Adds a piece, sending the batch before it when it would overflow and this one when full. */
  async add(piece: Piece<Hint>): Promise<void> {
    const { batchSize, batchMaxBytes } = this.#o.settings();
    if (
      this.#pieces.length > 0 &&
      (this.#batchConversations + piece.items.length > batchSize ||
        this.#batchBytes + piece.bytes > batchMaxBytes)
    ) await this.#dispatch();
    this.#pieces.push(piece);
    for (const [key, value] of piece.marks ?? []) this.#o.marks?.set(key, value);
    this.#batchConversations += piece.items.length;
    this.#batchBytes += piece.bytes;
    if (this.#batchConversations >= batchSize || this.#batchBytes >= batchMaxBytes) {
      await this.#dispatch();
    } else if (this.#sending > 0 && performance.now() - this.#yieldedAt > YIELD_EVERY_MS) {
      // Reading and parsing never wait on the event loop (their I/O is synchronous), but a send
      // in flight progresses only when it polls: an HTTP request would otherwise wait, unsent,
      // until the next batch is cut, and the server would idle while this thread parses. An
      // asynchronous operation makes it poll (a digest of nothing: 20 µs, and no permission);
      // `setImmediate` and message channels do not, and a zero timer takes 2 ms.
      await crypto.subtle.digest("SHA-256", NOTHING);
      this.#yieldedAt = performance.now();
    }
  }

  /**
   * Sends what is gathered and waits until every batch is acknowledged and committed. Throws
   * `StoppedError` when stopped first, {@link DeliveryError} when attempts ran out, and
   * `StateDatabaseError` when a checkpoint cannot be written.
   */
  async flush(): Promise<void> {
    await this.#dispatch();
    while (this.#inflight.length > 0) await this.#surface(this.#inflight.shift());
  }

  /**
   * Re-sends a batch recorded before a restart, read again as `pieces` (ending at `cursors`);
   * `false` when its content differs now, so its key no longer matches (it is then read again
   * normally, with the same deterministic ids).
   */
  async resend(
    key: string,
    ranges: PieceRange[],
    pieces: Piece<Hint>[],
    cursors: UnitState[],
  ): Promise<boolean> {
    const items = pieces.flatMap((p) => p.items);
    if (this.#batchKey(ranges, items) !== key) return false;
    if (this.#o.dryRun) {
      // What a real run would re-send first; nothing is sent or committed.
      this.#o.dryRun(batchBody(this.#o.sourceType, items));
      this.#count(pieces);
      return true;
    }
    this.#o.log.info(`re-sending batch ${key} recorded before a restart`, {
      conversations: items.length,
    });
    await this.#o.delivery.deliver(key, items);
    this.#o.state.commitBatch(key, cursors, {
      messages: pieces.reduce((n, p) => n + p.messages, 0),
      batches: 1,
    }, this.#o.delivery.receiptMarks());
    this.#count(pieces);
    return true;
  }

  /**
   * Cuts the gathered pieces into a batch and starts sending it once fewer batches than the sink
   * takes are unacknowledged; batches are committed in order, while reading and parsing go on for
   * the next one (the server and the worker use both cores).
   */
  async #dispatch(): Promise<void> {
    if (this.#pieces.length === 0) return;
    const pieces = this.#pieces;
    this.#pieces = [];
    this.#batchBytes = 0;
    this.#batchConversations = 0;
    const items = pieces.flatMap((p) => p.items);
    const ranges = pieces.map((p) => p.range);
    if (this.#o.dryRun) {
      if (items.length > 0) this.#o.dryRun(batchBody(this.#o.sourceType, items));
      this.#count(pieces);
      return;
    }
    const key = this.#batchKey(ranges, items);
    const inFlight = this.#o.delivery.options.sink.inFlight ?? 1;
    while (this.#inflight.length >= inFlight) await this.#surface(this.#inflight.shift());
    const sending = this.#send(pieces, ranges, key, this.#inflight.at(-1));
    // A failure is raised by a later dispatch or flush, which also drops what was read since.
    sending.catch(() => {});
    this.#inflight.push(sending);
  }

  /** Awaits a send; on failure, drops every read not yet acknowledged, then rethrows. */
  async #surface(sending: Promise<void> | undefined): Promise<void> {
    try {
      await sending;
    } catch (error) {
      // The sends after this one fail with it, before they commit anything (each waits for the
      // one before it); they are left to end on their own. The next check starts again from the
      // checkpoints.
      this.#inflight = [];
      this.#o.pending.clear();
      this.#o.marks?.clear();
      this.#pieces = [];
      this.#batchBytes = 0;
      this.#batchConversations = 0;
      if (isDeliveryFailure(error)) throw error;
      throw new DeliveryError(`delivery failed: ${error instanceof Error ? error.message : error}`);
    }
  }

  /** Delivers a batch and commits it once `before`, the batch cut before it, is committed. */
  async #send(
    pieces: Piece<Hint>[],
    ranges: PieceRange[],
    key: string,
    before: Promise<void> | undefined,
  ) {
    const { state, pending } = this.#o;
    const items = pieces.flatMap((p) => p.items);
    if (items.length > 0) {
      state.recordBatch(key, ranges);
      this.#sending++;
      try {
        await this.#o.delivery.deliver(key, items, before);
      } finally {
        this.#sending--;
      }
    }
    // A checkpoint past the batch before would skip it if that one failed.
    await before;
    const finals = new Map<string, UnitState>();
    for (const p of pieces) finals.set(p.range.unit, p.cursor);
    const marks = pieces.flatMap((p) => p.marks ?? []);
    state.commitBatch(key, [...finals.values()], {
      messages: pieces.reduce((n, p) => n + p.messages, 0),
      batches: items.length > 0 ? 1 : 0,
    }, [...marks, ...this.#o.delivery.receiptMarks()]);
    for (const [key, cursor] of finals) {
      if (pending.get(key) === cursor) pending.delete(key);
    }
    for (const [key, value] of marks) {
      if (this.#o.marks?.get(key) === value) this.#o.marks.delete(key);
    }
    this.#count(pieces);
    if (items.length > 0) this.#o.stats.batches++;
  }

  /**
   * The Idempotency-Key: a hash of the boundaries and the payload, so a re-cut batch gets a new
   * key.
   */
  #batchKey(ranges: PieceRange[], items: readonly Item[]): string {
    // The items' prints (xxHash64 of each as sent, made as it was parsed) tell payloads apart.
    const payload = items.map((i) => i.print).join(",");
    return `b_${sha256Hex(`${this.#o.sourceType}|${JSON.stringify(ranges)}|${payload}`)}`;
  }

  #count(pieces: Piece<Hint>[]): void {
    const { stats, touched } = this.#o;
    for (const p of pieces) {
      stats.messages += p.messages;
      for (const i of p.items) {
        for (const m of i.conversation.messages) {
          const total = m.usage?.total;
          if (typeof total === "number") stats.tokens += total;
        }
        if (!touched.has(i.conversation.uuid)) {
          touched.add(i.conversation.uuid);
          stats.conversations++;
        }
      }
    }
  }
}
