/**
 * The canonical conversation schema shared by every parser, the delivery pipeline and the
 * reference server (docs/delivery.md, "The batch contract"), as zod schemas with their inferred types.
 *
 * @module
 */
import { z } from "zod";
import { nestedDeeperThan, STORE_JSON_DEPTH } from "./json_depth.ts";

/** Every source a worker can deliver, as the batch API names it. */
export const SOURCE_TYPES = [
  "gpt",
  "claude",
  "claude_code",
  "codex",
  "gemini",
  "gemini_cli",
] as const;

/**
 * The `source_type` of a batch.
 *
 * @example Validate a source type
 * ```ts
 * import { SourceTypeSchema } from "./types.ts";
 * SourceTypeSchema.parse("claude_code");
 * ```
 */
export const SourceTypeSchema = z.enum(SOURCE_TYPES);
/** One of {@link SOURCE_TYPES}. */
export type SourceType = z.infer<typeof SourceTypeSchema>;

const rfc3339 = z.iso.datetime({ offset: true, message: "expected an RFC 3339 timestamp" });

/** RFC 3339 with every field in its range; only a day past the 28th needs its month looked at. */
const TIMESTAMP =
  /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/;

/** The number written by `n` ASCII digits of `s` from `at`. */
function digitsAt(s: string, at: number, n: number): number {
  let value = 0;
  for (let i = at; i < at + n; i++) value = value * 10 + s.charCodeAt(i) - 48;
  return value;
}

