/**
 * Delivery into the embedded store: in this thread ({@link EmbeddedSink}), or through the main
 * thread that owns it ({@link ChannelSink}, {@link applyStoreRequest}), so that parsing and
 * writing use two cores. Through the channel, the engine validates each batch and makes it into
 * the rows the store writes (store/rows.ts): the owner only writes.
 *
 * @module
 */
import { join } from "node:path";
import { type Batch, BatchSchema, formatIssues } from "../types.ts";
import { ConversationStore } from "../../store/store.ts";
import type { BatchRows } from "../../store/rows.ts";
import type { ItemForm } from "./item.ts";
import type { OutgoingBatch, SendOutcome, Sink } from "./sink.ts";

/** The rejection a server would answer for an invalid batch (400), or `undefined` when valid. */
function rejectionOf(batch: Batch): SendOutcome | undefined {
  const parsed = BatchSchema.safeParse(batch);
  if (parsed.success) return undefined;
  return { kind: "rejected", status: 400, reason: formatIssues(parsed.error.issues) };
}

/**
 * The mark a batch's commit records the embedded store's receipt under (see
 * `Delivery.receiptMarks`).
 */
export const RECEIPT_MARK = "target:receipt";

/** Writes `rows` into `store`: the counts as a server's answer, and the store's receipt. */
function storedOutcome(store: ConversationStore, rows: BatchRows): SendOutcome {
  const { receipt, ...result } = store.applyRows(rows);
  return { kind: "ok", result, receipt };
}

/**
 * The embedded store's file: `conversations.db` in the state directory, shared by the workers.
 *
 * @example Where it is
 * ```ts
 * import { embeddedStorePath } from "./store_sinks.ts";
 * console.log(embeddedStorePath("/home/me/.local/state/ai-sync")); // /home/me/.local/state/ai-sync/conversations.db
 * ```
 */
export function embeddedStorePath(stateDir: string): string {
  return join(stateDir, "conversations.db");
}

/**
 * Runs a write to the store at `path`; a store error is worth a retry, as a server's 5xx is. A
 * lock another program holds past SQLite's wait (a database tool in a write transaction) is
 * said as such: the write goes through once it lets go.
 */
function written(path: string, write: () => SendOutcome): SendOutcome {
  try {
    return write();
  } catch (error) {
    const message = (error as Error).message;
    const locked = /database is locked|busy/i.test(message)
      ? ` (another program holds a write lock on ${path}; retrying until it lets go)`
      : "";
    return { kind: "retry", status: 0, reason: `store error: ${message}${locked}` };
  }
}

/**
 * Delivers into a {@link ConversationStore} in this process: the zero-config embedded store.
 * Validation failures are rejections, as the server would answer 400.
 *
 * @example Deliver into an in-memory store
 * ```ts
 * import { EmbeddedSink } from "./store_sinks.ts";
 * import { outgoingBatch } from "./outgoing.ts";
 * import { ConversationStore } from "../../store/store.ts";
 * const sink = new EmbeddedSink(new ConversationStore(":memory:"));
 * const outcome = await sink.send(outgoingBatch("claude_code", [], "k"));
 * console.log(outcome.kind); // ok
 * ```
 */
export class EmbeddedSink implements Sink {
  /** The store takes rows. */
  readonly form: ItemForm = "rows";

  /** Wraps `store`. */
  constructor(readonly store: ConversationStore) {}

  /** The store's file. */
  get target(): string {
    return `embedded store ${this.store.path}`;
  }

  /** Applies the batch to the store. */
  send(out: OutgoingBatch): Promise<SendOutcome> {
    // The batch is stored as given (zod's validated copy is dropped at once, sparing memory);
    // no key fingerprint: in-process, the pipeline's key already commits to the payload hash.
    return Promise.resolve(
      rejectionOf(out.batch) ??
        written(this.store.path, () => storedOutcome(this.store, out.rows)),
    );
  }
}

/** A batch the engine hands to the thread that owns the embedded store. */
export interface StoreRequest {
  type: "store";
  id: number;
  /** The batch, validated, as rows. */
  rows: BatchRows;
  key: string;
}

/** The owner's answer to a {@link StoreRequest}. */
export interface StoreReply {
  type: "stored";
  id: number;
  outcome: SendOutcome;
}

