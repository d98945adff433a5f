/**
 * The HTTP client of the batch API, behind {@link Sink}.
 *
 * @module
 */
import { printable, Redactor } from "../redact.ts";
import { interpretAnswer, MAX_ANSWER_BYTES, readCapped } from "./answer.ts";
import {
  classifyStatus,
  MAX_REASON_CHARS,
  type OutgoingBatch,
  parseRetryAfter,
  type SendOutcome,
  type Sink,
} from "./sink.ts";

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
 * Idempotency-Key, optional gzip and a per-request timeout. Redirects are not followed (a
 * redirected POST may come back as a GET whose 200 looks like an acknowledgement): they pause
 * delivery with a message saying where they pointed. At most {@link MAX_ANSWER_BYTES} of an
 * answer is read, and nothing the server says reaches a log, status or the state database
 * without the token masked and control characters removed.
 *
 * @example Send to a server
 * ```ts
 * import { HttpSink } from "./http_sink.ts";
 * const sink = new HttpSink({
 *   baseUrl: "http://127.0.0.1:9", token: "t", timeoutMs: 1000, compress: false, userAgent: "x",
 * });
 * console.log(sink.target);
 * ```
 */
export class HttpSink implements Sink {
  /**
   * Two: the server stores one batch while the worker reads the next. With one, each waited for
   * the other in turn (a backfill over HTTP took a third longer).
   */
  readonly inFlight = 2;
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
    let body: BodyInit = out.blob;
    if (compress && out.blob.size > 1024) {
      headers["content-encoding"] = "gzip";
      body = await new Response(out.blob.stream().pipeThrough(new CompressionStream("gzip")))
        .arrayBuffer();
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
 * import { describeNetworkError } from "./http_sink.ts";
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
