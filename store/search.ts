/**
 * Full-text search over a conversation store, kept beside it (`<store>.search.db`, SQLite FTS5)
 * and built behind the writes: the store's writers (a backfill) never pay for it; a search first
 * indexes the messages written since the last one (by their sequence number), then answers.
 * The store is read through a read-only connection and never written.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { messageTextSql } from "./message_text.ts";

/** Filters of a conversation listing or search (all optional, all combined). */
export interface ConversationFilter {
  /** A source type (`claude_code`). */
  source?: string;
  /** A project name or a working directory (exact). */
  project?: string;
  host?: string;
  model?: string;
  /** Updated at or after (epoch ms). */
  fromMs?: number;
  /** Updated before (epoch ms). */
  toMs?: number;
}

/** A conversation that matched a search, best first. */
export interface SearchHit {
  uuid: string;
  /** Lower is better (BM25). */
  rank: number;
  /** The best matching passage, matches between `<mark>` and `</mark>` (the rest escaped). */
  snippet: string;
}

/**
 * The SQL condition and arguments of a filter over conversations aliased `c`.
 *
 * @example Two filters
 * ```ts
 * import { filterSql } from "./search.ts";
 * console.log(filterSql({ source: "codex", host: "laptop" }).where);
 * ```
 */
export function filterSql(
  f: ConversationFilter,
  alias = "c",
  schema = "",
): { where: string; args: (string | number)[] } {
  const parts: string[] = [];
  const args: (string | number)[] = [];
  const add = (sql: string, ...values: (string | number)[]) => {
    parts.push(sql);
    args.push(...values);
  };
  const meta = (key: string) => `json_extract(${alias}.metadata, '$.${key}')`;
  if (f.source) add(`${alias}.source_type = ?`, f.source);
  if (f.project) add(`(${meta("project_name")} = ? OR ${meta("cwd")} = ?)`, f.project, f.project);
  if (f.host) add(`${meta("host")} = ?`, f.host);
  if (f.model) {
    add(
      `(${meta("model")} = ? OR EXISTS (SELECT 1 FROM ${schema}messages m WHERE ` +
        `m.conversation_uuid = ${alias}.uuid AND m.model = ?))`,
      f.model,
      f.model,
    );
  }
  if (f.fromMs !== undefined) add(`${alias}.updated_ms >= ?`, f.fromMs);
  if (f.toMs !== undefined) add(`${alias}.updated_ms < ?`, f.toMs);
  return { where: parts.length ? `WHERE ${parts.join(" AND ")}` : "", args };
}

/**
 * A date (`2026-11-29`) or RFC 3339 time as epoch ms, `undefined` when not one; as an end
 * (`to`), a bare date includes its whole day.
 *
 * @example The end of a day
 * ```ts
 * import { timeBound } from "./search.ts";
 * console.log(timeBound("2026-11-29", true)); // 1796083200000
 * ```
 */
export function timeBound(value: string, end = false): number | undefined {
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const ms = Date.parse(dateOnly ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(ms) || !/^\d{4}-\d{2}-\d{2}/.test(value)) return undefined;
  return dateOnly && end ? ms + 86_400_000 : ms;
}

/**
 * A search query in FTS5's syntax: all words required, the last one as a prefix (what is being
 * typed). Only the last: FTS5 reads a prefix term's whole list before it can intersect it, so
 * two prefix terms of common words cost half a second in a million messages.
 */
function ftsQuery(words: readonly string[]): string {
  return words.map((w, i) => i === words.length - 1 ? `"${w}"*` : `"${w}"`).join(" ");
}

/** Matches ranked per search, newest first (see {@link SearchIndex.search}). */
const CANDIDATES = 500;
const MARK = "\u0001";
const END = "\u0002";

/** A snippet with FTS5's markers, as safe HTML with `<mark>`. */
function markSnippet(raw: string): string {
  const escaped = raw.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return escaped.replaceAll(MARK, "<mark>").replaceAll(END, "</mark>");
}

/** A token as the index compares it: lower case, without diacritics (`remove_diacritics 2`). */
function fold(token: string): string {
  return token.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
}

/** Tokens as the index's `unicode61` tokenizer splits them: letters, numbers, private use. */
const TOKEN = /[\p{L}\p{N}\p{Co}\p{M}]+/gu;

/**
 * The passage of `text` with the most query words in a window of `size` tokens, the words between
 * {@link MARK} and {@link END}, `…` where it was cut. A token matches a query word when they fold
 * to the same, or, for the last word (being typed), when it begins with it.
 *
 * @example A passage
 * ```ts
 * import { snippetOf } from "./search.ts";
 * console.log(snippetOf("Prices: round the Tax down", "tax", 3).replace(/[\u0001\u0002]/g, "|"));
 * // …round the |Tax| down
 * ```
 */
