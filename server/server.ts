/**
 * The reference sync server's HTTP handler: the batch API with bearer auth, a
 * body limit (413, also after gzip decoding), validation errors that name the field path, and
 * the read API.
 *
 * @module
 */
import { type Batch, ConversationSchema, formatIssues, SourceTypeSchema } from "../common/types.ts";
import { bearerMatches } from "../common/bearer.ts";
import { isLoopbackHost } from "../common/loopback.ts";
import { fingerprint64 } from "../common/hash.ts";
import {
  type ConversationStore,
  FINGERPRINT_FORM,
  IdempotencyConflictError,
} from "../store/store.ts";
import type { SearchIndex } from "../store/search.ts";
import { pageOf, ReadApiError, readRoute } from "./read_api.ts";
import { viewerRoute } from "./viewer.ts";

/** How the handler behaves. */
export interface ServerOptions {
  /** Where batches go. */
  store: ConversationStore;
  /** The bearer token every request must carry. */
  token: string;
  /** The largest accepted body, after decompression. */
  maxBodyBytes: number;
  /** Answer batches as `{code:0,message:"ok",data:{...}}` instead of the bare counts. */
  wrapped?: boolean;
  /** The store's search index (`?q=`); none for an in-memory store. */
  search?: SearchIndex;
  /** Serve the read API without a token (a viewer on 127.0.0.1); the batch API is then off. */
  readOnly?: boolean;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

/** The default body limit: twice the largest batch a worker sends (16 MiB). */
export const DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024;

/**
 * The body's bytes, read as it arrives and refused (413) as soon as it passes `limit` (after
 * gzip decoding), whether its length was declared or not. Each chunk is copied at once into one
 * buffer, allocated once for a declared length, else grown by half again (never past the
 * limit), so the chunks the connection hands over are let go as they come.
 */
async function readBody(req: Request, limit: number): Promise<Uint8Array> {
  const declared = Number(req.headers.get("content-length") ?? "NaN");
  if (declared > limit) throw new HttpError(413, `body of ${declared} bytes exceeds ${limit}`);
  let stream = req.body;
  if (!stream) throw new HttpError(400, "empty body: expected a JSON batch");
  const encoding = (req.headers.get("content-encoding") ?? "identity").toLowerCase();
  if (encoding === "gzip") stream = stream.pipeThrough(new DecompressionStream("gzip"));
  else if (encoding !== "identity") {
    throw new HttpError(415, `unsupported Content-Encoding ${encoding}: expected gzip or none`);
  }
  let buffer = new Uint8Array(
    encoding === "identity" && Number.isInteger(declared) && declared > 0 ? declared : 1 << 20,
  );
  let size = 0;
  const reader = stream.getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      if (size + value.byteLength > limit) {
        await reader.cancel().catch(() => {});
        throw new HttpError(413, `body exceeds ${limit} bytes`);
      }
      if (size + value.byteLength > buffer.length) {
        const grown = new Uint8Array(
          Math.min(limit, Math.max(Math.ceil(buffer.length * 1.5), size + value.byteLength)),
        );
        grown.set(buffer.subarray(0, size));
        buffer = grown;
      }
      buffer.set(value, size);
      size += value.byteLength;
    }
  } catch (error) {
    if (error instanceof HttpError) throw error;
    throw new HttpError(400, `cannot read body: ${(error as Error).message}`);
  } finally {
    reader.releaseLock();
  }
  return buffer.subarray(0, size);
}

/**
 * The body as text, and with an Idempotency-Key the fingerprint it is recorded with: xxHash64
 * of its bytes (SHA-256 was a tenth of the server's work in a backfill). It tells a retry from a
 * key reused by mistake and need not resist forgery: whoever holds the token can send anything.
 * The bytes are let go before the text is parsed.
 */
async function readPayload(
  req: Request,
  limit: number,
  key: string | undefined,
): Promise<{ text: string; fingerprint?: string }> {
  const body = await readBody(req, limit);
  const fingerprint = key ? `${FINGERPRINT_FORM}${fingerprint64(body)}` : undefined;
  return { text: new TextDecoder().decode(body), fingerprint };
}

/**
 * Validates a parsed batch one conversation at a time (the validated copy of a whole large
 * batch would double its memory) and returns it as given; 400 names the first bad field.
 */