/**
 * Delivers into an embedded store owned by another thread (the worker's main thread), so that
 * parsing in the engine and writing the store run on two cores at once. The owner answers each
 * {@link StoreRequest} with {@link applyStoreRequest}.
 *
 * @example Wire a channel to an owner in the same thread
 * ```ts
 * import { applyStoreRequest, ChannelSink } from "./store_sinks.ts";
 * import { outgoingBatch } from "./outgoing.ts";
 * import { ConversationStore } from "../../store/store.ts";
 * const store = new ConversationStore(":memory:");
 * const sink: ChannelSink = new ChannelSink(
 *   "embedded store :memory:",
 *   (request) => sink.receive(applyStoreRequest(store, request)),
 * );
 * await sink.send(outgoingBatch("claude_code", [], "k"));
 * ```
 */
export class ChannelSink implements Sink {
  /** The store takes rows. */
  readonly form: ItemForm = "rows";
  /**
   * Two, as to a server: the store's thread writes one batch while the engine reads the next (a
   * 1 GB backfill in four fifths of the time, 5 GB in two thirds). The engine lets go of a batch's
   * rows once it has handed them over, which keeps the peak under 250 MB (246 MB for 5 GB).
   */
  readonly inFlight = 2;
  #next = 1;
  #waiting = new Map<number, (outcome: SendOutcome) => void>();

  /** `post` carries requests to the store's owner. */
  constructor(readonly target: string, readonly post: (request: StoreRequest) => void) {}

  /** Validates the batch, hands its rows over and waits for the owner's answer. */
  send(out: OutgoingBatch): Promise<SendOutcome> {
    const rejection = rejectionOf(out.batch);
    if (rejection) return Promise.resolve(rejection);
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.post({ type: "store", id, rows: out.rows, key: out.key });
    });
  }

  /** Delivers an answer from the owner. */
  receive(reply: StoreReply): void {
    this.#waiting.get(reply.id)?.(reply.outcome);
    this.#waiting.delete(reply.id);
  }
}

/**
 * Applies a {@link StoreRequest} to a store (the rows of a batch the engine validated): `store`,
 * or the store at that path, opened at the first request that reaches it. One that cannot be
 * opened yet (another program holds a lock on it) is a retry, as a write that fails is; it
 * stopped the worker with a stack trace.
 *
 * @example Apply a request
 * ```ts
 * import { applyStoreRequest } from "./store_sinks.ts";
 * import { ConversationStore } from "../../store/store.ts";
 * const reply = applyStoreRequest(new ConversationStore(":memory:"), {
 *   type: "store", id: 1, key: "k", rows: { source_type: "claude_code", conversations: [] },
 * });
 * console.log(reply.outcome.kind); // ok
 * ```
 */
export function applyStoreRequest(
  store: ConversationStore | StoreOpener,
  request: StoreRequest,
): StoreReply {
  const outcome = written(store.path, () => {
    const open = store instanceof ConversationStore ? store : store.open();
    return storedOutcome(open, request.rows);
  });
  return { type: "stored", id: request.id, outcome };
}

/**
 * The embedded store of the thread that writes it, opened when the first batch comes (a worker
 * with nothing to deliver never creates it) and kept open.
 *
 * @example Open at the first use
 * ```ts
 * import { StoreOpener } from "./store_sinks.ts";
 * const opener = new StoreOpener(":memory:");
 * console.log(opener.store); // undefined
 * opener.open();
 * console.log(opener.store !== undefined); // true
 * ```
 */
export class StoreOpener {
  /** The store, once opened. */
  store: ConversationStore | undefined;

  /** For the store at `path`. */
  constructor(readonly path: string) {}

  /**
   * The store, opened now if it was not. Something other than a file in its place (a FIFO,
   * whose open waits for a writer and hung the worker) is refused, as an error of the store.
   */
  open(): ConversationStore {
    if (this.store) return this.store;
    let isFile = true;
    try {
      isFile = Deno.statSync(this.path).isFile;
    } catch {
      // Not there yet: created now.
    }
    if (!isFile) throw new Error(`${this.path} is not a regular file; expected the store`);
    return this.store = new ConversationStore(this.path, { receipts: true });
  }
}