export function snippetOf(text: string, q: string, size = 12): string {
  const raw = q.match(TOKEN) ?? [];
  const words = raw.map(fold);
  const last = words.pop();
  const exact = new Set(words);
  // At most SNIPPET_SPAN characters are split into tokens: from the start, or for a longer text
  // from a little before the first place a query word is written as typed (a 10 MB tool output
  // took a second and 300 MB to split whole).
  const from = text.length > SNIPPET_SPAN ? spanStart(text, raw) : 0;
  const span = text.slice(from, from + SNIPPET_SPAN);
  const tokens: RegExpExecArray[] = [];
  const hit: string[] = [];
  for (const t of span.matchAll(TOKEN)) {
    const lower = t[0].toLowerCase();
    // deno-lint-ignore no-control-regex
    const f = /[^\u0000-\u007f]/.test(lower) ? fold(lower) : lower;
    tokens.push(t);
    hit.push(exact.has(f) || (last !== undefined && f.startsWith(last)) ? f : "");
  }
  // Windows starting at a match (the first thousand: a long tool output has no better ones).
  let bestStart = 0;
  let bestScore = -1;
  const starts = hit.flatMap((h, i) => h ? [i] : []).slice(0, 1000);
  for (const start of starts) {
    const window = hit.slice(start, start + size).filter((h) => h);
    const score = new Set(window).size * 1000 + window.length;
    if (score > bestScore) [bestStart, bestScore] = [start, score];
  }
  // Context before the first match when the window would run past the end.
  bestStart = Math.max(0, Math.min(bestStart, tokens.length - size));
  const shown = tokens.slice(bestStart, bestStart + size);
  if (shown.length === 0) return text.slice(0, 200);
  const cut = from > 0 || bestStart > 0;
  let out = cut ? "…" : "";
  let at = cut ? shown[0].index : 0;
  shown.forEach((t, i) => {
    out += span.slice(at, t.index);
    out += hit[bestStart + i] ? `${MARK}${t[0]}${END}` : t[0];
    at = t.index + t[0].length;
  });
  const end = tokens[bestStart + size]?.index ?? span.length;
  return out + span.slice(at, end).trimEnd() + (from + end < text.length ? "…" : "");
}

/** Characters of a message {@link snippetOf} splits into tokens at most. */
const SNIPPET_SPAN = 100_000;

/**
 * Where a long text's passage is looked for: a little before the first query word as typed
 * (case aside), else its start (a word the index matched only once folded).
 */
function spanStart(text: string, words: readonly string[]): number {
  if (words.length === 0) return 0;
  const pattern = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|");
  const at = new RegExp(pattern, "iu").exec(text)?.index ?? 0;
  return Math.max(0, at - 1_000);
}

/**
 * The search index of a store.
 *
 * @example Search a store
 * ```ts
 * import { ConversationStore } from "./store.ts";
 * import { SearchIndex } from "./search.ts";
 * const dir = await Deno.makeTempDir();
 * const store = new ConversationStore(`${dir}/c.db`);
 * store.applyBatch({ source_type: "codex", conversations: [{ uuid: "c1", title: "Taxes",
 *   created_at: "2025-01-01T00:00:00Z", updated_at: "2025-01-01T00:00:00Z", metadata: {},
 *   messages: [{ uuid: "m1", parent_uuid: "", round_index: 1, role: "user", content_type: "text",
 *     content: { type: "text", text: "round the tax" }, content_text: "round the tax",
 *     created_at: "2025-01-01T00:00:00Z" }] }] });
 * const index = new SearchIndex(`${dir}/c.db`);
 * console.log(index.search("tax", {}, 10)[0].snippet); // round the <mark>tax</mark>
 * ```
 */
export class SearchIndex {
  readonly #db: DatabaseSync;
  /** The store, read through a connection of its own (Deno allows no ATTACH under limits). */
  readonly #store: DatabaseSync;
  readonly #insert: StatementSync;

