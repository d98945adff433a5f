/**
 * Delivery targets (DESIGN §3-§4): the HTTP client of the batch API and the embedded store,
 * both behind {@link Sink}. A send never throws for server or network trouble; it returns what
 * the pipeline should do next ({@link SendOutcome}).
 *
 * @module
 */
import {
  type Batch,
  type BatchResult,
  BatchResultSchema,
  BatchSchema,
  formatIssues,
} from "./types.ts";
import type { ConversationStore } from "../server/store.ts";

/** What a send came to, and so what the pipeline does next. */
export type SendOutcome =
  | { kind: "ok"; result: BatchResult }
  /** Network error, timeout, 408, 409, 429, 5xx: back off and send the same batch again. */
  | { kind: "retry"; status: number; reason: string; retryAfterMs?: number }
  /** 413: split the batch. */
  | { kind: "too_large"; reason: string }
  /** 400, 422 and other 4xx: the content is refused; isolate and dead-letter it. */
  | { kind: "rejected"; status: number; reason: string }
  /** 401, 403, 404, 405, 501: the setup is wrong; pause without dropping anything. */
  | { kind: "pause"; status: number; reason: string };

/** One batch ready to send: its body and key, and the same batch as an object. */
export interface OutgoingBatch {
  /** The JSON body. */
  body: string;
  /** The batch the body encodes. */
  batch: Batch;
  /** Deterministic Idempotency-Key. */
  key: string;
}

/** Where batches go. */
export interface Sink {
  /** Human-readable target, for logs and status. */
  readonly target: string;
  /** Sends one batch; `signal` aborts it (shutdown). */
  send(batch: OutgoingBatch, signal: AbortSignal): Promise<SendOutcome>;
}

/**
 * Milliseconds to wait according to a `Retry-After` header, in either form (delta-seconds or
 * HTTP-date), clamped to 15 minutes; `undefined` when absent or unreadable.
 *
 * @example Both forms
 * ```ts
 * import { parseRetryAfter } from "./client.ts";
 * parseRetryAfter("3") === 3000;
 * parseRetryAfter(new Date(Date.now() + 5000).toUTCString()) !== undefined;
 * ```
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const cap = 15 * 60 * 1000;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Math.min(cap, Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.min(cap, Math.max(0, date - now));
}

/**
 * Full-jitter exponential backoff: a uniform draw from `[0, min(cap, base·2^attempt))`, but at
 * least `retryAfterMs` (plus up to 10 %) when the server asked for a wait.
 *
 * @example The first retry waits under a second with base 1 s
 * ```ts
 * import { backoffDelay } from "./client.ts";
 * backoffDelay(0, 1000, 60000) < 1000;
 * ```
 */
export function backoffDelay(
  attempt: number,
  baseMs: number,
  capMs: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  const jittered = random() * Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  if (retryAfterMs === undefined) return jittered;
  return Math.max(retryAfterMs * (1 + random() * 0.1), jittered);
}

/**
 * Maps a status (and a body for the message) to an outcome.
 *
 * @example Classify statuses
 * ```ts
 * import { classifyStatus } from "./client.ts";
 * classifyStatus(503, "busy").kind === "retry";
 * classifyStatus(401, "no").kind === "pause";
 * ```
 */
export function classifyStatus(status: number, body: string, retryAfterMs?: number): SendOutcome {
  const reason = `HTTP ${status}: ${body.slice(0, 500)}`;
  if (
    status === 408 || status === 409 || status === 429 ||
    status >= 500 && status !== 501 && status !== 505
  ) {
    return { kind: "retry", status, reason, retryAfterMs };
  }
  if (status === 413) return { kind: "too_large", reason };
  if ([401, 403, 404, 405, 501, 505].includes(status)) return { kind: "pause", status, reason };
  return { kind: "rejected", status, reason };
}

/** Settings of the HTTP sink that may change on config reload. */
export interface HttpSinkOptions {
  baseUrl: string;
  token: string;
  timeoutMs: number;
  compress: boolean;
  userAgent: string;
}

/**
 * The batch API client: `POST {base_url}/internal/v1/sync/batch` with bearer auth,
 * Idempotency-Key, optional gzip, a per-request timeout, and both answer forms (bare counts, or
 * `{code, message, data}`).
 *
 * @example Send to a server
 * ```ts
 * import { HttpSink } from "./client.ts";
 * const sink = new HttpSink({
 *   baseUrl: "http://127.0.0.1:9", token: "t", timeoutMs: 1000, compress: false, userAgent: "x",
 * });
 * console.log(sink.target);
 * ```
 */
export class HttpSink implements Sink {
  /** Creates the client; `options` may be replaced later (config reload). */
  constructor(public options: HttpSinkOptions) {}

  /** The batch endpoint. */
  get target(): string {
    return new URL("/internal/v1/sync/batch", this.options.baseUrl).href;
  }

  /** Sends one batch. */
  async send(out: OutgoingBatch, signal: AbortSignal): Promise<SendOutcome> {
    const { token, timeoutMs, compress, userAgent } = this.options;
    const headers: Record<string, string> = {
      "authorization": `Bearer ${token}`,
      "content-type": "application/json",
      "idempotency-key": out.key,
      "user-agent": userAgent,
    };
    let body: BodyInit = out.body;
    if (compress && out.body.length > 1024) {
      headers["content-encoding"] = "gzip";
      body = await new Response(
        new Blob([out.body]).stream().pipeThrough(new CompressionStream("gzip")),
      ).arrayBuffer();
    }
    const timeout = AbortSignal.timeout(timeoutMs);
    let response: Response;
    let text: string;
    try {
      response = await fetch(this.target, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.any([signal, timeout]),
      });
      text = await response.text();
    } catch (error) {
      if (signal.aborted) throw error;
      if (error instanceof Deno.errors.NotCapable) {
        return {
          kind: "pause",
          status: 0,
          reason: `not permitted to connect to ${this.target}: ${(error as Error).message}; ` +
            `the worker may only reach the host it was started with (restart after changing server.base_url)`,
        };
      }
      const reason = timeout.aborted
        ? `no answer within ${timeoutMs / 1000} s (server.timeout)`
        : `network error: ${(error as Error).message}`;
      return { kind: "retry", status: 0, reason };
    }
    if (response.status !== 200 && response.status !== 201) {
      return classifyStatus(
        response.status,
        text,
        parseRetryAfter(response.headers.get("retry-after")),
      );
    }
    return parseAnswer(text);
  }
}

