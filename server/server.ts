/**
 * The reference sync server's HTTP handler (DESIGN §3, §7): the batch API with bearer auth, a
 * body limit (413, also after gzip decoding), validation errors that name the field path, and
 * the read API.
 *
 * @module
 */
import { BatchSchema, formatIssues } from "../common/types.ts";
import { sha256Hex } from "../common/hash.ts";
import { type ConversationStore, IdempotencyConflictError } from "./store.ts";

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

async function readBody(req: Request, limit: number): Promise<string> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > limit) throw new HttpError(413, `body of ${declared} bytes exceeds ${limit}`);
  let stream = req.body;
  if (!stream) throw new HttpError(400, "empty body: expected a JSON batch");
  const encoding = (req.headers.get("content-encoding") ?? "identity").toLowerCase();
  if (encoding === "gzip") stream = stream.pipeThrough(new DecompressionStream("gzip"));
  else if (encoding !== "identity") {
    throw new HttpError(415, `unsupported Content-Encoding ${encoding}: expected gzip or none`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of stream) {
      size += chunk.byteLength;
      if (size > limit) throw new HttpError(413, `body exceeds ${limit} bytes`);
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof HttpError) throw error;
    throw new HttpError(400, `cannot read body: ${(error as Error).message}`);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const c of chunks) {
    bytes.set(c, offset);
    offset += c.byteLength;
  }
  return new TextDecoder().decode(bytes);
}

function pageParams(url: URL, defaultSize: number): { page: number; size: number } {
  const page = Number(url.searchParams.get("page") ?? "1");
  const size = Number(url.searchParams.get("page_size") ?? String(defaultSize));
  if (!Number.isInteger(page) || page < 1) {
    throw new HttpError(400, "page: expected an integer ≥ 1");
  }
  if (!Number.isInteger(size) || size < 1 || size > 1000) {
    throw new HttpError(400, "page_size: expected an integer from 1 to 1000");
  }
  return { page, size };
}

/**
 * Builds the request handler.
 *
 * @example Serve a store on a free port
 * ```ts
 * import { ConversationStore } from "./store.ts";
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
      if (req.headers.get("authorization") !== `Bearer ${options.token}`) {
        throw new HttpError(401, "missing or wrong bearer token");
      }
      if (url.pathname === "/internal/v1/sync/batch") {
        if (req.method !== "POST") throw new HttpError(405, "use POST");
        const text = await readBody(req, options.maxBodyBytes);
        let raw: unknown;
        try {
          raw = JSON.parse(text);
        } catch (error) {
          throw new HttpError(400, `invalid JSON: ${(error as Error).message}`);
        }
        const parsed = BatchSchema.safeParse(raw);
        if (!parsed.success) throw new HttpError(400, formatIssues(parsed.error.issues));
        const key = req.headers.get("idempotency-key") ?? undefined;
        const result = store.applyBatch(parsed.data, key, key ? sha256Hex(text) : undefined);
        return json(200, options.wrapped ? { code: 0, message: "ok", data: result } : result);
      }
      if (req.method !== "GET") throw new HttpError(405, "use GET");
      if (url.pathname === "/api/v1/stats/overview") return json(200, store.stats());
      if (url.pathname === "/api/v1/conversations") {
        const { page, size } = pageParams(url, 50);
        return json(
          200,
          store.listConversations(url.searchParams.get("source_type") ?? "", page, size),
        );
      }
      const match = url.pathname.match(/^\/api\/v1\/conversations\/([^/]+)\/messages$/);
      if (match) {
        const { page, size } = pageParams(url, 100);
        const result = store.listMessages(decodeURIComponent(match[1]), page, size);
        if (!result) throw new HttpError(404, `no conversation ${match[1]}`);
        return json(200, result);
      }
      throw new HttpError(404, `no route ${req.method} ${url.pathname}`);
    } catch (error) {
      if (error instanceof HttpError) {
        return json(error.status, { code: error.status, message: error.message });
      }
      if (error instanceof IdempotencyConflictError) {
        return json(422, { code: 422, message: error.message });
      }
      return json(500, { code: 500, message: (error as Error).message });
    }
  };
}
