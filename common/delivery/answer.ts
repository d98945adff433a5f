/**
 * Reading a server's answer to a batch: at most {@link MAX_ANSWER_BYTES} of it, and what it
 * means. Only a well-formed success answer acknowledges a batch; a refusal may name the
 * conversation or the messages it is about.
 *
 * @module
 */
import { BatchResultSchema, formatIssues } from "../types.ts";
import { concatBytes } from "../io/bytes.ts";
import { classifyStatus, type SendOutcome } from "./sink.ts";

/** The most read of an answer to a batch: acknowledgements are a few hundred bytes. */
export const MAX_ANSWER_BYTES = 1024 * 1024;

/**
 * Reads at most `limit` bytes of a body; `over` says the body was longer (the rest is not read).
 *
 * @example Read a short body
 * ```ts
 * import { readCapped } from "./answer.ts";
 * console.log(await readCapped(new Response("hello"), 3)); // { text: "hel", over: true }
 * ```
 */
export async function readCapped(
  response: Response,
  limit: number,
): Promise<{ text: string; over: boolean }> {
  if (!response.body) return { text: "", over: false };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let over = false;
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
      if (size > limit) {
        over = true;
        break;
      }
    }
  } finally {
    if (over) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  return { text: new TextDecoder().decode(concatBytes(chunks, limit)), over };
}

/**
 * What an answer to a batch means. Only `200`/`201` with a well-formed success answer is an
 * acknowledgement: `{"success":true, <counts>}`, or the counts wrapped as
 * `{"code":0,"message":"ok","data":{…}}` (where `code` 0 is the success flag). A wrapped
 * non-zero numeric `code` is the server's refusal (an HTTP-like code is classified like that
 * status); anything else (another 2xx, `"success":false`, a string code, a body that is not the
 * answer, such as an echo of the request) is a protocol error: retried, never taken as delivery,
 * never a reason to set data aside.
 *
 * @example A refusal in a 200 is not an acknowledgement
 * ```ts
 * import { interpretAnswer } from "./answer.ts";
 * interpretAnswer(200, '{"success":false,"message":"db down"}').kind; // "retry"
 * ```
 */
export function interpretAnswer(status: number, text: string): SendOutcome {
  const protocol = (why: string): SendOutcome => ({
    kind: "retry",
    status,
    reason: `protocol error: ${why} (expected HTTP 200 with the batch counts and "success":true)`,
  });
  if (status !== 200 && status !== 201) {
    return protocol(`HTTP ${status} is not an acknowledgement`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return protocol(`unreadable answer: ${text.slice(0, 200)}`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return protocol(`the answer is not an object: ${text.slice(0, 200)}`);
  }
  let wrapped = false;
  if ("code" in raw) {
    const envelope = raw as { code: unknown; message?: unknown; data?: unknown };
    if (typeof envelope.code !== "number") {
      return protocol(`"code" is ${JSON.stringify(envelope.code)}, not a number`);
    }
    if (envelope.code !== 0) {
      const message = typeof envelope.message === "string" ? envelope.message : "";
      return envelope.code >= 400 && envelope.code < 600
        ? classifyStatus(envelope.code, message)
        : {
          kind: "rejected",
          status: envelope.code,
          reason: `error code ${envelope.code}: ${message}`,
        };
    }
    raw = envelope.data;
    wrapped = true;
  }
  const success = (raw as { success?: unknown } | undefined)?.success;
  if (success !== true && !(wrapped && success === undefined)) {
    const message = (raw as { message?: unknown } | undefined)?.message;
    return protocol(
      `"success" is ${JSON.stringify(success) ?? "missing"}${
        typeof message === "string" ? `: ${message}` : ""
      }`,
    );
  }
  const parsed = BatchResultSchema.safeParse(raw);
  if (!parsed.success) {
    return protocol(`not a batch answer: ${formatIssues(parsed.error.issues)}`);
  }
  return { kind: "ok", result: parsed.data };
}

/**
 * Whether a refusal's reason names the conversation: its uuid, or its index in the batch
 * (`conversations.3.messages.0.role: …`, as validation errors put it).
 *
 * @example A validation error names the first conversation
 * ```ts
 * import { namesConversation } from "./answer.ts";
 * namesConversation("HTTP 400: conversations.0.messages.2.role: invalid", "c1", 0); // true
 * ```
 */
export function namesConversation(reason: string, uuid: string, index: number): boolean {
  return reason.includes(uuid) || new RegExp(`\\bconversations\\.${index}(\\b|\\.)`).test(reason);
}

/**
 * The messages of the batch's first conversation (of `n`) whose fields a refusal names, as a
 * validation error does (`conversations.0.messages.2.uuid: …`), by index.
 *
 * @example The messages named
 * ```ts
 * import { namedMessages } from "./answer.ts";
 * const reason = "conversations.0.messages.2.uuid: bad id\nconversations.0.messages.7.role: bad";
 * console.log(namedMessages(reason, 5)); // [2]
 * ```
 */
export function namedMessages(reason: string, n: number): number[] {
  const named = new Set<number>();
  for (const [, index] of reason.matchAll(/\bconversations\.0\.messages\.(\d+)\./g)) {
    if (Number(index) < n) named.add(Number(index));
  }
  return [...named];
}
