/**
 * The read API's listing, search, lookup and usage routes, with their parameters checked: a bad
 * or unknown parameter is a 400 that names it.
 *
 * ```
 * GET /api/v1/conversations?q=&source=&project=&host=&model=&from=&to=&page=&page_size=
 * GET /api/v1/conversations/:uuid
 * GET /api/v1/stats/usage?source=&project=&host=&model=&from=&to=
 * ```
 *
 * @module
 */
import { SOURCE_TYPES } from "../common/types.ts";
import type { ConversationStore } from "../store/store.ts";
import { type ConversationFilter, type SearchIndex, timeBound } from "../store/search.ts";

/** A request the read API refuses, with its status and why. */
export class ReadApiError extends Error {
  override name = "ReadApiError";
  /** `status`: the HTTP status to answer. */
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const FILTERS = ["source", "source_type", "project", "host", "model", "from", "to"];
const PAGING = ["page", "page_size"];
const MAX_PAGE = 1_000_000_000;
/** Search results are ranked and then paged: this many at most. */
const MAX_HITS = 10_000;

function checkKnown(url: URL, allowed: readonly string[]): void {
  for (const key of url.searchParams.keys()) {
    if (!allowed.includes(key)) {
      throw new ReadApiError(
        400,
        `${key}: unknown parameter (expected one of ${allowed.join(", ")})`,
      );
    }
  }
}

/** A date or time parameter as epoch ms; a bare date `to` includes that whole day. */
function timeParam(url: URL, key: "from" | "to"): number | undefined {
  const value = url.searchParams.get(key);
  if (value === null || value === "") return undefined;
  const ms = timeBound(value, key === "to");
  if (ms === undefined) {
    throw new ReadApiError(400, `${key}: expected a date (2026-11-29) or an RFC 3339 time`);
  }
  return ms;
}

/**
 * The filter a request asks for.
 *
 * @example A filter
 * ```ts
 * import { filterOf } from "./read_api.ts";
 * console.log(filterOf(new URL("http://x/?source=codex&to=2026-11-29")).source); // codex
 * ```
 */
export function filterOf(url: URL): ConversationFilter {
  const source = url.searchParams.get("source") ?? url.searchParams.get("source_type") ?? "";
  if (source && !(SOURCE_TYPES as readonly string[]).includes(source)) {
    throw new ReadApiError(400, `source: expected one of ${SOURCE_TYPES.join(", ")}`);
  }
  const filter: ConversationFilter = {};
  if (source) filter.source = source;
  for (const key of ["project", "host", "model"] as const) {
    const value = url.searchParams.get(key);
    if (value) filter[key] = value;
  }
  const from = timeParam(url, "from");
  const to = timeParam(url, "to");
  if (from !== undefined) filter.fromMs = from;
  if (to !== undefined) filter.toMs = to;
  return filter;
}

/**
 * The `page` and `page_size` of a request; a bad one is a 400 naming it.
 *
 * @example The defaults
 * ```ts
 * import { pageOf } from "./read_api.ts";
 * console.log(pageOf(new URL("http://x/"), 50)); // { page: 1, size: 50 }
 * ```
 */
export function pageOf(url: URL, defaultSize: number): { page: number; size: number } {
  const page = Number(url.searchParams.get("page") ?? "1");
  const size = Number(url.searchParams.get("page_size") ?? String(defaultSize));
  if (!Number.isInteger(page) || page < 1 || page > MAX_PAGE) {
    throw new ReadApiError(400, `page: expected an integer from 1 to ${MAX_PAGE}`);
  }
  if (!Number.isInteger(size) || size < 1 || size > 1000) {
    throw new ReadApiError(400, "page_size: expected an integer from 1 to 1000");
  }
  return { page, size };
}

/**
 * Answers a read route, or `undefined` when the path is not one of them.
 *
 * @example List conversations
 * ```ts
 * import { ConversationStore } from "../store/store.ts";
 * import { readRoute } from "./read_api.ts";
 * const store = new ConversationStore(":memory:");
 * console.log(readRoute(new URL("http://x/api/v1/conversations"), store, undefined)); // { items: [], total: 0, page: 1, page_size: 50 }
 * ```
 */
export function readRoute(
  url: URL,
  store: ConversationStore,
  search: SearchIndex | undefined,
): unknown | undefined {
  if (url.pathname === "/api/v1/conversations") {
    checkKnown(url, ["q", ...FILTERS, ...PAGING]);
    const filter = filterOf(url);
    const { page, size } = pageOf(url, 50);
    const q = url.searchParams.get("q")?.trim() ?? "";
    if (!q) return store.listConversations(filter, page, size);
    if (q.length > 500) throw new ReadApiError(400, "q: expected at most 500 characters");
    if (!search) {
      throw new ReadApiError(400, "q: this store has no search index (an in-memory store)");
    }
    const hits = search.search(q, filter, Math.min(page * size, MAX_HITS));
    const items = hits.slice((page - 1) * size, page * size).flatMap((hit) => {
      const conversation = store.conversation(hit.uuid);
      return conversation ? [{ ...conversation, snippet: hit.snippet, rank: hit.rank }] : [];
    });
    return { items, total: hits.length, page, page_size: size, q };
  }
  if (url.pathname === "/api/v1/stats/usage") {
    checkKnown(url, FILTERS);
    return { rows: store.usage(filterOf(url)) };
  }
  const one = url.pathname.match(/^\/api\/v1\/conversations\/([^/]+)$/);
  if (one) {
    checkKnown(url, []);
    let uuid: string;
    try {
      uuid = decodeURIComponent(one[1]);
    } catch {
      throw new ReadApiError(400, `conversation id: invalid percent-encoding in ${one[1]}`);
    }
    const conversation = store.conversation(uuid);
    if (!conversation) throw new ReadApiError(404, `no conversation ${uuid}`);
    return conversation;
  }
  return undefined;
}
