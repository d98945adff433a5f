/**
 * What every delivery target is ({@link Sink}) and says ({@link SendOutcome}): a send never
 * throws for server or network trouble; it returns what delivery should do next. Also the
 * retry timing and the meaning of HTTP statuses, which every target shares.
 *
 * @module
 */
import type { Batch, BatchResult } from "../types.ts";
import type { BatchRows } from "../../store/rows.ts";
import type { ItemForm } from "./item.ts";

/** The most of a server's answer kept for a message. */
export const MAX_REASON_CHARS = 500;

/** What a send came to, and so what the pipeline does next. */
export type SendOutcome =
  /**
   * Stored. `receipt`: the embedded store's count of batches from this source, this one
   * included (see `ConversationStore.receipt`).
   */
  | { kind: "ok"; result: BatchResult; receipt?: number }
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

/** One batch ready to send: its key, and the batch as an object, as a JSON body and as rows. */
export interface OutgoingBatch {
  /** The JSON body. */
  readonly body: string;
  /** The JSON body as bytes, as a server is sent it. */
  readonly blob: Blob;
  /** The batch as objects. */
  readonly batch: Batch;
  /** The batch as the rows the store writes. */
  readonly rows: BatchRows;
  /** Deterministic Idempotency-Key. */
  readonly key: string;
}

/** Where batches go. */
export interface Sink {
  /** Human-readable target, for logs and status. */
  readonly target: string;
  /** The form it sends, which conversations are made into as they are parsed (absent: JSON). */
  readonly form?: ItemForm;
  /** How many batches may be sent before the oldest of them is acknowledged (absent: one). */
  readonly inFlight?: number;
  /** Sends one batch; `signal` aborts it (shutdown). */
  send(batch: OutgoingBatch, signal: AbortSignal): Promise<SendOutcome>;
}

/**
 * Milliseconds to wait according to a `Retry-After` header, in either form (delta-seconds or
 * HTTP-date), clamped to 15 minutes; `undefined` when absent or unreadable.
 *
 * @example Both forms
 * ```ts
 * import { parseRetryAfter } from "./sink.ts";
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
 * import { backoffDelay } from "./sink.ts";
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
 * import { classifyStatus } from "./sink.ts";
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
