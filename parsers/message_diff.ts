/**
 * What changed in a document that is rewritten whole (a Gemini CLI `.json` session, an early
 * Codex `.json` rollout, `logs.json`, a checkpoint): each delivered message is remembered by a
 * fingerprint of its content, so a new version of the document sends only the messages that are
 * new or differ (DESIGN §4, "a newer export sends only what changed").
 *
 * @module
 */
import { createHash } from "node:crypto";
import type { Message } from "../common/types.ts";

/** Fingerprints of delivered messages, by message uuid. */
export type Fingerprints = Record<string, string>;

/**
 * A short fingerprint of a message's content (MD5, as DESIGN §4 asks of whole-file sources).
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
  return createHash("md5").update(JSON.stringify(message)).digest("hex").slice(0, 16);
}

/**
 * The messages of a new version of a document that are new or changed since `known`, and the
 * fingerprints to remember once they are delivered (those of every message still present, plus
 * `keep`'s entries for messages the document no longer has).
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
