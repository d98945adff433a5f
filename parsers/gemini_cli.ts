/**
 * Parser for Gemini CLI files under `~/.gemini/tmp/<project>/` (docs/sources.md), pure:
 * bytes and the carry of the previous parse in, canonical conversations out. The worker says in
 * `hint.kind` which file it is:
 *
 * - `jsonl`: `chats/session-*.jsonl` and sub-agent `chats/<parent>/<id>.jsonl`, append-only: a
 *   header line, message records (a record re-appended with the same id replaces the earlier
 *   one: last wins, first-seen order), `{"$set":{…}}` patches (`messages` in a patch is a
 *   checkpoint that replaces the whole list) and `{"$rewindTo": id}`;
 * - `json`: the legacy `chats/session-*.json`, rewritten whole on every update;
 * - `logs`: `logs.json`, the prompt log, used only for sessions with no chat recording;
 * - `checkpoint`: `checkpoint-<tag>.json` from `/chat save`, a bare history array or
 *   `{history, authType}`.
 *
 * Whole documents (json, logs, checkpoint) are diffed against the fingerprints of what was
 * delivered, so a rewrite sends only new or changed messages.
 *
 * Rewound messages (dropped by `$rewindTo`, or missing from a checkpoint or a newer version of a
 * whole document) are not deleted on the server, which has no delete: they stay as delivered and
 * the conversation's `metadata.rewound_message_ids` lists them, so the live thread is every
 * message not listed there.
 *
 * @module
 */
import { derivedUuid, sha256Hex } from "../common/hash.ts";
import {
  bump,
  carryOf,
  type DocumentPart,
  type DocumentShape,
  type LineIssue,
  type ParseInput,
  type ParseOutput,
} from "../common/source.ts";
import { type Conversation, type Message, NAME_LIMIT } from "../common/types.ts";
import {
  baseName,
  eachJsonLine,
  idOf,
  isObject,
  isUuid,
  type Json,
  num,
  ownEntry,
  seenTime,
  setEntry,
  shortStr,
  str,
  titleFrom,
  titleOf,
  unreadableDocument,
} from "./json_lines.ts";
import { fromBlocks, type MappedContent } from "./blocks.ts";
import { fingerprintBytes, fingerprintText } from "./message_diff.ts";
import { documentPart, isPart } from "./document.ts";
import type { TitleSource } from "../common/types.ts";
import { type Usage, usage } from "./usage.ts";

/** Token counts as Gemini CLI records them on `gemini` messages. */
export interface GeminiTokens {
  input: number;
  output: number;
  cached: number;
  thoughts: number;
  tool: number;
  total: number;
}

/** What the carry remembers of a delivered message. */
export interface KnownMessage {
  /** Fingerprint of the delivered version. */
  f: string;
  /** Round and parent from when it was first seen (a re-appended version keeps them). */
  r: number;
  p: string;
  /** Its tokens, so a new version replaces rather than adds them. */
  t?: GeminiTokens;
}

/** What one parse of a Gemini CLI file hands to the next. */
export interface GeminiCarry {
  conversationId: string;
  kind: string;
  projectHash: string;
  firstTs: string;
  lastTs: string;
  /** `summary` from a patch or the document, else the first prompt. */
  title: string;
  /** Where the title came from (`TITLE_SOURCES`). */
  titleSource?: TitleSource;
  summary: string;
  model: string;
  round: number;
  /** Live message ids in first-seen order. */
  live: string[];
  /** Every delivered message by id. */
  known: Record<string, KnownMessage>;
  /** Messages rewound away, in the order they were dropped. */
  rewound: string[];
  usage: GeminiTokens;
  /** When this file was first read (checkpoints have no times of their own). */
  firstSeen: string;
  /** The pass through a document read in parts, while one is under way. */
  pass?: DocumentPass;
}

/** What a pass through a document read in parts keeps from one part to the next. */
export interface DocumentPass {
  /** The ids of the document's records so far, in order. */
  ids: string[];
  /** Whether a part sent the conversation (the last part sends it again, with final counts). */
  sent: boolean;
}

