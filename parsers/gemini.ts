/**
 * Gemini web app history from Google Takeout ("My Activity" / "Gemini Apps"): `MyActivity.json`
 * or `MyActivity.html`, one record per prompt with its response, newest first; and the
 * per-conversation JSON that browser exporters write (`{title, data: [{role, content, ...}]}`).
 *
 * Takeout records carry no conversation id in most exports. Records are grouped into
 * conversations by a documented rule: consecutive records with the same
 * `gemini.google.com/app/<id>` link form one conversation (its id derived from the link); without
 * a link, a record starts a new conversation when more than {@link CONVERSATION_GAP_MINUTES}
 * minutes passed since the one before it. A linkless conversation's id is derived from its
 * oldest record (time and title), so it stays the same when a later Takeout adds newer records
 * on top. A run of records holding more than {@link GROUP_CHARS} characters is cut into
 * conversations of about that size (each held until its oldest record is read, so a chain of
 * prompts a year long ran the worker out of memory); their messages keep their ids, which come
 * from each record's own time and title. A record is a prompt when it has a response (`safeHtmlItem`) or a prompt title
 * prefix, whatever the account's language; Canvas records keep their text; other activity
 * (feedback, surveys, features used, draft choices) is skipped and counted by its kind.
 *
 * @module
 */
import type { Conversation, Message } from "../common/types.ts";
import { derivedUuid } from "../common/hash.ts";
import {
  bump,
  carryOf,
  type DocumentShape,
  emptyOutput,
  type ParseInput,
  type ParseOutput,
} from "../common/source.ts";
import { htmlToText } from "./html.ts";
import { isObject, type Json, str, timestamp, titleFrom, titleOf } from "./json_lines.ts";
import { activityFromHtml } from "./gemini_html.ts";

/** Takeout records further apart than this (without a link) are separate conversations. */
export const CONVERSATION_GAP_MINUTES = 30;

/** The most characters of records held as one conversation before it is cut (about 2 MB). */
export const GROUP_CHARS = 2_000_000;

/** What the source knows of a file. */
export interface GeminiHint {
  /** `activity`: Takeout's MyActivity; `conversation`: a browser exporter's JSON. */
  kind: "activity" | "conversation";
  /** For a conversation file: its modification time (it holds none). */
  mtime?: string;
}

/** The records of the open conversation (newest first), carried from part to part. */
export interface GeminiCarry {
  group: Json[];
  /** The characters of the titles and responses in `group` (absent: none). */
  groupChars?: number;
}

/** How each kind of file holds its records. */
export const GEMINI_SHAPES: Record<GeminiHint["kind"], DocumentShape> = {
  activity: { recordKeys: [], inParts: true },
  conversation: { recordKeys: ["data"], inParts: false },
};

/** Title prefixes of a prompt record, by language (the rest of the title is the prompt). */
const PROMPT_PREFIXES = ["Prompted ", "Eingegebener Prompt: "];
const CANVAS = /^(Created Gemini Canvas titled |Gemini-Canvas erstellt mit dem Titel )/;
const APP_LINK = /gemini\.google\.com\/app\/([0-9a-zA-Z_-]+)/;
const EPOCH = "1970-01-01T00:00:00.000Z";

/**
 * Parses a part of Takeout's `MyActivity.json` (or a whole `MyActivity.html`), or a browser
 * exporter's conversation.
 *
 * @example Two prompts a minute apart make one conversation
 * ```ts
 * import { parseGemini } from "./gemini.ts";
 * const records = [
 *   { header: "Gemini Apps", title: "Prompted and in Rome?", time: "2026-03-10T18:13:00.000Z", safeHtmlItem: [{ html: "<p>Sunny.</p>" }] },
 *   { header: "Gemini Apps", title: "Prompted Weather in Paris?", time: "2026-03-10T18:12:00.000Z", safeHtmlItem: [{ html: "<p>Rain.</p>" }] },
 * ];
 * const out = parseGemini({
 *   bytes: new Uint8Array(0), firstLine: 1, carry: undefined, file: { path: "MyActivity.json", hint: { kind: "activity" }, host: "h" },
 *   document: { root: "array", header: {}, recordsKey: "", records, index: 0, first: true, last: true },
 * });
 * console.log(out.conversations.length, out.conversations[0].messages.length); // 1 4
 * ```
 */
