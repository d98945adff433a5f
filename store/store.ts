/**
 * The conversation store of the reference server on `node:sqlite`: idempotent
 * upserts by uuid and the read queries. Used over HTTP by `server/main.ts` and in-process as a
 * worker's zero-config embedded store.
 *
 * @module
 */
import { DatabaseSync, type StatementSync } from "node:sqlite";
import { type Batch, type BatchResult, type Message, titleRank } from "../common/types.ts";
import { type ConversationFilter, filterSql } from "./search.ts";
import { MESSAGE_TEXT_VIEW, messageTextSql } from "./message_text.ts";
import { type BatchRows, batchRows, type ConversationRow, type MessageRow } from "./rows.ts";

/** A conversation as the read API returns it. */
export interface StoredConversation {
  uuid: string;
  source_type: string;
  title: string;
  created_at: string;
  updated_at: string;
  metadata: Record<string, unknown>;
  message_count: number;
}

/** A message as the read API returns it. */
export type StoredMessage = Message & { conversation_uuid: string };

/** Usage of one day, source and model. */
export interface UsageRow {
  day: string;
  source_type: string;
  model: string;
  messages: number;
  tokens: number;
  input: number;
  output: number;
}

const CONVERSATION_COLUMNS =
  `SELECT c.uuid, c.source_type, CAST(c.title AS BLOB) AS title, c.created_at, c.updated_at,
    c.metadata, (SELECT COUNT(*) FROM messages m WHERE m.conversation_uuid = c.uuid) AS message_count
   FROM conversations c`;

function conversationOf(r: Record<string, string | number>): StoredConversation {
  return {
    uuid: String(r.uuid),
    source_type: String(r.source_type),
    title: untext(r.title),
    created_at: String(r.created_at),
    updated_at: String(r.updated_at),
    metadata: JSON.parse(String(r.metadata)),
    message_count: Number(r.message_count),
  };
}

/** One page of a listing. */
export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  page_size: number;
}

/**
 * The same Idempotency-Key was used for a different payload (draft-ietf-httpapi-idempotency-key).
 *
 * @example Detect a reused key
 * ```ts
 * import { IdempotencyConflictError } from "./store.ts";
 * const e = new IdempotencyConflictError("b_1");
 * console.log(e.message);
 * ```
 */
export class IdempotencyConflictError extends Error {
  override name = "IdempotencyConflictError";
  /** Creates the error for `key`. */
  constructor(key: string) {
    super(`Idempotency-Key ${key} was already used for a different payload`);
  }
}

/**
 * The prefix of a payload fingerprint an idempotency key is recorded with (xxHash64). Keys
 * recorded before it was used have a SHA-256 instead.
 */
export const FINGERPRINT_FORM = "x64:";

/**
 * Whether a payload fingerprint `given` matches the one a key was `recorded` with. One of
 * another form (SHA-256, recorded before) cannot be compared, so it matches: a retry across that
 * change is applied again, which upserts make harmless.
 */
function fingerprintMatches(recorded: string, given: string): boolean {
  return recorded === given ||
    recorded.startsWith(FINGERPRINT_FORM) !== given.startsWith(FINGERPRINT_FORM);
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS conversations (
  uuid TEXT PRIMARY KEY, source_type TEXT NOT NULL, title TEXT NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL, metadata TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY AUTOINCREMENT, uuid TEXT NOT NULL UNIQUE, conversation_uuid TEXT NOT NULL,
  parent_uuid TEXT NOT NULL, round_index INTEGER NOT NULL, role TEXT NOT NULL,
  content_type TEXT NOT NULL, content TEXT NOT NULL, content_text TEXT NOT NULL,
  created_at TEXT NOT NULL, model TEXT, usage TEXT, metadata TEXT);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_uuid);