/**
 * How Gemini CLI's documents hold their records: a session's `messages`, a checkpoint's
 * history (a root array or `history`), both read in parts; the prompt log, a root array read
 * in one part (its prompts are grouped by session across the whole file).
 */
export const GEMINI_DOCUMENTS: Readonly<Record<"json" | "checkpoint" | "logs", DocumentShape>> = {
  json: { recordKeys: ["messages"], inParts: true },
  checkpoint: { recordKeys: ["history"], inParts: true },
  logs: { recordKeys: [], inParts: false },
};

/** Path facts the worker passes in `FileContext.hint`. */
export interface GeminiHint {
  /** `jsonl`, `json`, `logs` or `checkpoint`. */
  kind?: "jsonl" | "json" | "logs" | "checkpoint";
  /** The project folder's name under `tmp/` (a hash or a slug). */
  project?: string;
  /** The project's real path, from `projects.json`, when known. */
  projectPath?: string;
  /** The parent session of a sub-agent file (`chats/<parent>/<id>.jsonl`). */
  parentSessionId?: string;
  /** The session id (or its first 8 characters) from the file name. */
  sessionId?: string;
  /** Checkpoint tag, from `checkpoint-<tag>.json`. */
  tag?: string;
  /** Comma-separated 8-character prefixes of sessions that have a chat recording. */
  recorded?: string;
  /** The file's mtime when found (ISO), the time of messages that have none. */
  mtime?: string;
}

const EPOCH = "1970-01-01T00:00:00.000Z";
const MESSAGE_TYPES = new Set(["user", "gemini", "info", "error", "warning"]);

/**
 * Gemini's counts in the one usage shape: its prompt count includes the cached part and the
 * tool-use prompt comes apart, and its thoughts are not in its output count.
 */
function toUsage(t: GeminiTokens): Usage {
  return usage({
    input: Math.max(0, t.input - t.cached) + t.tool,
    cache_read: t.cached,
    output: t.output + t.thoughts,
    reasoning: t.thoughts,
  });
}

function emptyTokens(): GeminiTokens {
  return { input: 0, output: 0, cached: 0, thoughts: 0, tool: 0, total: 0 };
}

function tokensOf(raw: unknown): GeminiTokens | undefined {
  if (!isObject(raw)) return undefined;
  return {
    input: num(raw.input),
    output: num(raw.output),
    cached: num(raw.cached),
    thoughts: num(raw.thoughts),
    tool: num(raw.tool),
    total: num(raw.total),
  };
}

function addTokens(into: GeminiTokens, add: GeminiTokens | undefined, sign = 1): void {
  if (!add) return;
  into.input += sign * add.input;
  into.output += sign * add.output;
  into.cached += sign * add.cached;
  into.thoughts += sign * add.thoughts;
  into.tool += sign * add.tool;
  into.total += sign * add.total;
}

/**
 * A fresh carry.
 *
 * @example Start a carry
 * ```ts
 * import { initialGeminiCarry } from "./gemini_cli.ts";
 * initialGeminiCarry().live.length === 0;
 * ```
 */
export function initialGeminiCarry(conversationId = ""): GeminiCarry {
  return {
    conversationId,
    kind: "",
    projectHash: "",
    firstTs: "",
    lastTs: "",
    title: "",
    summary: "",
    model: "",
    round: 0,
    live: [],
    known: {},
    rewound: [],
    usage: emptyTokens(),
    firstSeen: "",
  };
}

interface Mapped extends MappedContent {
  role: Message["role"];
  meta: Json;
  prompt: boolean;
}

/**
 * A mapped record, every one built with the same fields in the same order: the code reading
 * them stays fast with one object shape (spreads of differing contents made several).
 */
function mappedOf(
  role: Message["role"],
  { content, contentType, text }: MappedContent,
  meta: Json,
  prompt = false,
): Mapped {
  return { role, content, contentType, text, meta, prompt };
}

