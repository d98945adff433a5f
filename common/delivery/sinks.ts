/**
 * Delivery targets: the HTTP client of the batch API and the embedded store,
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
} from "../types.ts";
import type { ConversationStore } from "../../store/store.ts";
import { printable, Redactor } from "../redact.ts";
import { concatBytes } from "../io/bytes.ts";

/** The most of a server's answer kept for a message. */
const MAX_REASON_CHARS = 500;

/** What a send came to, and so what the pipeline does next. */
export type SendOutcome =
  | { kind: "ok"; result: BatchResult }
  /** Network error, timeout, 408, 409, 429, 5xx: back off and send the same batch again. */
  | { kind: "retry"; status: number; reason: string; retryAfterMs?: number }
  /** 413: split the batch. */
  | { kind: "too_large"; reason: string }
  /** 400, 422 and other 4xx: the content is refused; isolate and dead-letter it. */
  | { kind: "rejected"; status: number; reason: string }
  /**
   * 401, 403, 404, 405, 501, a redirect: the setup is wrong; pause without dropping anything.
   * `fix` says what to change.
   */
  | { kind: "pause"; status: number; reason: string; fix: string };

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
 * import { parseRetryAfter } from "./sinks.ts";
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
 * import { backoffDelay } from "./sinks.ts";
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
 * import { classifyStatus } from "./sinks.ts";
 * classifyStatus(503, "busy").kind === "retry";
 * classifyStatus(401, "no").kind === "pause";
 * ```
 */
export function classifyStatus(status: number, body: string, retryAfterMs?: number): SendOutcome {
  const reason = `HTTP ${status}: ${body.slice(0, MAX_REASON_CHARS)}`;
  if (
    status === 408 || status === 409 || status === 429 ||
    status >= 500 && status !== 501 && status !== 505
  ) {
    return { kind: "retry", status, reason, retryAfterMs };
  }
  if (status === 413) return { kind: "too_large", reason };
  if (status === 401 || status === 403) {
    return {
      kind: "pause",
      status,
      reason,
      fix: "set security.worker_token in the config file (or SYNC_WORKER_TOKEN) to the " +
        "server's worker token; a running worker picks up the change at once",
    };
  }
  if ([404, 405, 501, 505].includes(status)) {
    return {
      kind: "pause",
      status,
      reason,
      fix: "check server.base_url (or SYNC_SERVER_URL): the scheme, host and port of the " +
        "conversation server, with no path",
    };
  }
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

/** The most read of an answer to a batch: acknowledgements are a few hundred bytes. */
export const MAX_ANSWER_BYTES = 1024 * 1024;

/**
 * Reads at most `limit` bytes of a body; `over` says the body was longer (the rest is not read).
 *
 * @example Read a short body
 * ```ts
 * import { readCapped } from "./sinks.ts";
 * console.log(await readCapped(new Response("hello"), 3)); // { text: "hel", over: true }
 * ```
 */
export async function readCapped(
  response: Response,
  limit: number,
): Promise<{ text: string; over: boolean }> {
  if (!response.body) return { text: "", over: false };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let over = false;
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
      if (size > limit) {
        over = true;
        break;
      }
    }
  } finally {
    if (over) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  return { text: new TextDecoder().decode(concatBytes(chunks, limit)), over };
}

/**
 * What an answer to a batch means. Only `200`/`201` with a well-formed success answer is an
 * acknowledgement: `{"success":true, <counts>}`, or the counts wrapped as
 * `{"code":0,"message":"ok","data":{…}}` (where `code` 0 is the success flag). A wrapped
 * non-zero numeric `code` is the server's refusal (an HTTP-like code is classified like that
 * status); anything else (another 2xx, `"success":false`, a string code, a body that is not the
 * answer, such as an echo of the request) is a protocol error: retried, never taken as delivery,
 * never a reason to set data aside.
 *
 * @example A refusal in a 200 is not an acknowledgement
 * ```ts
 * import { interpretAnswer } from "./sinks.ts";
 * interpretAnswer(200, '{"success":false,"message":"db down"}').kind; // "retry"
 * ```
 */
export function interpretAnswer(status: number, text: string): SendOutcome {
  const protocol = (why: string): SendOutcome => ({
    kind: "retry",
    status,
    reason: `protocol error: ${why} (expected HTTP 200 with the batch counts and "success":true)`,
  });
  if (status !== 200 && status !== 201) {
    return protocol(`HTTP ${status} is not an acknowledgement`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return protocol(`unreadable answer: ${text.slice(0, 200)}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return protocol(`the answer is not an object: ${text.slice(0, 200)}`);
  }
  let wrapped = false;
  if ("code" in raw) {
    const envelope = raw as { code: unknown; message?: unknown; data?: unknown };
    if (typeof envelope.code !== "number") {
      return protocol(`"code" is ${JSON.stringify(envelope.code)}, not a number`);
    }
    if (envelope.code !== 0) {
      const message = typeof envelope.message === "string" ? envelope.message : "";
      return envelope.code >= 400 && envelope.code < 600
        ? classifyStatus(envelope.code, message)
        : {
          kind: "rejected",
          status: envelope.code,
          reason: `error code ${envelope.code}: ${message}`,
        };
    }
    raw = envelope.data;
    wrapped = true;
  }
  const success = (raw as { success?: unknown } | undefined)?.success;
  if (success !== true && !(wrapped && success === undefined)) {
    const message = (raw as { message?: unknown } | undefined)?.message;
    return protocol(
      `"success" is ${JSON.stringify(success) ?? "missing"}${
        typeof message === "string" ? `: ${message}` : ""
      }`,
    );
  }
  const parsed = BatchResultSchema.safeParse(raw);
  if (!parsed.success) {
    return protocol(`not a batch answer: ${formatIssues(parsed.error.issues)}`);
  }
  return { kind: "ok", result: parsed.data };
}

