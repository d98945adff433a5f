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
  /** As JSON (made each time it is asked for: a dead letter keeps it, a dry run prints it). */
  readonly json: string;
  /** As JSON in UTF-8: what a server is sent (kept in the JSON form, else made when asked for). */
  readonly jsonBytes: Uint8Array;
  /** As the rows the store writes (made when first asked for). */
  readonly rows: ConversationRow;
  /**
   * {@link rows}, which the item then lets go of: once a batch is handed to the embedded store's
   * thread, the engine keeps only the conversation (the rows are made again if it is sent again).
   */
  takeRows(): ConversationRow;
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

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A conversation whose messages hold far more than what it was parsed from could: a long value a
 * parser copies onto every message (a model name, a parent) from hostile input. Thrown before
 * anything is serialised, which would have run the thread out of memory and stopped the worker;
 * the caller then parses the lines one by one, each with its one message.
 *
 * @example Too much for the limit
 * ```ts
 * import { ConversationTooLargeError, itemOf } from "./item.ts";
 * const message = {
 *   uuid: "m1", parent_uuid: "", round_index: 0, role: "user" as const, content_type: "text" as const,
 *   content: { type: "text", text: "hi" }, content_text: "hi", created_at: "2025-01-01T00:00:00Z",
 * };
 * const conversation = {
 *   uuid: "c1", title: "", created_at: "2025-01-01T00:00:00Z",
 *   updated_at: "2025-01-01T00:00:00Z", metadata: {}, messages: [message],
 * };
 * try {
 *   itemOf(conversation, "json", 3);
 * } catch (error) {
 *   console.log(error instanceof ConversationTooLargeError); // true
 * }
 * ```
 */
export class ConversationTooLargeError extends Error {
  override name = "ConversationTooLargeError";
  /** `chars`: what its messages' fields hold, counted up to just past `limit`. */
  constructor(readonly uuid: string, readonly chars: number, readonly limit: number) {
    super(
      `conversation ${uuid}: its messages' ids, texts and metadata hold over ${limit} characters, ` +
        `more than what it was read from could make (a value repeated on every message?); ` +
        `not serialised`,
    );
  }
}

/** The characters of the strings (keys and values) in `value`, counted until over `budget`. */
function textChars(value: unknown, budget: number): number {
  let chars = 0;
  const stack: unknown[] = [value];
  while (stack.length > 0 && chars <= budget) {
    const v = stack.pop();
    if (typeof v === "string") chars += v.length;
    else if (Array.isArray(v)) { for (const item of v) stack.push(item); }
    else if (typeof v === "object" && v !== null) {
      for (const [key, field] of Object.entries(v)) {
        chars += key.length;
        stack.push(field);
      }
    }
  }
  return chars;
}

/**
 * What the messages of `c` hold in the fields a parser may copy from one message to the next,
 * plus their texts, counted until over `limit`: an estimate of its size made without
 * serialising it.
 */
function messageChars(c: Conversation, limit: number): number {
  let chars = 0;
  for (const m of c.messages) {
    chars += m.uuid.length + m.parent_uuid.length + (m.model?.length ?? 0) + m.content_text.length;
    if (m.metadata) chars += textChars(m.metadata, limit - chars);
    if (m.usage) chars += textChars(m.usage, limit - chars);
    if (chars > limit) break;
  }
  return chars;
}

class ConversationItem implements Item {
  readonly bytes: number;
  readonly print: string;
  #jsonBytes: Uint8Array | undefined;
  #rows: ConversationRow | undefined;

  constructor(readonly conversation: Conversation, readonly form: ItemForm) {
    if (form === "rows") {
      ({ print: this.print, bytes: this.bytes } = rowsPrint(this.rows));
    } else {
      // Kept as bytes, outside the JavaScript heap and one byte per ASCII character: as a string
      // (two bytes per character once one is outside Latin-1) a conversation holding a 16 MiB
      // line took 64 MB of a thread's 192 MiB heap, and its batch's body as much again.
      this.#jsonBytes = encoder.encode(JSON.stringify(this.conversation));
      this.bytes = this.#jsonBytes.length;
      this.print = fingerprint64(this.#jsonBytes);
    }
  }

  get json(): string {
    return this.#jsonBytes ? decoder.decode(this.#jsonBytes) : JSON.stringify(this.conversation);
  }

  get jsonBytes(): Uint8Array {
    return this.#jsonBytes ?? encoder.encode(this.json);
  }

  takeRows(): ConversationRow {
    const rows = this.rows;
    this.#rows = undefined;
    return rows;
  }

  get rows(): ConversationRow {
    return this.#rows ??= conversationRows(this.conversation);
  }
}

/**
 * The item of `conversation` in `form`; throws {@link ConversationTooLargeError} when its
 * messages hold more than `maxChars` (estimated without serialising them), and whatever
 * serialising it throws (hostile input).
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
export function itemOf(conversation: Conversation, form: ItemForm, maxChars = Infinity): Item {
  if (maxChars < Infinity) {
    const chars = messageChars(conversation, maxChars);
    if (chars > maxChars) throw new ConversationTooLargeError(conversation.uuid, chars, maxChars);
  }
  return new ConversationItem(conversation, form);
}