function validateBatch(raw: unknown): Batch {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new HttpError(400, "(root): expected an object with source_type and conversations");
  }
  const { source_type, conversations } = raw as Record<string, unknown>;
  const type = SourceTypeSchema.safeParse(source_type);
  if (!type.success) {
    throw new HttpError(
      400,
      formatIssues(type.error.issues.map((i) => ({ ...i, path: ["source_type", ...i.path] }))),
    );
  }
  if (!Array.isArray(conversations)) {
    throw new HttpError(400, "conversations: expected an array");
  }
  conversations.forEach((conversation, index) => {
    const checked = ConversationSchema.safeParse(conversation);
    if (!checked.success) {
      throw new HttpError(
        400,
        formatIssues(
          checked.error.issues.map((i) => ({ ...i, path: ["conversations", index, ...i.path] })),
        ),
      );
    }
  });
  return raw as Batch;
}

/**
 * The host name a request was addressed to (its `Host` header without the port), or `undefined`
 * when it names none.
 */
function addressedHost(req: Request): string | undefined {
  const host = req.headers.get("host");
  if (host === null) return undefined;
  const name = host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.split(":")[0];
  return name.toLowerCase();
}

/**
 * Builds the request handler.
 *
 * @example Serve a store on a free port
 * ```ts
 * import { ConversationStore } from "../store/store.ts";
 * import { createHandler } from "./server.ts";
 * const store = new ConversationStore(":memory:");
 * const server = Deno.serve({ port: 0, onListen() {} }, createHandler({ store, token: "t", maxBodyBytes: 1 << 20 }));
 * await server.shutdown();
 * store.close();
 * ```
 */
export function createHandler(options: ServerOptions): (req: Request) => Promise<Response> {
  const { store } = options;
  return async (req) => {
    const url = new URL(req.url);
    try {
      if (url.pathname === "/healthz") return json(200, { ok: true });
      const open = options.readOnly && !options.token;
      if (!open && !bearerMatches(req.headers.get("authorization"), options.token)) {
        throw new HttpError(401, "missing or wrong bearer token");
      }
      // A web page can give its own name this machine's address (DNS rebinding) and then read
      // the open viewer as its own origin; its requests still carry that name. Browsers always
      // send `Host`; a client that sends none is not a page.
      const host = addressedHost(req);
      if (open && host !== undefined && !isLoopbackHost(host)) {
        throw new HttpError(
          403,
          `this viewer answers only requests addressed to 127.0.0.1, localhost or [::1], not ` +
            `${JSON.stringify(host.slice(0, 256))}: a web page that gave its own name this ` +
            `machine's address must not read your conversations. Open the address it printed`,
        );
      }
      if (url.pathname === "/internal/v1/sync/batch") {
        if (options.readOnly) throw new HttpError(403, "this server is read-only (a viewer)");
        if (req.method !== "POST") throw new HttpError(405, "use POST");
        const key = req.headers.get("idempotency-key") ?? undefined;
        const { text, fingerprint } = await readPayload(req, options.maxBodyBytes, key);
        let raw: unknown;
        try {
          raw = JSON.parse(text);
        } catch (error) {
          throw new HttpError(400, `invalid JSON: ${(error as Error).message}`);
        }
        const result = store.applyBatch(validateBatch(raw), key, fingerprint);
        return json(200, options.wrapped ? { code: 0, message: "ok", data: result } : result);
      }
      if (req.method !== "GET") throw new HttpError(405, "use GET");
      if (url.pathname === "/api/v1/stats/overview") return json(200, store.stats());
      const view = viewerRoute(url, store);
      if (view) return view;
      const read = readRoute(url, store, options.search);
      if (read !== undefined) return json(200, read);
      const match = url.pathname.match(/^\/api\/v1\/conversations\/([^/]+)\/messages$/);
      if (match) {
        const { page, size } = pageOf(url, 100);
        let uuid: string;
        try {
          uuid = decodeURIComponent(match[1]);
        } catch {
          throw new HttpError(400, `conversation id: invalid percent-encoding in ${match[1]}`);
        }
        const result = store.listMessages(uuid, page, size);
        if (!result) throw new HttpError(404, `no conversation ${match[1]}`);
        return json(200, result);
      }
      throw new HttpError(404, `no route ${req.method} ${url.pathname}`);
    } catch (error) {
      if (error instanceof HttpError || error instanceof ReadApiError) {
        return json(error.status, { code: error.status, message: error.message });
      }
      if (error instanceof IdempotencyConflictError) {
        return json(422, { code: 422, message: error.message });
      }
      return json(500, { code: 500, message: (error as Error).message });
    }
  };
}
