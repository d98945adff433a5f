/**
 * What changed in a message list that is written again (a Gemini CLI `.json` session rewritten
 * whole, a `$set.messages` checkpoint, an early Codex `.json` rollout, `logs.json`, a /chat
 * checkpoint): each delivered message is remembered by a fingerprint of its content, so a new
 * version sends only the messages that are new or differ.
 *
 * Fingerprints are {@link fingerprint64} values (xxHash64): a message is fingerprinted every
 * time a document is read again, so the hash must cost little next to `JSON.parse`.
 *
 * @module
 */
import { fingerprint64 } from "../common/hash.ts";
import type { Message } from "../common/types.ts";

/** Fingerprints of delivered messages, by message uuid. */
export type Fingerprints = Record<string, string>;

/**
 * The fingerprint of a text: the JSON of a record, or of a message.
 *
 * @example Equal texts, equal fingerprints
 * ```ts
 * import { fingerprintText } from "./message_diff.ts";
 * fingerprintText('{"id":"a"}') === fingerprintText('{"id":"a"}');
 * ```
 */
export function fingerprintText(text: string): string {
  return fingerprint64(text);
}

/**
 * The fingerprint of bytes, equal to {@link fingerprintText} of the text they encode in UTF-8.
 *
 * @example Bytes and their text agree
 * ```ts
 * import { fingerprintBytes, fingerprintText } from "./message_diff.ts";
 * fingerprintBytes(new TextEncoder().encode("é")) === fingerprintText("é");
 * ```
 */
export function fingerprintBytes(bytes: Uint8Array): string {
  return fingerprint64(bytes);
}

/**
 * The fingerprint of a canonical message.
 *
 * @example Two equal messages have the same fingerprint
 * ```ts
 * import { fingerprint } from "./message_diff.ts";
 * const m = { uuid: "m", parent_uuid: "", round_index: 1, role: "user" as const,
 *   content_type: "text" as const, content: { type: "text", text: "hi" }, content_text: "hi",
 *   created_at: "2025-01-01T00:00:00Z" };
 * fingerprint(m) === fingerprint({ ...m });
 * ```
 */
export function fingerprint(message: Message): string {
  return fingerprintText(JSON.stringify(message));
}

/**
 * The messages of a new version of a document that are new or changed since `known`, and the
 * fingerprints to remember once they are delivered.
 *
 * @example Only the changed message is sent again
 * ```ts
 * import { changedMessages } from "./message_diff.ts";
 * const m = (uuid: string, text: string) => ({ uuid, parent_uuid: "", round_index: 1,
 *   role: "user" as const, content_type: "text" as const, content: { type: "text", text },
 *   content_text: text, created_at: "2025-01-01T00:00:00Z" });
 * const first = changedMessages([m("a", "1"), m("b", "2")], {});
 * const second = changedMessages([m("a", "1"), m("b", "2!")], first.fingerprints);
 * console.log(second.changed.map((x) => x.uuid)); // ["b"]
 * ```
 */
export function changedMessages(
  messages: Message[],
  known: Fingerprints,
): { changed: Message[]; fingerprints: Fingerprints } {
  const changed: Message[] = [];
  const fingerprints: Fingerprints = { ...known };
  for (const message of messages) {
    const print = fingerprint(message);
    if (known[message.uuid] !== print) changed.push(message);
    fingerprints[message.uuid] = print;
  }
  return { changed, fingerprints };
}