/** One Gemini API part (text, thought, function call or response, inline data). */
function mapPart(part: unknown): Json {
  if (typeof part === "string") return { type: "text", text: part };
  if (!isObject(part)) return { type: "text", text: JSON.stringify(part) };
  if (isObject(part.functionCall)) {
    const call = part.functionCall;
    return { type: "tool_use", id: str(call.id), name: str(call.name), input: call.args ?? {} };
  }
  if (isObject(part.functionResponse)) {
    const response = part.functionResponse;
    return {
      type: "tool_result",
      tool_use_id: str(response.id),
      name: str(response.name),
      content: response.response ?? null,
    };
  }
  if (part.thought === true && typeof part.text === "string") {
    return { type: "thinking", thinking: part.text };
  }
  if (typeof part.text === "string") return { type: "text", text: part.text };
  if (isObject(part.inlineData)) {
    const data = str(part.inlineData.data);
    return {
      type: "image",
      source: {
        type: "reference",
        media_type: str(part.inlineData.mimeType),
        sha256: sha256Hex(data),
        base64_length: data.length,
      },
    };
  }
  return part;
}

/** A message record (`user`, `gemini`, `info`, `error`, `warning`) as a canonical message. */
function mapRecord(record: Json): Mapped {
  const type = str(record.type);
  const raw = record.content;
  const parts = Array.isArray(raw) ? raw : raw === undefined || raw === "" ? [] : [raw];
  const blocks = parts.map(mapPart);
  const meta: Json = {};
  if (type === "gemini") {
    const thoughts = Array.isArray(record.thoughts) ? record.thoughts.filter(isObject) : [];
    const thinking = thoughts.map((t) =>
      [str(t.subject), str(t.description)].filter(Boolean).join(": ")
    ).filter(Boolean);
    const calls = Array.isArray(record.toolCalls) ? record.toolCalls.filter(isObject) : [];
    const all: Json[] = [
      ...thinking.map((t) => ({ type: "thinking", thinking: t })),
      ...blocks,
    ];
    for (const call of calls) {
      all.push({
        type: "tool_use",
        id: str(call.id),
        name: str(call.name),
        input: call.args ?? {},
        status: call.status ?? null,
      });
      if (call.result !== undefined || call.resultDisplay !== undefined) {
        const results = Array.isArray(call.result) ? call.result.map(mapPart) : call.result;
        all.push({
          type: "tool_result",
          tool_use_id: str(call.id),
          name: str(call.name),
          content: results ?? null,
          display: call.resultDisplay ?? null,
        });
      }
    }
    if (all.length === 0) all.push({ type: "text", text: "" });
    return mappedOf("assistant", fromBlocks(all), meta);
  }
  if (type !== "user") {
    meta.gemini_type = type;
    return mappedOf(
      "system",
      fromBlocks(blocks.length ? blocks : [{ type: "text", text: "" }]),
      meta,
    );
  }
  const mapped = fromBlocks(blocks.length ? blocks : [{ type: "text", text: "" }]);
  if (blocks.length > 0 && blocks.every((b) => b.type === "tool_result")) {
    return mappedOf("tool", mapped, meta);
  }
  if (typeof record.displayContent === "string" || Array.isArray(record.displayContent)) {
    meta.display_content = record.displayContent;
  }
  if (mapped.text.trimStart().startsWith("<session_context>")) {
    meta.context = true;
    return mappedOf("system", mapped, meta);
  }
  return mappedOf("user", mapped, meta, true);
}

/** Mutable state of one parse. */
class GeminiParse {
  readonly emitted = new Map<string, Message>();
  readonly skipped: Record<string, number> = {};
  readonly issues: LineIssue[] = [];
  readonly warnings: LineIssue[] = [];
  metadata = 0;
  changed = false;
  messages = 0;

  /** `carry.live` as a set, for lookups. */
  #live: Set<string>;
  /**
   * `carry.rewound` as a set. A message that comes back leaves the set at once and the list
   * before the list is read (a conversation or the output made): taking it out of the list each
   * time, and looking the list up for every record, took time to the square of the rewinds
   * (20,000 in a 4 MB session: 35 s).
   */
  #rewound: Set<string>;
  #rewoundLeft = false;
  /** The highest round of `carry.live[0..i]` at `i`, so far as computed ({@link roundBefore}). */
  #roundsUpTo: number[] = [];
  /** Message uuids derived in this parse, by record id. */
  #uuids = new Map<string, string>();

