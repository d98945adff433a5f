/**
 * One conversation of a batch in the form its sink sends it: JSON for a server, or the rows the
 * embedded store writes (store/rows.ts). Each is made once, when the conversation is parsed; the
 * other form is made only if something asks for it (a dead letter keeps the JSON, say). The
 * embedded store thus never has a conversation turned into JSON, which was an eighth of a
 * backfill's parsing thread (docs/performance.md).
 *
 * @module
 */
import type { Conversation } from "../types.ts";
import { type ConversationRow, conversationRows } from "../../store/rows.ts";
import { Fingerprint64, fingerprint64 } from "../hash.ts";

/** The form a sink sends: JSON (a server) or store rows (the embedded store). */
export type ItemForm = "json" | "rows";

/** One conversation of a batch. */
export interface Item {
  readonly conversation: Conversation;
  /** The form it was made for. */
  readonly form: ItemForm;
  /** Its size in that form, counted against `worker.batch_max_bytes`. */
  readonly bytes: number;
  /** A fingerprint of that form: a batch's key commits to its items' prints. */
  readonly print: string;
  /** As JSON (made when first asked for). */
  readonly json: string;
  /** As the rows the store writes (made when first asked for). */
  readonly rows: ConversationRow;
}

/** The fingerprint and size of a conversation's rows, every field delimited by its length. */
function rowsPrint(rows: ConversationRow): { print: string; bytes: number } {
  const { messages, ...envelope } = rows;
  const head = JSON.stringify(envelope);
  const print = new Fingerprint64().update(`${head.length}:${head}`);
  let bytes = head.length;
  for (const m of messages) {
    const small = JSON.stringify([
      m.uuid,
      m.parent_uuid,
      m.round_index,
      m.role,
      m.content_type,
      m.text_key,
      m.created_at,
      m.model,
      m.usage,
      m.metadata,
      m.content.length,
      m.content_text.length,
    ]);
    // One piece per message: each piece costs a call into the hasher. A text that is a copy of a
    // field of the content (`text_key`) is told by the content: hashing it again was a third of
    // the print's time.
    print.update(
      `${small.length}:${small}${m.content}${m.text_key === null ? m.content_text : ""}`,
    );
    bytes += small.length + m.content.length + m.content_text.length;
  }
  return { print: print.digest(), bytes };
}

class ConversationItem implements Item {
  readonly bytes: number;
  readonly print: string;
  #json: string | undefined;
  #rows: ConversationRow | undefined;

  constructor(readonly conversation: Conversation, readonly form: ItemForm) {
    if (form === "rows") {
      ({ print: this.print, bytes: this.bytes } = rowsPrint(this.rows));
    } else {
      this.bytes = this.json.length;
      this.print = fingerprint64(this.json);
    }
  }

  get json(): string {
    return this.#json ??= JSON.stringify(this.conversation);
  }

  get rows(): ConversationRow {
    return this.#rows ??= conversationRows(this.conversation);
  }
}

/**
 * The item of `conversation` in `form`; throws whatever serialising it throws (hostile input).
 *
 * @example The same conversation in both forms
 * ```ts
 * import { itemOf } from "./item.ts";
 * const conversation = {
 *   uuid: "c1", title: "", created_at: "2025-01-01T00:00:00Z",
 *   updated_at: "2025-01-01T00:00:00Z", metadata: {}, messages: [],
 * };
 * const json = itemOf(conversation, "json");
 * console.log(json.bytes === json.json.length); // true
 * console.log(itemOf(conversation, "rows").rows.uuid); // c1
 * ```
 */
export function itemOf(conversation: Conversation, form: ItemForm): Item {
  return new ConversationItem(conversation, form);
}