  /** Opens (creating) the index of the store at `storePath`. */
  constructor(readonly storePath: string) {
    this.#db = new DatabaseSync(`${storePath}.search.db`);
    this.#db.exec(`PRAGMA busy_timeout=10000; PRAGMA journal_mode=WAL;
      CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(text, conversation_uuid UNINDEXED,
        tokenize = 'unicode61 remove_diacritics 2', prefix = '2 3');
      CREATE TABLE IF NOT EXISTS indexed (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER);`);
    this.#store = new DatabaseSync(storePath, { readOnly: true });
    this.#store.exec("PRAGMA busy_timeout=10000;");
    this.#insert = this.#db.prepare(
      "INSERT INTO fts (rowid, text, conversation_uuid) VALUES (?, ?, ?)",
    );
  }

  /** Indexes what was written since the last call; returns how many messages. */
  refresh(): number {
    const decoder = new TextDecoder();
    const pending = this.#store.prepare(
      `SELECT seq, conversation_uuid, ${messageTextSql(this.#store)} AS text FROM messages
       WHERE seq > ? ORDER BY seq LIMIT 5000`,
    );
    let done = 0;
    while (true) {
      const last =
        (this.#db.prepare("SELECT seq FROM indexed").get() as { seq: number } | undefined)
          ?.seq ?? 0;
      const rows = pending.all(last) as {
        seq: number;
        conversation_uuid: string;
        text: Uint8Array | string;
      }[];
      if (rows.length === 0) return done;
      this.#db.exec("BEGIN");
      for (const r of rows) {
        const text = typeof r.text === "string" ? r.text : decoder.decode(r.text);
        this.#insert.run(r.seq, text, r.conversation_uuid);
      }
      this.#db.prepare("INSERT OR REPLACE INTO indexed (id, seq) VALUES (1, ?)")
        .run(rows.at(-1)!.seq);
      this.#db.exec("COMMIT");
      done += rows.length;
    }
  }

  /**
   * Conversations whose title or messages match every word of `q` (the last as a prefix), best first
   * (a title match first, then by the best message's BM25 among the newest 500 matching
   * messages), at most `limit`.
   */
  search(q: string, filter: ConversationFilter, limit: number): SearchHit[] {
    this.refresh();
    const words = q.match(/[\p{L}\p{N}_]+/gu) ?? [];
    const query = ftsQuery(words);
    if (!query) return [];
    const { where, args } = filterSql(filter);
    const titled = this.#store.prepare(
      `SELECT c.uuid, c.title FROM conversations c ${where ? `${where} AND` : "WHERE"} ` +
        (words.map(() => "c.title LIKE ? ESCAPE '\\'").join(" AND ")),
    ).all(...args, ...words.map((w) => `%${w.replace(/[%_\\]/g, "\\$&")}%`)) as {
      uuid: string;
      title: string;
    }[];
    const hits = new Map<string, SearchHit>();
    const word = new RegExp(
      words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|"),
      "giu",
    );
    for (const t of titled) {
      const marked = t.title.replace(word, (m) => `${MARK}${m}${END}`);
      hits.set(t.uuid, { uuid: t.uuid, rank: -1e9, snippet: markSnippet(marked) });
    }
    // Ranked among the newest matches: FTS5 walks its lists newest first and stops there, so a
    // common word costs the same in a million messages as in a thousand. With a filter, more are
    // read until enough pass it (or the matches end).
    const take = Math.max(CANDIDATES, limit * 10);
    const candidates = this.#db.prepare(
      `SELECT rowid AS id, conversation_uuid AS uuid, bm25(fts) AS rank FROM fts
       WHERE fts MATCH ? AND rowid < ? ORDER BY rowid DESC LIMIT ?`,
    );
    // Each further read starts below the last (an OFFSET would walk the skipped matches again).
    const rows: { id: number; uuid: string; rank: number }[] = [];
    let below = Number.MAX_SAFE_INTEGER;
    for (let read = 0; read < take * 10;) {
      const batch = candidates.all(query, below, take) as typeof rows;
      read += batch.length;
      rows.push(...(where ? this.#passing(batch, where, args) : batch));
      if (batch.length < take || rows.length >= take) break;
      below = batch.at(-1)!.id;
    }
    const best = new Map<string, { id: number; rank: number }>();
    for (const r of rows) {
      const seen = best.get(r.uuid);
      if (!seen || r.rank < seen.rank) best.set(r.uuid, { id: r.id, rank: r.rank });
    }
    const chosen: [string, { id: number; rank: number }][] = [];
    for (const entry of [...best.entries()].sort((a, b) => a[1].rank - b[1].rank)) {
      if (hits.size + chosen.length >= limit) break;
      if (!hits.has(entry[0])) chosen.push(entry);
    }
    // The chosen messages' texts by rowid, their snippets cut here: FTS5's snippet() runs the match
    // again for each row, 200 ms for two common words in a million messages, against 1 ms.
    const ids = chosen.map(([, c]) => c.id);
    const snippets = new Map(
      ids.length === 0 ? [] : (this.#db.prepare(
        `SELECT rowid AS id, text FROM fts WHERE rowid IN (${ids.map(() => "?")})`,
      ).all(...ids) as { id: number; text: string }[]).map((r) => [r.id, snippetOf(r.text, q)]),
    );
    for (const [uuid, { id, rank }] of chosen) {
      hits.set(uuid, { uuid, rank, snippet: markSnippet(snippets.get(id) ?? "") });
    }
    return [...hits.values()].sort((a, b) => a.rank - b.rank).slice(0, limit);
  }

  /** The rows whose conversation passes a filter. */
  #passing<T extends { uuid: string }>(
    rows: readonly T[],
    where: string,
    args: readonly (string | number)[],
  ): T[] {
    const uuids = [...new Set(rows.map((r) => r.uuid))];
    const pass = new Set<string>();
    for (let i = 0; i < uuids.length; i += 500) {
      const chunk = uuids.slice(i, i + 500);
      const found = this.#store.prepare(
        `SELECT c.uuid FROM conversations c ${where} AND c.uuid IN (${chunk.map(() => "?")})`,
      ).all(...args, ...chunk) as { uuid: string }[];
      for (const f of found) pass.add(f.uuid);
    }
    return rows.filter((r) => pass.has(r.uuid));
  }

  /** Closes the index. */
  close(): void {
    this.#db.close();
    this.#store.close();
  }
}
