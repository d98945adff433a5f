/**
 * A batch as the store writes it: every JSON field of a message already serialised, its text
 * already checked against its content. Building the rows is the part of storing that needs no
 * database, so a worker builds them on its engine thread, beside parsing, and hands them to the
 * thread that owns the store with `postMessage`: that thread then only writes, instead of parsing
 * the batch's JSON, validating it and serialising every message's content again (a quarter of
 * its time in a backfill, docs/performance.md).
 *
 * @module
 */
import type { Batch, Conversation, SourceType } from "../common/types.ts";
import { textKeyOf } from "./message_text.ts";

/** A message ready to be written. */
export interface MessageRow {
  uuid: string;
  parent_uuid: string;
  round_index: number;
  role: string;
  content_type: string;
  /** The content as JSON. */
  content: string;
  /** The text, well formed (as SQLite gives it back: a lone surrogate as U+FFFD). */
  content_text: string;
  /** The field of the content holding the text, when it is a copy of one (message_text.ts). */
  text_key: string | null;
  created_at: string;
  model: string | null;
  /** As JSON, when present. */
  usage: string | null;
  /** As JSON, when present. */
  metadata: string | null;
}

/** A conversation ready to be written; its metadata stays an object (merged with what is stored). */
export interface ConversationRow {
  uuid: string;
  title: string;
  created_at: string;
  updated_at: string;
  metadata: Record<string, unknown>;
  messages: MessageRow[];
}

/** A batch ready to be written. */
export interface BatchRows {
  source_type: SourceType;
  conversations: ConversationRow[];
}

/**
 * The rows of a (valid) conversation.
 *
 * @example The text of a text block is kept once
 * ```ts
 * import { conversationRows } from "./rows.ts";
 * const rows = conversationRows({
 *   uuid: "c1", title: "", created_at: "2025-01-01T00:00:00Z", updated_at: "2025-01-01T00:00:00Z",
 *   metadata: {}, messages: [{
 *     uuid: "m1", parent_uuid: "", round_index: 0, role: "user", content_type: "text",
 *     content: { type: "text", text: "hi" }, content_text: "hi",
 *     created_at: "2025-01-01T00:00:00Z",
 *   }],
 * });
 * console.log(rows.messages[0].text_key); // text
 * ```
 */
export function conversationRows(c: Conversation): ConversationRow {
  return {
    uuid: c.uuid,
    title: c.title,
    created_at: c.created_at,
    updated_at: c.updated_at,
    metadata: c.metadata,
    messages: c.messages.map((m) => ({
      uuid: m.uuid,
      parent_uuid: m.parent_uuid,
      round_index: m.round_index,
      role: m.role,
      content_type: m.content_type,
      content: JSON.stringify(m.content),
      content_text: m.content_text.toWellFormed(),
      text_key: textKeyOf(m.content, m.content_text),
      created_at: m.created_at,
      model: m.model ?? null,
      usage: m.usage ? JSON.stringify(m.usage) : null,
      metadata: m.metadata ? JSON.stringify(m.metadata) : null,
    })),
  };
}

/**
 * The rows of a (valid) batch.
 *
 * @example A batch of nothing
 * ```ts
 * import { batchRows } from "./rows.ts";
 * console.log(batchRows({ source_type: "codex", conversations: [] }).conversations.length); // 0
 * ```
 */
export function batchRows(batch: Batch): BatchRows {
  return {
    source_type: batch.source_type,
    conversations: batch.conversations.map(conversationRows),
  };
}