export function parseGemini(input: ParseInput<GeminiCarry, GeminiHint>): ParseOutput<GeminiCarry> {
  const carry = carryOf(input, () => ({ group: [] }));
  const out = emptyOutput(carry);
  const part = input.document;
  if (input.file.hint.kind === "conversation") {
    if (part) exporterConversation(part.header, part.records, input, out);
    return out;
  }
  if (part?.first) {
    carry.group = [];
    carry.groupChars = 0;
  }
  // `MyActivity.html` comes whole, or in parts of whole cells (`bytes`, `part.index`: the cells
  // before); `MyActivity.json` as records.
  const page = !part || part.root === "other";
  const first = part ? part.index + 1 : 1;
  const records = page
    ? activityFromHtml(new TextDecoder().decode(input.bytes), out.issues, first)
    : part.records;
  records.forEach((record, i) => {
    if (!isObject(record) || !timestamp(record.time)) {
      out.issues.push({
        line: first + i,
        message: "activity record: expected an object with a `time`; skipped",
      });
      return;
    }
    const title = str(record.title);
    const prompt = Array.isArray(record.safeHtmlItem) ||
      PROMPT_PREFIXES.some((p) => title.startsWith(p));
    if (!prompt && !CANVAS.test(title)) {
      bump(out.skipped, `not a prompt: ${activityKind(title)}`);
      return;
    }
    const group = carry.group;
    const newest = group.at(-1);
    const chars = recordChars(record);
    const full = (carry.groupChars ?? 0) + chars > GROUP_CHARS;
    if (newest && (full || !sameConversation(newest, record))) {
      let parent = "";
      if (full && sameConversation(newest, record)) {
        out.warnings!.push({
          line: first + i,
          message: `over ${GROUP_CHARS} characters of prompts in one run: cut into another ` +
            `conversation here`,
        });
        // A linked conversation keeps its id across the cut: its thread goes on from the
        // record before (older), whose ids are known already.
        if (linkOf(record)) parent = lastMessageOf(record);
      }
      emit(group, input.file.host, out, parent);
      carry.group = [];
      carry.groupChars = 0;
    }
    carry.group.push(record);
    carry.groupChars = (carry.groupChars ?? 0) + chars;
  });
  if (!part || part.last) {
    if (carry.group.length > 0) emit(carry.group, input.file.host, out);
    carry.group = [];
    carry.groupChars = 0;
  }
  return out;
}

/** The characters a record holds in its title and responses, about what it costs held. */
function recordChars(record: Json): number {
  let chars = str(record.title).length;
  for (const item of Array.isArray(record.safeHtmlItem) ? record.safeHtmlItem : []) {
    if (isObject(item)) chars += str(item.html).length;
  }
  return chars;
}

/** What kind of activity a title names ("Gave feedback", "Used an Assistant feature"). */
function activityKind(title: string): string {
  const kind = title.split(":")[0].trim();
  return kind.length > 40 ? `${kind.slice(0, 39)}…` : kind || "(untitled)";
}

function linkOf(record: Json): string {
  return JSON.stringify([record.titleUrl, record.details, record.subtitles]).match(APP_LINK)?.[1] ??
    "";
}

/** Whether `older` (next in newest-first order) belongs to the conversation of `newer`. */
function sameConversation(newer: Json, older: Json): boolean {
  const a = linkOf(newer);
  const b = linkOf(older);
  if (a || b) return a === b;
  const gap = Date.parse(str(newer.time)) - Date.parse(str(older.time));
  return gap >= 0 && gap <= CONVERSATION_GAP_MINUTES * 60_000;
}

function promptText(title: string): string {
  for (const prefix of PROMPT_PREFIXES) {
    if (title.startsWith(prefix)) return title.slice(prefix.length);
  }
  const canvas = title.match(CANVAS);
  if (canvas) return title.slice(canvas[0].length);
  // Another language: the prefix ends at the first colon, if any (a full-width one in Chinese
  // and Japanese: `提示：…`).
  const colon = title.match(/: |：\s*/);
  return colon && colon.index! > 0 && colon.index! < 40
    ? title.slice(colon.index! + colon[0].length)
    : title;
}

/** The id of a record's prompt. */
function promptId(time: string, title: string): string {
  return derivedUuid("gemini", time, title);
}

/** The id of a record's response (`draft` 0) or of another draft of it. */
function responseId(time: string, title: string, draft: number): string {
  return derivedUuid("gemini", time, title, "response", draft);
}

/** The id of the message a record's thread goes on from: its response, or its prompt. */
function lastMessageOf(record: Json): string {
  const time = timestamp(record.time) || EPOCH;
  const title = str(record.title);
  const answered = CANVAS.test(title) ||
    (Array.isArray(record.safeHtmlItem) && record.safeHtmlItem.some(isObject));
  return answered ? responseId(time, title, 0) : promptId(time, title);
}

/**
 * One conversation from its records (newest first); `parent`: what its oldest message follows
 * (a part of a linked conversation cut by {@link GROUP_CHARS}).
 */