function daysIn(year: number, month: number): number {
  if (month === 2) return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/**
 * Whether `s` is a timestamp the schema accepts: `YYYY-MM-DDThh:mm:ss[.fraction]` with `Z` or
 * an offset, naming a real date and time (no February 30, no hour 24). Parsers test what they
 * copy from input with it: a message whose time the schema refuses is refused with its whole
 * conversation.
 *
 * @example Only real dates
 * ```ts
 * import { isTimestamp } from "./types.ts";
 * console.log(isTimestamp("2024-02-29T12:00:00.5Z")); // true
 * console.log(isTimestamp("2025-02-29T12:00:00Z")); // false
 * ```
 */
export function isTimestamp(s: string): boolean {
  if (!TIMESTAMP.test(s)) return false;
  const day = digitsAt(s, 8, 2);
  return day <= 28 || day <= daysIn(digitsAt(s, 0, 4), digitsAt(s, 5, 2));
}

/**
 * The longest id (a conversation's or a message's) and model name accepted. Real ones are a few
 * dozen characters; each is stored with every message it applies to, so a long one sent once
 * would be written as many times over.
 */
export const ID_LIMIT = 1024;
/** See {@link ID_LIMIT}. */
export const NAME_LIMIT = 256;

/** Control characters: a NUL would cut an id short in a database. */
// deno-lint-ignore no-control-regex
const NO_CONTROL_CHARACTERS = /^[^\u0000-\u001f\u007f]+$/;
/** An id: not empty, not too long, and no control characters. */
const id = z.string().min(1)
  .max(ID_LIMIT, { message: `expected an id of at most ${ID_LIMIT} characters` })
  .regex(NO_CONTROL_CHARACTERS, { message: "expected an id without control characters" });
/**
 * A JSON object of any keys and values (a message's content and metadata): checked to be a
 * plain object and passed on as it is. `z.record(z.string(), z.unknown())` copied every key of
 * every content block, two thirds of the time a batch's validation took.
 */
const jsonObject = z.custom<Record<string, unknown>>(isPlainObject, {
  message: "expected an object",
});

function isPlainObject(value: unknown): boolean {
  if (typeof value !== "object" || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * An object the store reads with SQL (a conversation's metadata, a message's usage): plain, and
 * nested no deeper than SQLite's JSON functions read, else every query over the store's
 * conversations or usage would fail on it.
 */
const storedObject = z.custom<Record<string, unknown>>(
  (value) => isPlainObject(value) && !nestedDeeperThan(value, STORE_JSON_DEPTH),
  { message: `expected an object nested at most ${STORE_JSON_DEPTH} levels deep` },
);

/**
 * One message of a conversation.
 *
 * @example Validate a message
 * ```ts
 * import { MessageSchema } from "./types.ts";
 * MessageSchema.parse({
 *   uuid: "m1", parent_uuid: "", round_index: 1, role: "user", content_type: "text",
 *   content: { type: "text", text: "hi" }, content_text: "hi",
 *   created_at: "2025-01-01T00:00:00.000Z",
 * });
 * ```
 */
export const MessageSchema = z.object({
  uuid: id,
  parent_uuid: z.string().max(ID_LIMIT, {
    message: `expected an id of at most ${ID_LIMIT} characters`,
  }),
  round_index: z.number().int().nonnegative(),
  role: z.enum(["user", "assistant", "system", "tool"]),
  content_type: z.enum(["text", "tool_use", "tool_result", "multipart"]),
  content: jsonObject,
  content_text: z.string(),
  created_at: rfc3339,
  model: z.string().max(NAME_LIMIT, {
    message: `expected a model name of at most ${NAME_LIMIT} characters`,
  }).optional(),
  usage: storedObject.optional(),
  metadata: jsonObject.optional(),
});
/** A validated message. */
export type Message = z.infer<typeof MessageSchema>;

/**
 * One conversation with the messages a batch carries for it (only those not yet acknowledged).
 *
 * @example Validate a conversation
 * ```ts
 * import { ConversationSchema } from "./types.ts";
 * ConversationSchema.parse({
 *   uuid: "c1", title: "", created_at: "2025-01-01T00:00:00Z",
 *   updated_at: "2025-01-01T00:00:00Z", metadata: {}, messages: [],
 * });
 * ```
 */
export const ConversationSchema = z.object({
  uuid: id,
  title: z.string(),
  created_at: rfc3339,
  updated_at: rfc3339,
  metadata: storedObject,
  messages: z.array(MessageSchema),
});
/** A validated conversation. */
export type Conversation = z.infer<typeof ConversationSchema>;

/**
 * The body of `POST /internal/v1/sync/batch`.
 *
 * @example Validate a batch
 * ```ts
 * import { BatchSchema } from "./types.ts";
 * BatchSchema.parse({ source_type: "claude_code", conversations: [] });
 * ```
 */
export const BatchSchema = z.object({
  source_type: SourceTypeSchema,
  conversations: z.array(ConversationSchema),
});
/** A validated batch. */
export type Batch = z.infer<typeof BatchSchema>;

/**
 * The counts a server answers a batch with.
 *
 * @example Parse a server answer
 * ```ts
 * import { BatchResultSchema } from "./types.ts";
 * BatchResultSchema.parse({
 *   success: true, inserted_conversations: 1, inserted_messages: 2,
 *   updated_conversations: 0, updated_messages: 0,
 * });
 * ```
 */
export const BatchResultSchema = z.object({
  success: z.boolean().optional(),
  inserted_conversations: z.number().int().nonnegative(),
  inserted_messages: z.number().int().nonnegative(),
  updated_conversations: z.number().int().nonnegative(),
  updated_messages: z.number().int().nonnegative(),
});
/** Counts of what a batch changed on the server. */
export type BatchResult = z.infer<typeof BatchResultSchema>;

/**
 * Where a conversation's title came from, weakest first. A title replaces one of the same or a
 * weaker source (an AI title replaces the first prompt, never the user's own), so the server
 * keeps the best title it was ever sent; it is named in `metadata.title_source`.
 */
export const TITLE_SOURCES = ["first_prompt", "summary", "ai", "custom"] as const;
/** One of {@link TITLE_SOURCES}. */
export type TitleSource = typeof TITLE_SOURCES[number];

/**
 * The strength of a title source: 1 to 4, and 2 (a summary's) for a title of unknown source, so
 * that titles sent without a source (other clients) behave as before.
 *
 * @example The user's own title beats a generated one
 * ```ts
 * import { titleRank } from "./types.ts";
 * titleRank("custom") > titleRank("ai") && titleRank(undefined) === titleRank("summary");
 * ```
 */
export function titleRank(source: unknown): number {
  const index = TITLE_SOURCES.indexOf(source as TitleSource);
  return index === -1 ? 2 : index + 1;
}

/**
 * Formats zod issues as `path: message` lines, the form every error in ai-sync uses.
 *
 * @example Format a validation error
 * ```ts
 * import { z } from "zod";
 * import { formatIssues } from "./types.ts";
 * const r = z.object({ a: z.number() }).safeParse({ a: "x" });
 * if (!r.success) console.log(formatIssues(r.error.issues, "config.yaml"));
 * ```
 */
export function formatIssues(issues: readonly z.core.$ZodIssue[], prefix = ""): string {
  return issues.map((issue) => {
    const path = issue.path.map(String).join(".") || "(root)";
    const detail = describeIssue(issue);
    return prefix ? `${prefix}: ${path}: ${detail}` : `${path}: ${detail}`;
  }).join("\n");
}

/** Keys whose values are never repeated in an error. */
const SECRET_KEY = /token|password|secret/i;

function describeIssue(issue: z.core.$ZodIssue): string {
  const secret = issue.path.some((p) => typeof p === "string" && SECRET_KEY.test(p));
  const got = !secret && "input" in issue && issue.input !== undefined
    ? `, got ${JSON.stringify(issue.input)?.slice(0, 80)}`
    : "";
  switch (issue.code) {
    case "invalid_type":
      return issue.message.startsWith("expected ")
        ? `${issue.message}${got}`
        : `expected ${issue.expected}${got}`;
    case "unrecognized_keys":
      return `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.join(", ")}`;
    case "invalid_value":
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}${got}`;
    default:
      return `${issue.message}${got}`;
  }
}