  constructor(readonly carry: GeminiCarry, readonly hint: GeminiHint) {
    this.#live = new Set(carry.live);
    this.#rewound = new Set(carry.rewound);
  }

  time(raw: unknown): string {
    const c = this.carry;
    return seenTime(c, raw) || c.lastTs || c.firstTs || c.firstSeen || EPOCH;
  }

  header(obj: Json): void {
    const c = this.carry;
    this.metadata++;
    const before = `${c.conversationId}|${c.projectHash}|${c.kind}`;
    if (!c.conversationId && idOf(obj.sessionId)) c.conversationId = idOf(obj.sessionId);
    c.projectHash = shortStr(obj.projectHash, NAME_LIMIT) || c.projectHash;
    c.kind = shortStr(obj.kind, NAME_LIMIT) || c.kind;
    this.time(obj.startTime);
    this.time(obj.lastUpdated);
    if (typeof obj.summary === "string") this.setSummary(titleFrom(obj.summary));
    // A header that only moves `lastUpdated` sends nothing by itself.
    if (`${c.conversationId}|${c.projectHash}|${c.kind}` !== before) this.changed = true;
  }

  setSummary(summary: string): void {
    if (!summary || summary === this.carry.summary) return;
    this.carry.summary = summary;
    // A sub-agent's summary is its result, not a title.
    if (this.carry.kind !== "subagent") {
      this.carry.title = summary;
      this.carry.titleSource = "ai";
    }
    this.changed = true;
  }

  /**
   * Delivers a record unless the same version was delivered before. `raw` is the record's
   * JSON as the CLI wrote it (a JSONL line), else it is serialised here (the CLI writes records
   * with `JSON.stringify`, so both give the same text); the record is mapped only when it is new
   * or changed. `quiet`: an unchanged message in a full list is expected, not worth counting.
   */
  record(record: Json, line: number, quiet = false, raw?: Uint8Array): void {
    const c = this.carry;
    const id = str(record.id);
    if (!id) {
      this.issues.push({
        line,
        message: "message record without an id; expected {id, timestamp, type, content}",
      });
      return;
    }
    const type = str(record.type);
    if (!MESSAGE_TYPES.has(type)) {
      const what = JSON.stringify(type || null);
      bump(this.skipped, `unknown message type ${what}`);
      this.warnings.push({
        line,
        message: `message type ${what} is not known to this version; skipped`,
      });
      return;
    }
    const known = ownEntry(c.known, id);
    const print = raw ? fingerprintBytes(raw) : fingerprintText(JSON.stringify(record));
    const rewound = this.#rewound.delete(id);
    if (rewound) this.#rewoundLeft = true;
    if (!this.#live.has(id)) {
      this.#live.add(id);
      c.live.push(id);
    }
    if (known?.f === print && !rewound) {
      this.time(record.timestamp);
      if (!quiet) bump(this.skipped, "unchanged record appended again");
      return;
    }
    const mapped = mapRecord(record);
    const uuid = this.uuid(id);
    let round: number;
    let parent: string;
    if (mapped.prompt && !c.title) {
      c.title = titleOf(mapped.text);
      c.titleSource = "first_prompt";
      this.changed = true;
    }
    if (known) {
      round = known.r;
      parent = known.p;
    } else {
      if (mapped.prompt) c.round++;
      round = c.round;
      const previous = c.live.at(-2);
      parent = previous ? this.uuid(previous) : "";
    }
    const message: Message = {
      uuid,
      parent_uuid: parent,
      round_index: round,
      role: mapped.role,
      content_type: mapped.contentType,
      content: mapped.content,
      content_text: mapped.text,
      created_at: this.time(record.timestamp),
    };
    const model = shortStr(record.model, NAME_LIMIT);
    if (model) {
      message.model = model;
      c.model = model;
    }
    const tokens = tokensOf(record.tokens);
    if (tokens) message.usage = toUsage(tokens);
    message.metadata = { ...mapped.meta, gemini_id: id };
    addTokens(c.usage, known?.t, -1);
    addTokens(c.usage, tokens);
    setEntry(c.known, id, { f: print, r: round, p: parent, ...(tokens ? { t: tokens } : {}) });
    this.emitted.set(uuid, message);
    this.messages++;
  }

