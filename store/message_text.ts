import type { DatabaseSync } from "node:sqlite";
import { nestedDeeperThan, STORE_JSON_DEPTH } from "../common/json_depth.ts";

/**
 * A message's text stored once. Most messages are one content block whose text is the whole
 * `content_text` (a prompt, an answer, a tool's output): storing both made a store a third larger
 * and a backfill write a third more. Such a message keeps its text only in the content, and
 * `text_key` names the field it is in; any other message stores its `content_text` as given
 * (`text_key` NULL), as every message written before this did.
 *
 * @module
 */

/** The content fields a message's text is often a copy of, in the order they are tried. */
const TEXT_KEYS = ["text", "thinking", "content"] as const;

/**
 * The field of `content` that `text` is a copy of, or `null` (the text is stored as given).
 *
 * @example A text block and a tool call
 * ```ts
 * import { textKeyOf } from "./message_text.ts";
 * console.log(textKeyOf({ type: "text", text: "hi" }, "hi")); // text
 * console.log(textKeyOf({ type: "tool_use", name: "ls", input: {} }, "ls {}")); // null
 * ```
 */
export function textKeyOf(content: unknown, text: string): string | null {
  if (text === "" || typeof content !== "object" || content === null || Array.isArray(content)) {
    return null;
  }
  // A lone surrogate would come back from the content's JSON unlike it comes back stored.
  if (!text.isWellFormed()) return null;
  // SQL could not read the text back out of a content nested deeper than its JSON functions go.
  if (nestedDeeperThan(content, STORE_JSON_DEPTH)) return null;
  const fields = content as Record<string, unknown>;
  for (const key of TEXT_KEYS) if (fields[key] === text) return key;
  return null;
}

const TEXT_OR_FIELD = `CASE WHEN text_key IS NULL THEN CAST(content_text AS BLOB)
  ELSE CAST(json_extract(content, '$.' || text_key) AS BLOB) END`;

/**
 * The SQL of a message's text as a blob (read as a blob: a text value stops at a NUL) in the store
 * `db`: the stored copy, or the field of the content that `text_key` names. A store no worker of
 * this version has written yet has no `text_key` (a reader opens it read-only and cannot add it):
 * there every text is the stored copy. Asked again for each query, since a worker may add it
 * while a reader is open.
 *
 * @example Select the texts of a store's messages
 * ```ts
 * import { DatabaseSync } from "node:sqlite";
 * import { messageTextSql } from "./message_text.ts";
 * const db = new DatabaseSync(":memory:");
 * db.exec("CREATE TABLE messages (uuid TEXT, content TEXT, content_text TEXT)");
 * console.log(messageTextSql(db)); // CAST(content_text AS BLOB)
 * ```
 */
export function messageTextSql(db: DatabaseSync): string {
  const columns = db.prepare("PRAGMA table_info(messages)").all() as { name: string }[];
  return columns.some((c) => c.name === "text_key") ? TEXT_OR_FIELD : "CAST(content_text AS BLOB)";
}

/**
 * The view `message_text` (uuid, conversation_uuid, role, created_at, text): every message's
 * text, wherever it is stored, for people who look at a store with `sqlite3`.
 *
 * @example The texts of a conversation
 * ```ts
 * import { MESSAGE_TEXT_VIEW } from "./message_text.ts";
 * console.log(MESSAGE_TEXT_VIEW.includes("CREATE VIEW IF NOT EXISTS message_text")); // true
 * ```
 */
export const MESSAGE_TEXT_VIEW = `CREATE VIEW IF NOT EXISTS message_text AS
  SELECT uuid, conversation_uuid, role, created_at,
    CASE WHEN text_key IS NULL THEN content_text
      ELSE json_extract(content, '$.' || text_key) END AS text
  FROM messages`;