/**
 * The batch API client: `POST {base_url}/internal/v1/sync/batch` with bearer auth,
 * Idempotency-Key, optional gzip and a per-request timeout. Redirects are not followed (a
 * redirected POST may come back as a GET whose 200 looks like an acknowledgement): they pause
 * delivery with a message saying where they pointed. At most {@link MAX_ANSWER_BYTES} of an
 * answer is read, and nothing the server says reaches a log, status or the state database
 * without the token masked and control characters removed.
 *
 * @example Send to a server
 * ```ts
 * import { HttpSink } from "./sinks.ts";
 * const sink = new HttpSink({
 *   baseUrl: "http://127.0.0.1:9", token: "t", timeoutMs: 1000, compress: false, userAgent: "x",
 * });
 * console.log(sink.target);
 * ```
 */
export class HttpSink implements Sink {
  #options!: HttpSinkOptions;
  #redactor = new Redactor();

  /** Creates the client; `options` may be replaced later (config reload). */
  constructor(options: HttpSinkOptions) {
    this.options = options;
  }

  /** The current settings. */
  get options(): HttpSinkOptions {
    return this.#options;
  }

  /** Replaces the settings (config reload); the new token is masked from then on. */
  set options(options: HttpSinkOptions) {
    this.#options = options;
    this.#redactor.add(options.token);
  }

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
    let answer: { text: string; over: boolean };
    try {
      response = await fetch(this.target, {
        method: "POST",
        headers,
        body,
        redirect: "manual",
        signal: AbortSignal.any([signal, timeout]),
      });
      const ack = response.status === 200 || response.status === 201;
      answer = await readCapped(response, ack ? MAX_ANSWER_BYTES : 64 * 1024);
    } catch (error) {
      if (signal.aborted) throw error;
      if (error instanceof Deno.errors.NotCapable) {
        return {
          kind: "pause",
          status: 0,
          reason: `not permitted to connect to ${this.target}: ${(error as Error).message}; ` +
            `the worker may only reach the host it was started with`,
          fix: "restart the worker after changing server.base_url",
        };
      }
      const reason = timeout.aborted
        ? `no answer within ${timeoutMs / 1000} s (server.timeout)`
        : this.#clean(describeNetworkError(error, this.target));
      return { kind: "retry", status: 0, reason };
    }
    const status = response.status;
    if (status >= 300 && status < 400) {
      const location = response.headers.get("location");
      return {
        kind: "pause",
        status,
        reason: `HTTP ${status}: the batch API redirects ${
          location ? `to ${this.#clean(new URL(location, this.target).href)}` : "elsewhere"
        }; redirects are not followed`,
        fix: "set server.base_url to the address it redirects to (https:// instead of " +
          "http://, say)",
      };
    }
    const text = this.#clean(answer.text);
    if (status === 200 || status === 201) {
      if (answer.over) {
        return {
          kind: "retry",
          status,
          reason: `protocol error: an answer of more than ${MAX_ANSWER_BYTES} bytes is not an ` +
            `acknowledgement`,
        };
      }
      const outcome = interpretAnswer(status, answer.text);
      if (outcome.kind !== "ok") outcome.reason = this.#clean(outcome.reason);
      return outcome;
    }
    if (status < 300) return interpretAnswer(status, text);
    return classifyStatus(status, text, parseRetryAfter(response.headers.get("retry-after")));
  }

  /** Server-provided text as it may be shown: token masked, printable, bounded. */
  #clean(text: string): string {
    return printable(this.#redactor.mask(text), MAX_REASON_CHARS);
  }
}

/**
 * What a failed request came to, in words a person can act on: refused, reset, a DNS or TLS
 * failure, or the underlying message, with the URL (`fetch` itself says only "fetch failed";
 * the reason is in its `cause`).
 *
 * @example A refused connection
 * ```ts
 * import { describeNetworkError } from "./sinks.ts";
 * const error = new TypeError("fetch failed", {
 *   cause: new Error("tcp connect error: Connection refused (os error 111)"),
 * });
 * describeNetworkError(error, "http://127.0.0.1:8080/x");
 * // "cannot reach http://127.0.0.1:8080/x: connection refused (is the server running?) …"
 * ```
 */
export function describeNetworkError(error: unknown, url: string): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current instanceof Error && depth < 4; depth++) {
    if (!parts.includes(current.message)) parts.push(current.message);
    current = current.cause;
  }
  const detail = parts.filter((p) => p !== "fetch failed").join(": ") || String(error);
  const kinds: [RegExp, string][] = [
    [
      /dns error|failed to lookup|name or service not known|nodename nor servname/i,
      "DNS lookup failed",
    ],
    [
      /connection refused|os error 111|ECONNREFUSED/i,
      "connection refused (is the server running?)",
    ],
    [
      /connection reset|os error 104|closed before message completed|broken pipe/i,
      "connection reset",
    ],
    [/certificate|tls|ssl|handshake|corrupt message|InvalidContentType/i, "TLS error"],
    [/timed out|timeout/i, "timed out"],
    [/network is unreachable|no route to host|os error 101|os error 113/i, "network unreachable"],
  ];
  const kind = kinds.find(([pattern]) => pattern.test(detail))?.[1];
  return `cannot reach ${url}: ${kind ? `${kind} (${detail})` : detail}`;
}

/**
 * Delivers into a {@link ConversationStore} in this process: the zero-config embedded store.
 * Validation failures are rejections, as the server would answer 400.
 *
 * @example Deliver into an in-memory store
 * ```ts
 * import { EmbeddedSink } from "./sinks.ts";
 * import { ConversationStore } from "../../store/store.ts";
 * const sink = new EmbeddedSink(new ConversationStore(":memory:"));
 * const batch = { source_type: "claude_code" as const, conversations: [] };
 * const outcome = await sink.send({ body: JSON.stringify(batch), batch, key: "k" });
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
 * import { applyStoreRequest, ChannelSink } from "./sinks.ts";
 * import { ConversationStore } from "../../store/store.ts";
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
 * import { applyStoreRequest } from "./sinks.ts";
 * import { ConversationStore } from "../../store/store.ts";
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