function parseAnswer(text: string): SendOutcome {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { kind: "retry", status: 200, reason: `unreadable answer: ${text.slice(0, 200)}` };
  }
  if (typeof raw === "object" && raw !== null && "code" in raw) {
    const wrapped = raw as { code: unknown; message?: unknown; data?: unknown };
    if (wrapped.code !== 0) {
      const code = Number(wrapped.code);
      const message = String(wrapped.message ?? "");
      return code >= 400 && code < 600
        ? classifyStatus(code, message)
        : { kind: "rejected", status: code, reason: `error code ${wrapped.code}: ${message}` };
    }
    raw = wrapped.data;
  }
  const parsed = BatchResultSchema.safeParse(raw);
  if (!parsed.success) {
    return {
      kind: "retry",
      status: 200,
      reason: `unexpected answer: ${formatIssues(parsed.error.issues)}`,
    };
  }
  return { kind: "ok", result: parsed.data };
}

/**
 * Delivers into a {@link ConversationStore} in this process: the zero-config embedded store.
 * Validation failures are rejections, as the server would answer 400.
 *
 * @example Deliver into an in-memory store
 * ```ts
 * import { EmbeddedSink } from "./client.ts";
 * import { ConversationStore } from "../server/store.ts";
 * const sink = new EmbeddedSink(new ConversationStore(":memory:"));
 * const batch = { source_type: "claude_code" as const, conversations: [] };
 * const outcome = await sink.send({ body: JSON.stringify(batch), batch, key: "k" }, new AbortController().signal);
 * console.log(outcome.kind); // ok
 * ```
 */
export class EmbeddedSink implements Sink {
  /** Wraps `store`. */
  constructor(readonly store: ConversationStore) {}

  /** The store's file. */
  get target(): string {
    return `embedded store ${this.store.path}`;
  }

  /** Applies the batch to the store. */
  send(out: OutgoingBatch): Promise<SendOutcome> {
    const parsed = BatchSchema.safeParse(out.batch);
    if (!parsed.success) {
      return Promise.resolve({
        kind: "rejected",
        status: 400,
        reason: formatIssues(parsed.error.issues),
      });
    }
    try {
      // The batch is stored as given (zod's validated copy is dropped at once, sparing memory);
      // no key fingerprint: in-process, the pipeline's key already commits to the payload hash.
      return Promise.resolve({ kind: "ok", result: this.store.applyBatch(out.batch) });
    } catch (error) {
      return Promise.resolve({
        kind: "retry",
        status: 0,
        reason: `store error: ${(error as Error).message}`,
      });
    }
  }
}

/** A batch the engine hands to the thread that owns the embedded store. */
export interface StoreRequest {
  type: "store";
  id: number;
  body: string;
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
 * import { applyStoreRequest, ChannelSink } from "./client.ts";
 * import { ConversationStore } from "../server/store.ts";
 * const store = new ConversationStore(":memory:");
 * const sink: ChannelSink = new ChannelSink("embedded store :memory:", async (request) => {
 *   sink.receive(await applyStoreRequest(store, request));
 * });
 * const batch = { source_type: "claude_code" as const, conversations: [] };
 * await sink.send({ body: JSON.stringify(batch), batch, key: "k" });
 * ```
 */
export class ChannelSink implements Sink {
  #next = 1;
  #waiting = new Map<number, (outcome: SendOutcome) => void>();

  /** `post` carries requests to the store's owner. */
  constructor(readonly target: string, readonly post: (request: StoreRequest) => void) {}

  /** Hands the batch over and waits for the owner's answer. */
  send(out: OutgoingBatch): Promise<SendOutcome> {
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.post({ type: "store", id, body: out.body, key: out.key });
    });
  }

  /** Delivers an answer from the owner. */
  receive(reply: StoreReply): void {
    this.#waiting.get(reply.id)?.(reply.outcome);
    this.#waiting.delete(reply.id);
  }
}

/**
 * Applies a {@link StoreRequest} to a store, as the server would: an unreadable or invalid body
 * is a rejection (400).
 *
 * @example Apply a request
 * ```ts
 * import { applyStoreRequest } from "./client.ts";
 * import { ConversationStore } from "../server/store.ts";
 * const reply = await applyStoreRequest(new ConversationStore(":memory:"), {
 *   type: "store", id: 1, key: "k", body: '{"source_type":"claude_code","conversations":[]}',
 * });
 * console.log(reply.outcome.kind); // ok
 * ```
 */
export async function applyStoreRequest(
  store: ConversationStore,
  request: StoreRequest,
): Promise<StoreReply> {
  let batch: Batch;
  try {
    batch = JSON.parse(request.body);
  } catch (error) {
    return {
      type: "stored",
      id: request.id,
      outcome: {
        kind: "rejected",
        status: 400,
        reason: `invalid JSON: ${(error as Error).message}`,
      },
    };
  }
  const outcome = await new EmbeddedSink(store).send({
    body: request.body,
    batch,
    key: request.key,
  });
  return { type: "stored", id: request.id, outcome };
}