  /**
   * The message uuid of a record id: the CLI's own id when it is a UUID (random per message),
   * else one derived from the session and the id (prompt log and checkpoint entries).
   */
  uuid(id: string): string {
    let uuid = this.#uuids.get(id);
    if (!uuid) {
      uuid = isUuid(id)
        ? id.toLowerCase()
        : derivedUuid("gemini_cli", this.carry.conversationId, id);
      this.#uuids.set(id, uuid);
    }
    return uuid;
  }

  /** Drops `id` and every live message after it. */
  rewindTo(id: string, line: number): void {
    const c = this.carry;
    this.metadata++;
    // From the end: a rewind goes back a few messages, and the search costs as many.
    const at = this.#live.has(id) ? c.live.lastIndexOf(id) : -1;
    if (at === -1) {
      this.warnings.push({
        line,
        message: `$rewindTo names ${id}, which is not a live message; nothing rewound`,
      });
      return;
    }
    const ids = c.live.slice(at);
    this.#markRewound(ids);
    c.live.length = at;
    c.round = this.roundBefore(at);
    this.changed = true;
  }

  /** Drops `ids` (anywhere in the thread) from the live messages. */
  drop(ids: string[]): void {
    const c = this.carry;
    if (ids.length === 0) return;
    this.#markRewound(ids);
    const dropped = new Set(ids);
    c.live = c.live.filter((id) => !dropped.has(id));
    this.#roundsUpTo = [];
    c.round = this.roundBefore(c.live.length);
    this.changed = true;
  }