CREATE TABLE IF NOT EXISTS idempotency_keys (
  key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS receipts (source_type TEXT PRIMARY KEY, batches INTEGER NOT NULL);
`;

/**
 * Milliseconds since the epoch of an RFC 3339 timestamp: what times are ordered and compared by,
 * since their strings do not sort (`…00Z` against `…00.5Z`, or `+02:00` offsets).
 */
function epochMs(timestamp: string): number {
  const ms = Date.parse(timestamp);
  return Number.isNaN(ms) ? 0 : ms;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A text value as bound: `node:sqlite` cuts a string at its first NUL, so such a string goes in
 * as its UTF-8 bytes (the column's SQL casts them back to text, keeping every byte).
 */
function text(value: string): string | Uint8Array {
  return value.includes("\0") ? encoder.encode(value) : value;
}

/** A text column read back whole (selected as a blob: reading it as text stops at a NUL). */
function untext(value: unknown): string {
  return value instanceof Uint8Array ? decoder.decode(value) : String(value ?? "");
}

/**
 * Runs `open` again while another process holds a lock it needs, for up to 10 s: SQLite does not
 * call its busy handler for every lock (switching a new file to WAL, among others), so processes
 * that open one new store together would otherwise fail with "database is locked".
 */
function whileLocked(open: () => void): void {
  const deadline = Date.now() + 10_000;
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (let wait = 10;; wait = Math.min(wait * 2, 500)) {
    try {
      open();
      return;
    } catch (error) {
      if (!/locked|busy/i.test((error as Error).message) || Date.now() > deadline) throw error;
      Atomics.wait(sleeper, 0, 0, wait);
    }
  }
}

/** The statements only a writer needs. */
/**
 * What {@link ConversationStore.applyRows} did: the counts a server answers, and in a store that
 * keeps receipts, how many batches of this source it has stored, this one included.
 */
export type StoredBatch = BatchResult & { receipt?: number };

interface WriteStatements {
  countReceipt: StatementSync;
  insertConversation: StatementSync;
  updateConversation: StatementSync;
  deleteConversation: StatementSync;
  insertMessage: StatementSync;
  getMessage: StatementSync;
  updateMessage: StatementSync;
}

/**
 * A SQLite conversation store.
 *
 * @example Store a batch twice: the second time changes nothing
 * ```ts
 * import { ConversationStore } from "./store.ts";
 * const store = new ConversationStore(":memory:");
 * const batch = { source_type: "claude_code" as const, conversations: [{
 *   uuid: "c1", title: "t", created_at: "2025-01-01T00:00:00Z", updated_at: "2025-01-01T00:00:00Z",
 *   metadata: {}, messages: [] }] };
 * store.applyBatch(batch);
 * console.log(store.applyBatch(batch).inserted_conversations); // 0
 * store.close();
 * ```
 */
export class ConversationStore {
  readonly #db: DatabaseSync;
  readonly #getConversation: StatementSync;
  /** Prepared by a writer only: a reader may have a store no writer of this version upgraded. */
  readonly #writes?: WriteStatements;
  readonly #receipts: boolean;

  /**
   * Opens (creating if needed) the store at `path`; `:memory:` for a throwaway one. With
   * `readOnly`, an existing store is opened for reading beside its writers (the viewer beside
   * running workers): nothing is created or migrated, and writes fail. With `receipts` (the
   * embedded store), each batch stored is counted per source ({@link receipt}), so that a worker
   * can tell a store that holds less than it acknowledged: one restored from an older copy.
   */
  constructor(
    readonly path: string,
    options: { readOnly?: boolean; receipts?: boolean } = {},
  ) {
    this.#receipts = options.receipts ?? false;
    this.#db = new DatabaseSync(path, { readOnly: options.readOnly ?? false });
    if (options.readOnly) this.#db.exec("PRAGMA busy_timeout=10000;");
    else {
      // Checkpoints every 16 MB of WAL rather than every 4 MB: each costs two fsyncs, and a
      // backfill writes hundreds of MB (a commit still syncs the WAL: durability is the same).
      // Workers started together open a new store at once: see `whileLocked`.
      whileLocked(() => {
        this.#db.exec(
          "PRAGMA busy_timeout=10000; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; " +
            "PRAGMA wal_autocheckpoint=4000;",
        );
        this.#db.exec(SCHEMA);
        this.#migrate();
      });
    }
    this.#getConversation = this.#db.prepare(
      `SELECT CAST(title AS BLOB) AS title, created_at, updated_at, metadata, source_type
       FROM conversations WHERE uuid = ?`,
    );
    if (!options.readOnly) this.#writes = this.#prepareWrites();
  }

  /** The write statements; a read-only store has none. */
  get #w(): WriteStatements {
    if (!this.#writes) throw new Error(`the store ${this.path} is open read-only`);
    return this.#writes;
  }

  #prepareWrites(): WriteStatements {
    return {
      countReceipt: this.#db.prepare(
        `INSERT INTO receipts (source_type, batches) VALUES (?, 1)
         ON CONFLICT(source_type) DO UPDATE SET batches = batches + 1 RETURNING batches`,
      ),
      insertConversation: this.#db.prepare(
        `INSERT INTO conversations (uuid, source_type, title, created_at, updated_at, metadata,
          created_ms, updated_ms) VALUES (?, ?, CAST(? AS TEXT), ?, ?, ?, ?, ?)`,
      ),
      updateConversation: this.#db.prepare(
        `UPDATE conversations SET title = CAST(? AS TEXT), created_at = ?, updated_at = ?,
          metadata = ?, created_ms = ?, updated_ms = ? WHERE uuid = ?`,
      ),
      deleteConversation: this.#db.prepare("DELETE FROM conversations WHERE uuid = ?"),
      insertMessage: this.#db.prepare(
        `INSERT INTO messages (uuid, conversation_uuid, parent_uuid, round_index, role,
          content_type, content, content_text, text_key, created_at, model, usage, metadata,
          created_ms)
         VALUES (?, ?, CAST(? AS TEXT), ?, ?, ?, ?, CAST(? AS TEXT), ?, ?, CAST(? AS TEXT), ?, ?, ?)
         ON CONFLICT(uuid) DO NOTHING`,
      ),
      getMessage: this.#db.prepare(
        `SELECT conversation_uuid, CAST(parent_uuid AS BLOB) AS parent_uuid, round_index, role,
          content_type, content, ${messageTextSql(this.#db)} AS content_text, created_at,
          CAST(model AS BLOB) AS model, usage, metadata FROM messages WHERE uuid = ?`,
      ),
      updateMessage: this.#db.prepare(
        `UPDATE messages SET parent_uuid = CAST(? AS TEXT), round_index = ?, role = ?,
          content_type = ?, content = ?, content_text = CAST(? AS TEXT), text_key = ?,
          created_at = ?, model = CAST(? AS TEXT), usage = ?, metadata = ?, created_ms = ?
          WHERE uuid = ?`,
      ),
    };
  }

  /**
   * Adds what stores written before had not: times as epoch milliseconds (ordering by the
   * timestamp strings put mixed precisions and offsets out of order).
   */
  #migrate(): void {
    const columns = (table: string) =>
      (this.#db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) =>
        c.name
      );
    const fill = (table: string, key: string, pairs: [string, string][]) => {
      const rows = this.#db.prepare(
        `SELECT ${key} AS k, ${pairs.map(([from]) => from).join(", ")} FROM ${table}`,
      ).all() as Record<string, string>[];
      const update = this.#db.prepare(
        `UPDATE ${table} SET ${pairs.map(([, to]) => `${to} = ?`).join(", ")} WHERE ${key} = ?`,
      );
      for (const row of rows) update.run(...pairs.map(([from]) => epochMs(row[from])), row.k);
    };
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      if (!columns("conversations").includes("updated_ms")) {
        this.#db.exec(`ALTER TABLE conversations ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0;
          ALTER TABLE conversations ADD COLUMN updated_ms INTEGER NOT NULL DEFAULT 0;`);
        fill("conversations", "uuid", [["created_at", "created_ms"], ["updated_at", "updated_ms"]]);
      }
      if (!columns("messages").includes("created_ms")) {
        this.#db.exec("ALTER TABLE messages ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0");
        fill("messages", "seq", [["created_at", "created_ms"]]);
      }
      // Messages stored before keep their copy of the text (text_key NULL).
      if (!columns("messages").includes("text_key")) {
        this.#db.exec("ALTER TABLE messages ADD COLUMN text_key TEXT");
      }
      this.#db.exec(MESSAGE_TEXT_VIEW);
      this.#db.exec(`
        DROP INDEX IF EXISTS conversations_source;
        CREATE INDEX IF NOT EXISTS conversations_by_time ON conversations(updated_ms, uuid);
        CREATE INDEX IF NOT EXISTS conversations_by_source ON conversations(source_type, updated_ms);
      `);
      this.#db.exec("COMMIT");
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec("ROLLBACK");
      throw error;
    }
  }

  /**
   * Applies a batch in one transaction: conversations are upserted (an empty title never
   * replaces a title, metadata is merged key by key), messages are inserted by uuid, and a
   * message that already exists is updated only when it belongs to the same conversation and
   * differs. A new conversation whose messages all belong to other conversations is not kept.
   * With `key`, a key reused for a different payload throws {@link IdempotencyConflictError}.
   */
  applyBatch(batch: Batch, key?: string, fingerprint?: string): StoredBatch {
    return this.applyRows(batchRows(batch), key, fingerprint);
  }

  /** {@link applyBatch} of a batch already made into rows (see rows.ts). */
  applyRows(batch: BatchRows, key?: string, fingerprint?: string): StoredBatch {
    const result: StoredBatch = {
      success: true,
      inserted_conversations: 0,
      inserted_messages: 0,
      updated_conversations: 0,
      updated_messages: 0,
    };
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      if (key && fingerprint) {
        const row = this.#db.prepare("SELECT fingerprint FROM idempotency_keys WHERE key = ?")
          .get(key) as { fingerprint: string } | undefined;
        if (row && !fingerprintMatches(row.fingerprint, fingerprint)) {
          throw new IdempotencyConflictError(key);
        }
        if (!row) {
          this.#db.prepare(
            "INSERT INTO idempotency_keys (key, fingerprint, created_at) VALUES (?, ?, ?)",
          ).run(key, fingerprint, new Date().toISOString());
        }
      }
      for (const conversation of batch.conversations) {
        const isNew = this.#upsertConversation(batch.source_type, conversation, result);
        const before = result.inserted_messages;
        for (const message of conversation.messages) {
          this.#upsertMessage(conversation.uuid, message, result);
        }
        // A new conversation whose every message is stored in another one already (a Takeout
        // past Google's retention, a session resumed and left) would be an empty copy of it.
        if (isNew && conversation.messages.length > 0 && result.inserted_messages === before) {
          this.#w.deleteConversation.run(conversation.uuid);
          result.inserted_conversations--;
        }
      }
      if (this.#receipts) {
        const row = this.#w.countReceipt.get(batch.source_type) as { batches: number };
        result.receipt = row.batches;
      }
      this.#db.exec("COMMIT");
    } catch (error) {
      this.#db.exec("ROLLBACK");
      throw error;
    }
    return result;
  }

  /**
   * How many batches of `sourceType` this store has stored with receipts (0 in a store that
   * never kept them, or one written before they were).
   *
   * @example Count a batch
   * ```ts
   * import { ConversationStore } from "./store.ts";
   * const store = new ConversationStore(":memory:", { receipts: true });
   * store.applyBatch({ source_type: "codex", conversations: [] });
   * console.log(store.receipt("codex"), store.receipt("gemini")); // 1 0
   * ```
   */
  receipt(sourceType: string): number {
    try {
      const row = this.#db.prepare("SELECT batches FROM receipts WHERE source_type = ?")
        .get(sourceType) as { batches: number } | undefined;
      return row?.batches ?? 0;
    } catch (error) {
      // Opened read-only, a store from before receipts has no such table.
      if (/no such table/.test((error as Error).message)) return 0;
      throw error;
    }
  }

  /** Stores `c`'s row; whether it is new. */
  #upsertConversation(sourceType: string, c: ConversationRow, result: BatchResult): boolean {
    const row = this.#getConversation.get(c.uuid) as
      | { title: Uint8Array; created_at: string; updated_at: string; metadata: string }
      | undefined;
    if (!row) {
      this.#w.insertConversation.run(
        c.uuid,
        sourceType,
        text(c.title),
        c.created_at,
        c.updated_at,
        JSON.stringify(c.metadata),
        epochMs(c.created_at),
        epochMs(c.updated_at),
      );
      result.inserted_conversations++;
      return true;
    }
    const storedTitle = untext(row.title);
    const stored = JSON.parse(row.metadata) as Record<string, unknown>;
    // A title replaces one of the same or a weaker source: the best title sent is kept.
    const better = c.title !== "" &&
      (storedTitle === "" || titleRank(c.metadata.title_source) >= titleRank(stored.title_source));
    const title = better ? c.title : storedTitle;
    const created = epochMs(c.created_at) < epochMs(row.created_at) ? c.created_at : row.created_at;
    const updated = epochMs(c.updated_at) > epochMs(row.updated_at) ? c.updated_at : row.updated_at;
    const merged = { ...stored, ...c.metadata };
    if (!better) {
      if (stored.title_source === undefined) delete merged.title_source;
      else merged.title_source = stored.title_source;
    }
    const metadata = JSON.stringify(merged);
    if (
      title !== storedTitle || created !== row.created_at || updated !== row.updated_at ||
      metadata !== row.metadata
    ) {
      this.#w.updateConversation.run(
        text(title),
        created,
        updated,
        metadata,
        epochMs(created),
        epochMs(updated),
        c.uuid,
      );
      result.updated_conversations++;
    }
    return false;
  }

  #upsertMessage(conversationUuid: string, m: MessageRow, result: BatchResult): void {
    const bound = [
      text(m.parent_uuid),
      m.round_index,
      m.role,
      m.content_type,
      m.content,
      m.text_key === null ? text(m.content_text) : "",
      m.text_key,
      m.created_at,
      m.model === null ? null : text(m.model),
      m.usage,
      m.metadata,
    ] as const;
    const createdMs = epochMs(m.created_at);
    const inserted = this.#w.insertMessage.run(m.uuid, conversationUuid, ...bound, createdMs);
    if (Number(inserted.changes) === 1) {
      result.inserted_messages++;
      return;
    }
    const row = this.#w.getMessage.get(m.uuid) as Record<
      string,
      string | number | Uint8Array | null
    >;
    if (row.conversation_uuid !== conversationUuid) return;
    const unchanged = untext(row.parent_uuid) === m.parent_uuid &&
      row.round_index === m.round_index && row.role === m.role &&
      row.content_type === m.content_type && row.content === m.content &&
      untext(row.content_text) === m.content_text && row.created_at === m.created_at &&
      (row.model === null ? null : untext(row.model)) === m.model && row.usage === m.usage &&
      row.metadata === m.metadata;
    if (unchanged) return;
    this.#w.updateMessage.run(...bound, createdMs, m.uuid);
    result.updated_messages++;
  }

  /** Lists conversations, newest first, filtered (a string: of that source). */
  listConversations(
    filter: string | ConversationFilter = "",
    page = 1,
    pageSize = 50,
  ): Page<StoredConversation> {
    const { where, args } = filterSql(typeof filter === "string" ? { source: filter } : filter);
    const total = (this.#db.prepare(`SELECT COUNT(*) AS n FROM conversations c ${where}`)
      .get(...args) as { n: number }).n;
    const rows = this.#db.prepare(
      `${CONVERSATION_COLUMNS} ${where} ORDER BY updated_ms DESC, uuid LIMIT ? OFFSET ?`,
    ).all(...args, pageSize, (page - 1) * pageSize) as Record<string, string | number>[];
    return { items: rows.map(conversationOf), total, page, page_size: pageSize };
  }

  /** One conversation, or `undefined`. */
  conversation(uuid: string): StoredConversation | undefined {
    const row = this.#db.prepare(`${CONVERSATION_COLUMNS} WHERE c.uuid = ?`).get(uuid);
    return row ? conversationOf(row as Record<string, string | number>) : undefined;
  }

  /** Tokens (`usage.total`) and messages by day (UTC), source and model, newest day first. */
  usage(filter: ConversationFilter = {}): UsageRow[] {
    const { where, args } = filterSql(filter);
    return this.#db.prepare(
      `SELECT substr(m.created_at, 1, 10) AS day, c.source_type, COALESCE(m.model, '') AS model,
         COUNT(*) AS messages,
         SUM(COALESCE(json_extract(m.usage, '$.total'), 0)) AS tokens,
         SUM(COALESCE(json_extract(m.usage, '$.input'), 0)) AS input,
         SUM(COALESCE(json_extract(m.usage, '$.output'), 0)) AS output
       FROM messages m JOIN conversations c ON c.uuid = m.conversation_uuid ${where}
       GROUP BY day, c.source_type, model ORDER BY day DESC, c.source_type, model`,
    ).all(...args) as unknown as UsageRow[];
  }

  /** Lists one conversation's messages in time order; `null` when the conversation is unknown. */
  listMessages(conversationUuid: string, page = 1, pageSize = 100): Page<StoredMessage> | null {
    if (!this.#getConversation.get(conversationUuid)) return null;
    const total = (this.#db.prepare(
      "SELECT COUNT(*) AS n FROM messages WHERE conversation_uuid = ?",
    ).get(conversationUuid) as { n: number }).n;
    const rows = this.#db.prepare(
      `SELECT uuid, conversation_uuid, CAST(parent_uuid AS BLOB) AS parent_uuid, round_index, role,
        content_type, content, ${messageTextSql(this.#db)} AS content_text, created_at,
        CAST(model AS BLOB) AS model, usage, metadata
       FROM messages WHERE conversation_uuid = ? ORDER BY created_ms, seq LIMIT ? OFFSET ?`,
    ).all(conversationUuid, pageSize, (page - 1) * pageSize) as Record<
      string,
      string | number | Uint8Array | null
    >[];
    return {
      items: rows.map((r) => {
        const message: StoredMessage = {
          uuid: String(r.uuid),
          conversation_uuid: String(r.conversation_uuid),
          parent_uuid: untext(r.parent_uuid),
          round_index: Number(r.round_index),
          role: r.role as Message["role"],
          content_type: r.content_type as Message["content_type"],
          content: JSON.parse(String(r.content)),
          content_text: untext(r.content_text),
          created_at: String(r.created_at),
        };
        if (r.model !== null) message.model = untext(r.model);
        if (r.usage !== null) message.usage = JSON.parse(String(r.usage));
        if (r.metadata !== null) message.metadata = JSON.parse(String(r.metadata));
        return message;
      }),
      total,
      page,
      page_size: pageSize,
    };
  }

  /** Every message of a conversation in time order, a page at a time; `[]` when it is unknown. */
  allMessages(conversationUuid: string): StoredMessage[] {
    const out: StoredMessage[] = [];
    for (let page = 1;; page++) {
      const got = this.listMessages(conversationUuid, page, 1000);
      if (!got || got.items.length === 0) return out;
      out.push(...got.items);
      if (out.length >= got.total) return out;
    }
  }

  /** Totals: conversations, messages, and conversations per source. */
  stats(): {
    total_conversations: number;
    total_messages: number;
    sources: Record<string, number>;
  } {
    const count = (sql: string) => (this.#db.prepare(sql).get() as { n: number }).n;
    const sources: Record<string, number> = {};
    for (
      const r of this.#db.prepare(
        "SELECT source_type, COUNT(*) AS n FROM conversations GROUP BY source_type",
      ).all() as { source_type: string; n: number }[]
    ) sources[r.source_type] = r.n;
    return {
      total_conversations: count("SELECT COUNT(*) AS n FROM conversations"),
      total_messages: count("SELECT COUNT(*) AS n FROM messages"),
      sources,
    };
  }

  /** Closes the database. */
  close(): void {
    this.#db.close();
  }
}