function emit(
  group: readonly Json[],
  host: string,
  out: ParseOutput<GeminiCarry>,
  parent = "",
): void {
  const records = [...group].reverse();
  const oldest = records[0];
  const link = linkOf(oldest);
  const id = link
    ? derivedUuid("gemini", "app", link)
    : derivedUuid("gemini", str(oldest.time), str(oldest.title));
  const messages: Message[] = [];
  let round = 0;
  for (const r of records) {
    const time = timestamp(r.time) || EPOCH;
    const title = str(r.title);
    const canvas = CANVAS.test(title);
    const userId = promptId(time, title);
    const files = [
      ...(Array.isArray(r.attachedFiles) ? r.attachedFiles : []),
      ...(r.imageFile ? [r.imageFile] : []),
    ].map((f) => ({ type: "file", file_name: typeof f === "string" ? f : JSON.stringify(f) }));
    if (!canvas) {
      round++;
      const text = promptText(title);
      const blocks = [{ type: "text", text }, ...files];
      messages.push({
        uuid: userId,
        parent_uuid: parent,
        round_index: round,
        role: "user",
        content_type: blocks.length > 1 ? "multipart" : "text",
        content: blocks.length > 1 ? { type: "multipart", parts: blocks } : blocks[0],
        content_text: text,
        created_at: time,
      });
      parent = userId;
    }
    const responses = Array.isArray(r.safeHtmlItem) ? r.safeHtmlItem.filter(isObject) : [];
    const subtitles = Array.isArray(r.subtitles) ? r.subtitles.filter(isObject) : [];
    const bodies = canvas
      ? [{
        html: "",
        text: subtitles.map((s) => str(s.name)).join("\n"),
        canvas: promptText(title),
      }]
      : responses.map((h) => ({ html: str(h.html), text: htmlToText(str(h.html)), canvas: "" }));
    let answer = "";
    bodies.forEach((body, draft) => {
      const uuid = responseId(time, title, draft);
      const content: Json = body.canvas
        ? { type: "text", text: body.text, canvas_title: body.canvas }
        : { type: "html", html: body.html };
      const metadata: Json = {};
      if (draft > 0) metadata.draft = draft;
      if (body.canvas) metadata.canvas = true;
      messages.push({
        uuid,
        parent_uuid: parent,
        round_index: round,
        role: "assistant",
        content_type: "text",
        content,
        content_text: body.text,
        created_at: time,
        ...(Object.keys(metadata).length ? { metadata } : {}),
      });
      if (draft === 0) answer = uuid;
    });
    if (answer) parent = answer;
  }
  const firstPrompt = messages.find((m) => m.role === "user" && m.content_text.trim());
  const title = firstPrompt ? titleOf(firstPrompt.content_text) : "";
  const metadata: Json = { host, message_count: messages.length };
  if (link) metadata.gemini_id = link;
  if (title) metadata.title_source = "first_prompt";
  out.messages += messages.length;
  out.conversations.push({
    uuid: id,
    title,
    created_at: timestamp(oldest.time) || EPOCH,
    updated_at: timestamp(records.at(-1)!.time) || EPOCH,
    metadata,
    messages,
  });
}

/** A browser exporter's conversation: `{title, data: [{role, content, ...}]}`. */
function exporterConversation(
  header: Json,
  records: unknown[],
  input: ParseInput<GeminiCarry, GeminiHint>,
  out: ParseOutput<GeminiCarry>,
): void {
  const rows = records.filter(isObject);
  if (rows.length === 0) {
    bump(out.skipped, "not a conversation: no `data` messages");
    return;
  }
  const title = str(header.title);
  const firstUser = rows.find((r) => str(r.role) === "user");
  const id = derivedUuid("gemini", "exporter", title, str(firstUser?.content));
  const time = timestamp(input.file.hint.mtime) || EPOCH;
  const messages: Message[] = [];
  let parent = "";
  let round = 0;
  rows.forEach((r, i) => {
    const role: Message["role"] = str(r.role) === "user" ? "user" : "assistant";
    if (role === "user") round++;
    const text = str(r.content);
    const blocks: Json[] = [];
    if (str(r.model_thoughts)) blocks.push({ type: "thinking", thinking: str(r.model_thoughts) });
    blocks.push({ type: "text", text, format: str(r.content_type) || "text" });
    for (const f of Array.isArray(r.files) ? r.files : []) {
      blocks.push({ type: "file", ...(isObject(f) ? f : { file_name: String(f) }) });
    }
    const uuid = derivedUuid("gemini", id, i);
    const message: Message = {
      uuid,
      parent_uuid: parent,
      round_index: round,
      role,
      content_type: blocks.length > 1 ? "multipart" : "text",
      content: blocks.length > 1 ? { type: "multipart", parts: blocks } : blocks[0],
      content_text: text,
      created_at: time,
    };
    if (str(r.model)) message.model = str(r.model);
    messages.push(message);
    parent = uuid;
  });
  out.messages += messages.length;
  const conversation: Conversation = {
    uuid: id,
    title: titleFrom(title) || (firstUser ? titleOf(str(firstUser.content)) : ""),
    created_at: time,
    updated_at: time,
    metadata: {
      host: input.file.host,
      message_count: messages.length,
      title_source: title ? "ai" : "first_prompt",
    },
    messages,
  };
  out.conversations.push(conversation);
}