  /** Takes `ids` out of the live messages' set and adds them to the rewound ones. */
  #markRewound(ids: string[]): void {
    for (const id of ids) {
      // A message sent in this same parse and rewound now still reaches the server once.
      if (!this.#rewound.has(id)) {
        this.#rewound.add(id);
        this.carry.rewound.push(id);
      }
      this.#live.delete(id);
    }
  }

  /**
   * The highest round among the first `end` live messages: computed once for each position and
   * kept while the thread only grows or is cut back (a rewind), so a rewind costs what it drops.
   */
  roundBefore(end: number): number {
    const c = this.carry;
    const rounds = this.#roundsUpTo;
    if (rounds.length > end) rounds.length = end;
    while (rounds.length < end) {
      const round = ownEntry(c.known, c.live[rounds.length])?.r ?? 0;
      rounds.push(Math.max(rounds.at(-1) ?? 0, round));
    }
    return end === 0 ? 0 : rounds[end - 1];
  }

  /** A full message list (a `$set.messages` checkpoint). */
  replaceAll(records: unknown[], line: number): void {
    this.replacePart(records, 0, { ids: [], sent: false }, true, line);
  }

  /**
   * Records of a full message list from index `index` (a document's part); after the last, the
   * messages the list no longer holds are rewound, and the list's order is the thread's order.
   */
  replacePart(
    records: unknown[],
    index: number,
    pass: DocumentPass,
    last: boolean,
    line: number,
  ): void {
    for (const [i, record] of records.entries()) {
      if (!isObject(record)) {
        this.issues.push({ line, message: `messages[${index + i}]: expected a message object` });
        continue;
      }
      pass.ids.push(str(record.id));
      this.record(record, line, true);
    }
    if (!last) return;
    const ids = new Set(pass.ids);
    this.drop(this.carry.live.filter((id) => !ids.has(id)));
    this.carry.live = [...ids].filter((id) => this.#live.has(id));
    this.#roundsUpTo = [];
  }

  patch(set: Json, line: number): void {
    this.metadata++;
    if (Array.isArray(set.messages)) this.replaceAll(set.messages, line);
    if (typeof set.summary === "string") this.setSummary(titleFrom(set.summary));
    if (set.lastUpdated !== undefined) this.time(set.lastUpdated);
    this.carry.kind = shortStr(set.kind, NAME_LIMIT) || this.carry.kind;
  }

  /** `carry.rewound` as the set says: the ones still rewound, each where it was last dropped. */
  #settleRewound(): void {
    if (!this.#rewoundLeft) return;
    const kept: string[] = [];
    const seen = new Set<string>();
    for (const id of this.carry.rewound.toReversed()) {
      if (this.#rewound.has(id) && !seen.has(id)) kept.push(id);
      seen.add(id);
    }
    this.carry.rewound = kept.reverse();
    this.#rewoundLeft = false;
  }

  conversation(): Conversation {
    this.#settleRewound();
    const c = this.carry;
    const hint = this.hint;
    const created = c.firstTs || c.firstSeen || EPOCH;
    const projectPath = hint.projectPath ?? "";
    const metadata: Json = {
      session_id: c.conversationId,
      project_name: projectPath ? baseName(projectPath) : hint.project ?? "",
      cwd: projectPath,
      project_hash: c.projectHash,
      model: c.model,
      host: "",
      message_count: c.live.length,
      usage: toUsage(c.usage),
      rewound_message_ids: c.rewound.map((id) => this.uuid(id)),
    };
    if (c.kind) metadata.kind = c.kind;
    if (hint.parentSessionId) metadata.parent_session_id = hint.parentSessionId;
    if (c.summary) metadata.summary = c.summary;
    if (c.title) metadata.title_source = c.titleSource ?? "first_prompt";
    return {
      uuid: c.conversationId,
      title: c.title,
      created_at: created,
      updated_at: c.lastTs || created,
      metadata,
      messages: [...this.emitted.values()],
    };
  }

  /** The output; `resend`: send the conversation even when nothing changed in this parse. */
  output(input: ParseInput<GeminiCarry, GeminiHint>, resend = false): ParseOutput<GeminiCarry> {
    this.#settleRewound();
    const conversations: Conversation[] = [];
    if (!this.carry.conversationId && this.emitted.size > 0) {
      this.issues.push({
        line: input.firstLine,
        message: "no session id found (expected a header line with sessionId)",
      });
    } else if (
      this.emitted.size > 0 || ((this.changed || resend) && this.carry.conversationId)
    ) {
      const conversation = this.conversation();
      conversation.metadata.host = input.file.host;
      conversations.push(conversation);
    }
    return {
      conversations,
      carry: this.carry,
      messages: conversations.length > 0 ? this.emitted.size : 0,
      metadata: this.metadata,
      skipped: this.skipped,
      issues: this.issues,
      warnings: this.warnings,
    };
  }
}

function startCarry(input: ParseInput<GeminiCarry, GeminiHint>, hint: GeminiHint): GeminiCarry {
  const carry = carryOf(input, initialGeminiCarry);
  if (!carry.firstSeen) carry.firstSeen = hint.mtime ?? EPOCH;
  return carry;
}

/**
 * Parses a Gemini CLI file of the kind named in `hint.kind` (see the module doc).
 *
 * @example Parse a JSONL session with a re-appended record
 * ```ts
 * import { parseGeminiCli } from "./gemini_cli.ts";
 * const lines = [
 *   { sessionId: "0ab84937-9fe7-4284-986a-33c832af0b6a", startTime: "2026-04-23T12:52:52.759Z" },
 *   { id: "u1", timestamp: "2026-04-23T12:53:00.000Z", type: "user", content: [{ text: "hi" }] },
 *   { id: "g1", timestamp: "2026-04-23T12:53:01.000Z", type: "gemini", content: "" },
 *   { id: "g1", timestamp: "2026-04-23T12:53:01.000Z", type: "gemini", content: "hello" },
 * ].map((l) => JSON.stringify(l) + "\n").join("");
 * const out = parseGeminiCli({
 *   bytes: new TextEncoder().encode(lines), firstLine: 1, carry: undefined,
 *   file: { path: "session.jsonl", hint: { kind: "jsonl" }, host: "laptop" },
 * });
 * console.log(out.conversations[0].messages.length); // 2
 * ```
 */
export function parseGeminiCli(
  input: ParseInput<GeminiCarry, GeminiHint>,
): ParseOutput<GeminiCarry> {
  const hint: GeminiHint = input.file.hint;
  switch (hint.kind) {
    case "json":
      return parseLegacyJson(input, hint);
    case "logs":
      return parseLogs(input, hint);
    case "checkpoint":
      return parseCheckpoint(input, hint);
    default:
      return parseJsonl(input, hint);
  }
}

function parseJsonl(
  input: ParseInput<GeminiCarry, GeminiHint>,
  hint: GeminiHint,
): ParseOutput<GeminiCarry> {
  const parse = new GeminiParse(startCarry(input, hint), hint);
  eachJsonLine(input.bytes, input.firstLine, parse.skipped, parse.issues, (obj, line, raw) => {
    if (isObject(obj.$set)) return parse.patch(obj.$set, line);
    if (typeof obj.$rewindTo === "string") return parse.rewindTo(obj.$rewindTo, line);
    if (typeof obj.type === "string" && obj.id !== undefined) {
      return parse.record(obj, line, false, raw);
    }
    if (str(obj.sessionId) && obj.type === undefined) {
      if (parse.carry.conversationId && line > 1) {
        bump(parse.skipped, "header appended again (session resumed)");
        parse.time(obj.lastUpdated);
        return;
      }
      return parse.header(obj);
    }
    const what = `record with keys ${Object.keys(obj).slice(0, 5).join(", ")}`;
    bump(parse.skipped, "unknown record kind");
    parse.warnings.push({
      line,
      message: `${what} is not a known kind (header, message, $set, $rewindTo); skipped`,
    });
  }, { withBytes: true });
  return parse.output(input);
}

function parseLegacyJson(
  input: ParseInput<GeminiCarry, GeminiHint>,
  hint: GeminiHint,
): ParseOutput<GeminiCarry> {
  const part = documentPart(
    input,
    GEMINI_DOCUMENTS.json,
    "a session document {sessionId, messages}",
    initialGeminiCarry(),
  );
  if (!isPart(part)) return part;
  if (part.recordsKey !== "messages") {
    return unreadableDocument(
      input.carry ?? initialGeminiCarry(),
      "expected a session document {sessionId, messages: [...]}",
    );
  }
  const parse = new GeminiParse(startCarry(input, hint), hint);
  const pass = passOf(parse.carry, part);
  if (part.first) parse.header(part.header);
  parse.replacePart(part.records, part.index, pass, part.last, 1);
  return endPart(parse, input, part, pass);
}

/** The pass a part belongs to: a new one at the first part. */
function passOf(carry: GeminiCarry, part: DocumentPart): DocumentPass {
  if (part.first || !carry.pass) carry.pass = { ids: [], sent: false };
  return carry.pass;
}

/**
 * The output of a document's part. The last part of a pass sends the conversation again if a
 * part before sent it, so the server ends with the counts of the whole document.
 */
function endPart(
  parse: GeminiParse,
  input: ParseInput<GeminiCarry, GeminiHint>,
  part: DocumentPart,
  pass: DocumentPass,
): ParseOutput<GeminiCarry> {
  const out = parse.output(input, part.last && pass.sent);
  if (out.conversations.length > 0) pass.sent = true;
  if (part.last) delete parse.carry.pass;
  return out;
}

/** `logs.json`: prompts of sessions that have no chat recording, one conversation each. */
function parseLogs(
  input: ParseInput<GeminiCarry, GeminiHint>,
  hint: GeminiHint,
): ParseOutput<GeminiCarry> {
  const part = documentPart(
    input,
    GEMINI_DOCUMENTS.logs,
    "an array of prompt log entries",
    initialGeminiCarry(),
  );
  if (!isPart(part)) return part;
  const previous = input.carry ?? initialGeminiCarry();
  if (part.root !== "array") {
    return unreadableDocument(
      previous,
      "expected an array of {sessionId, messageId, timestamp, type, message}",
    );
  }
  const recorded = new Set((hint.recorded ?? "").split(",").filter(Boolean));
  const prompts: Json[] = [];
  const skipped: Record<string, number> = {};
  const issues: LineIssue[] = [];
  part.records.forEach((entry, index) => {
    if (!isObject(entry) || !str(entry.sessionId)) {
      issues.push({
        line: 1,
        message: `entry ${index}: expected {sessionId, messageId, timestamp, message}`,
      });
      return;
    }
    const session = str(entry.sessionId);
    if (recorded.has(session.slice(0, 8))) {
      bump(skipped, "prompt of a session with a chat recording (delivered from it)");
      return;
    }
    prompts.push(entry);
  });
  const bySession = Map.groupBy(prompts, (entry) => str(entry.sessionId));
  // One carry for the file: the fingerprints of every session's delivered prompts, taken apart
  // by session once (a pass over all of them for each session took seconds at 3,000 sessions).
  const carry = startCarry(input, hint);
  const knownBySession = Map.groupBy(
    Object.entries(carry.known),
    ([id]) => id.slice(0, id.lastIndexOf("/")),
  );
  const conversations: Conversation[] = [];
  let messages = 0;
  for (const [session, entries] of bySession) {
    const parse = new GeminiParse(initialGeminiCarry(session), hint);
    parse.carry.kind = "prompt_log";
    // Delivered prompts are not mapped again, so the title comes from the first entry here.
    parse.carry.title = titleOf(str(entries[0].message));
    parse.carry.titleSource = "first_prompt";
    parse.carry.known = Object.fromEntries(knownBySession.get(session) ?? []);
    for (const entry of entries) {
      const id = `${session}/${num(entry.messageId)}`;
      parse.record({
        id,
        type: str(entry.type) === "user" || !entry.type ? "user" : str(entry.type),
        timestamp: entry.timestamp,
        content: typeof entry.message === "string"
          ? entry.message
          : JSON.stringify(entry.message ?? ""),
      }, 1);
    }
    for (const [id, known] of Object.entries(parse.carry.known)) setEntry(carry.known, id, known);
    for (const [why, count] of Object.entries(parse.skipped)) bump(skipped, why, count);
    if (parse.emitted.size > 0) {
      const conversation = parse.conversation();
      conversation.metadata.host = input.file.host;
      conversation.metadata.prompts_only = true;
      conversations.push(conversation);
      messages += parse.emitted.size;
    }
  }
  return { conversations, carry, messages, metadata: 0, skipped, issues };
}

/** `checkpoint-<tag>.json`: a saved history, a bare `Content[]` or `{history, authType}`. */
function parseCheckpoint(
  input: ParseInput<GeminiCarry, GeminiHint>,
  hint: GeminiHint,
): ParseOutput<GeminiCarry> {
  const part = documentPart(
    input,
    GEMINI_DOCUMENTS.checkpoint,
    "a checkpoint (a history array or {history, authType})",
    initialGeminiCarry(),
  );
  if (!isPart(part)) return part;
  if (part.recordsKey === null) {
    return unreadableDocument(
      input.carry ?? initialGeminiCarry(),
      "expected a history array or {history: [...], authType}",
    );
  }
  const carry = startCarry(input, hint);
  // The tag is the checkpoint's only id.
  carry.conversationId = derivedUuid(
    "gemini_cli",
    "checkpoint",
    hint.project ?? "",
    hint.tag ?? "",
  );
  carry.kind = "checkpoint";
  const parse = new GeminiParse(carry, hint);
  const pass = passOf(carry, part);
  const records = part.records.map((content, i) => {
    const c = isObject(content) ? content : {};
    return {
      id: `checkpoint/${part.index + i}`,
      type: str(c.role) === "model" ? "gemini" : "user",
      // Checkpoints keep no times: every message takes the time the file was first read.
      timestamp: carry.firstSeen,
      content: Array.isArray(c.parts) ? c.parts : [],
    };
  });
  // The tag is what the user named the checkpoint; it beats the first prompt as a title.
  if (!carry.title && hint.tag) {
    carry.title = hint.tag;
    carry.titleSource = "custom";
  }
  parse.replacePart(records, part.index, pass, part.last, 1);
  const out = endPart(parse, input, part, pass);
  for (const conversation of out.conversations) {
    conversation.metadata.checkpoint_tag = hint.tag ?? "";
  }
  return out;
}
