/**
 * Parser for OpenAI Codex CLI rollouts (docs/sources.md), pure: bytes and the carry of the
 * previous parse in, canonical conversations out.
 *
 * Three forms: the `{timestamp,type,payload}` envelope (Rust CLI from September 2025), the older
 * bare form (a `{id,timestamp}` header line, then bare response items), both append-only JSONL
 * (also read from `.jsonl.zst` by the pipeline), and the early TypeScript CLI's whole-JSON
 * `rollout-*.json`, rewritten whole (`hint.form === "json"`), of which only new or changed
 * messages are delivered.
 *
 * Message ids are derived from the session id and the line number (the item index in the JSON
 * form), as one {@link UuidSeries} per session: rollouts have no message ids of their own, and
 * lines never move, so ids stay the same as the file grows and when it is later compressed.
 *
 * @module
 */
import { sha256Hex, UuidSeries } from "../common/hash.ts";
import {
  bump,
  carryOf,
  type DocumentShape,
  type LineIssue,
  type ParseInput,
  type ParseOutput,
} from "../common/source.ts";
import { type Conversation, type Message, NAME_LIMIT } from "../common/types.ts";
import {
  baseName,
  eachJsonLine,
  hasKeys,
  idOf,
  isObject,
  type Json,
  num,
  PATH_LIMIT,
  seenTime,
  shortStr,
  str,
  titleFrom,
  titleOf,
  unreadableDocument,
} from "./json_lines.ts";
import { changedMessages, type Fingerprints } from "./message_diff.ts";
import { documentPart, isPart } from "./document.ts";
import { fromBlocks, type MappedContent } from "./blocks.ts";
import { type Usage, usage } from "./usage.ts";

/** Token counts as Codex reports them. */
export interface CodexUsage {
  input_tokens: number;
  cached_input_tokens: number;
  output_tokens: number;
  reasoning_output_tokens: number;
  total_tokens: number;
}

/** A tool call remembered to pair its output with: the call's message and the tool's name. */
export interface CallRecord {
  uuid: string;
  name: string;
}

/** What one parse of a rollout hands to the next. */
export interface CodexCarry {
  /** `envelope` or `bare`, from the first line; `json` for the whole-JSON form. */
  form: "" | "envelope" | "bare" | "json";
  conversationId: string;
  /** Genuine user prompts so far. */
  round: number;
  messageCount: number;
  firstTs: string;
  lastTs: string;
  title: string;
  /** Whether the title came from the CLI (`thread_name_updated`) rather than the first prompt. */
  namedByCli: boolean;
  model: string;
  cwd: string;
  cliVersion: string;
  originator: string;
  gitBranch: string;
  forkedFrom: string;
  parentThread: string;
  /** Other threads' ids from `session_meta` lines in this file (forks, resumes): 100 at most. */
  otherSessions: string[];
  /** The last message delivered, parent of the next. */
  lastUuid: string;
  /** Whether a `response_item` message was seen: the prompt/answer events are mirrors then. */
  sawItems: boolean;
  /** Recent tool calls by `call_id`, to pair results with them. */
  calls: Record<string, CallRecord>;
  /** The session's cumulative usage (the last `total_token_usage`). */
  usage: CodexUsage;
  /** Usage per round (genuine prompt), from the growth of the cumulative figure. */
  usageByRound: Record<string, CodexUsage>;
  /** Fingerprints of delivered messages (whole-JSON form only). */
  fingerprints: Fingerprints;
  /**
   * While a whole-JSON rollout is read in parts: whether a part sent the conversation (the last
   * part sends it again, with the final counts).
   */
  passSent?: boolean;
}

/** How the whole-JSON rollout holds its records: `items`, read in parts. */
export const CODEX_JSON_ROLLOUT: DocumentShape = { recordKeys: ["items"], inParts: true };

/** Path facts the worker passes in `FileContext.hint`. */
export interface CodexHint {
  /** The UUID at the end of the file name. */
  sessionId?: string;
  /** `json` for a whole-JSON rollout; absent for JSONL. */
  form?: "json";
  /** `"true"` for files under `archived_sessions/`. */
  archived?: "true";
}

const CALL_LIMIT = 256;
/** Other threads' ids kept from the headers a fork or resume copies in. */
const OTHER_SESSION_LIMIT = 100;
const EPOCH = "1970-01-01T00:00:00.000Z";

/** Prefixes of the context messages Codex sends as `user` items; they are not prompts. */
const CONTEXT_PREFIXES = [
  "<environment_context>",
  "<user_instructions>",
  "<skills_instructions>",
  "<permissions instructions>",
  "<INSTRUCTIONS>",
  "<collaboration_mode>",
  "<turn_aborted>",
  "<subagent_notification>",
  "# AGENTS.md instructions",
];

/** Envelope types that hold no conversation content. */
const BOOKKEEPING_TYPES = new Set([
  "world_state",
  "inter_agent_communication",
  "inter_agent_communication_metadata",
  "token_usage_record",
]);

/** Events that repeat a response item (prompts, answers, reasoning) in the envelope form. */
const MIRROR_EVENTS = new Set(["user_message", "agent_message", "agent_reasoning"]);
const MIRROR_SKIP = "prompt or answer mirrored from a response_item (delivered once)";

/**
 * Why an event (of `type`; `completedType` for a completed item) is skipped, or `undefined` when
 * it is delivered: a mirror of a prompt or answer is the only record of its message in a file
 * without response items (yet).
 */
function eventSkip(
  type: string,
  completedType: string | undefined,
  sawItems: boolean,
): string | undefined {
  const isMirror = completedType === undefined
    ? MIRROR_EVENTS.has(type)
    : completedType === "UserMessage" || completedType === "AgentMessage";
  if (!isMirror) {
    return completedType === undefined ? `event_msg ${type}` : `item_completed ${completedType}`;
  }
  return sawItems || type === "agent_reasoning" ? MIRROR_SKIP : undefined;
}

/**
 * How Codex begins an event line, read by {@link CodexParse.unparsedLine}: its time and the
 * event's type, each short and without escapes (an escaped one is left to the parse, which reads
 * it as written). A regular expression: comparing the codes one by one in script cost more than
 * the parse it spared.
 */
const EVENT_HEAD =
  /^\{"timestamp":"([^"\\]{0,64})"(?:,"ordinal":\d{1,20})?,"type":"event_msg","payload":\{"type":"([^"\\]{0,64})"/;
/**
 * How Codex begins a reasoning item with no summary and no content (its text is only in
 * `encrypted_content`, often kilobytes), which the parser skips: its time is the first capture.
 */
const REASONING_HEAD =
  /^\{"timestamp":"([^"\\]{0,64})"(?:,"ordinal":\d{1,20})?,"type":"response_item","payload":\{"type":"reasoning",(?:"id":"[^"\\]{0,256}",)?"summary":\[\],"content":(?:null|\[\])[,}]/;
const ENCRYPTED_REASONING = "reasoning without a readable summary (encrypted)";
/** The first item type of a line, looked for after its head. */
const ITEM_HEAD = /"item":\{"type":"([^"\\]{0,64})"/g;

/** The fields of {@link CodexUsage}, listed once: `Object.keys` per report allocated an array each time. */
const USAGE_KEYS: readonly (keyof CodexUsage)[] = [
  "input_tokens",
  "cached_input_tokens",
  "output_tokens",
  "reasoning_output_tokens",
  "total_tokens",
];

function emptyUsage(): CodexUsage {
  return {
    input_tokens: 0,
    cached_input_tokens: 0,
    output_tokens: 0,
    reasoning_output_tokens: 0,
    total_tokens: 0,
  };
}

/**
 * OpenAI's counts in the one usage shape: its `input_tokens` include the cached part, and its
 * `output_tokens` include the reasoning.
 */
function toUsage(u: CodexUsage): Usage {
  return usage({
    input: Math.max(0, u.input_tokens - u.cached_input_tokens),
    cache_read: u.cached_input_tokens,
    output: u.output_tokens,
    reasoning: u.reasoning_output_tokens,
  });
}

function usageOf(raw: unknown): CodexUsage | null {
  if (!isObject(raw)) return null;
  const usage = emptyUsage();
  for (const key of USAGE_KEYS) usage[key] = num(raw[key]);
  return usage;
}

/**
 * A fresh carry.
 *
 * @example Start a carry
 * ```ts
 * import { initialCodexCarry } from "./codex.ts";
 * initialCodexCarry("019a").conversationId === "019a";
 * ```
 */
export function initialCodexCarry(conversationId = ""): CodexCarry {
  return {
    form: "",
    conversationId,
    round: 0,
    messageCount: 0,
    firstTs: "",
    lastTs: "",
    title: "",
    namedByCli: false,
    model: "",
    cwd: "",
    cliVersion: "",
    originator: "",
    gitBranch: "",
    forkedFrom: "",
    parentThread: "",
    otherSessions: [],
    lastUuid: "",
    sawItems: false,
    calls: {},
    usage: emptyUsage(),
    usageByRound: {},
    fingerprints: {},
  };
}

interface Mapped extends MappedContent {
  role: Message["role"];
  meta: Json;
  /** A genuine user prompt: starts a round. */
  prompt: boolean;
  /** A tool call to remember for pairing. */
  call: { id: string; name: string } | undefined;
}

/**
 * A mapped item, every one built with the same fields in the same order: with one object shape
 * the code that reads them stays fast (several shapes cost a tenth of the parse).
 */
function mappedOf(
  role: Message["role"],
  { content, contentType, text }: MappedContent,
  meta: Json,
  call?: { id: string; name: string },
): Mapped {
  return { role, content, contentType, text, meta, prompt: false, call };
}

function partText(part: unknown): string {
  if (typeof part === "string") return part;
  if (!isObject(part)) return "";
  return str(part.text);
}

function mapPart(part: unknown): Json {
  if (!isObject(part)) return { type: "text", text: String(part) };
  const type = str(part.type);
  if (type === "input_text" || type === "output_text" || type === "text" || type === "Text") {
    return { type: "text", text: str(part.text) };
  }
  if (type === "input_image" || type === "image") {
    const url = str(part.image_url);
    if (url.startsWith("data:")) {
      return {
        type: "image",
        source: { type: "reference", sha256: sha256Hex(url), length: url.length },
      };
    }
    return { type: "image", image_url: url || null };
  }
  return part;
}

function isContext(text: string): boolean {
  const t = text.trimStart();
  return CONTEXT_PREFIXES.some((p) => t.startsWith(p));
}

function parseArguments(raw: unknown): unknown {
  if (typeof raw !== "string") return raw ?? {};
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function outputText(output: unknown): string {
  if (typeof output === "string") return output;
  if (Array.isArray(output)) return output.map(partText).filter(Boolean).join("\n");
  if (isObject(output) && typeof output.content === "string") return output.content;
  return output === undefined ? "" : JSON.stringify(output);
}

/** A text message from content parts (response items, mirrors, compaction notes). */
function textMessage(role: Message["role"], parts: unknown[], meta: Json): Mapped {
  return mappedOf(role, fromBlocks(parts.map(mapPart)), meta);
}

function toolUse(callId: string, name: string, input: unknown, meta: Json): Mapped {
  meta.call_id = callId;
  return mappedOf(
    "assistant",
    {
      contentType: "tool_use",
      content: { type: "tool_use", id: callId, name, input },
      text: `${name} ${typeof input === "string" ? input : JSON.stringify(input)}`,
    },
    meta,
    callId ? { id: callId, name } : undefined,
  );
}

/** Maps one response item; a string is the reason it is skipped. */
function mapItem(item: Json, calls: ReadonlyMap<string, CallRecord>): Mapped | string {
  const type = str(item.type);
  const meta: Json = {};
  if (str(item.id)) meta.item_id = item.id;
  switch (type) {
    case "message": {
      const role = str(item.role);
      const parts = Array.isArray(item.content)
        ? item.content
        : [typeof item.content === "string" ? item.content : ""];
      const mapped = textMessage("user", parts, meta);
      if (role === "assistant") mapped.role = "assistant";
      else if (role === "developer" || role === "system") {
        mapped.role = "system";
        meta.source_role = role;
      } else if (isContext(mapped.text)) {
        mapped.role = "system";
        meta.context = true;
      } else mapped.prompt = true;
      if (str(item.phase)) meta.phase = item.phase;
      return mapped;
    }
    case "reasoning": {
      const summary = Array.isArray(item.summary) ? item.summary.map(partText) : [];
      const content = Array.isArray(item.content) ? item.content.map(partText) : [];
      const text = [...summary, ...content].filter(Boolean).join("\n\n");
      if (!text) return ENCRYPTED_REASONING;
      return mappedOf(
        "assistant",
        { contentType: "text", content: { type: "thinking", thinking: text }, text },
        meta,
      );
    }
    case "function_call":
      return toolUse(str(item.call_id), str(item.name), parseArguments(item.arguments), meta);
    case "custom_tool_call":
      return toolUse(str(item.call_id), str(item.name), item.input ?? "", meta);
    case "local_shell_call":
      return toolUse(str(item.call_id) || str(item.id), "local_shell", item.action ?? {}, meta);
    case "web_search_call":
      return toolUse(str(item.call_id) || str(item.id), "web_search", item.action ?? {}, meta);
    case "tool_search_call":
      return toolUse(str(item.call_id) || str(item.id), "tool_search", item.arguments ?? {}, meta);
    case "image_generation_call": {
      const result = str(item.result);
      return toolUse(str(item.call_id) || str(item.id), "image_generation", {
        revised_prompt: item.revised_prompt ?? null,
        status: item.status ?? null,
        result: result ? { sha256: sha256Hex(result), base64_length: result.length } : null,
      }, meta);
    }
    case "function_call_output":
    case "custom_tool_call_output":
    case "tool_search_output": {
      const callId = str(item.call_id);
      const call = calls.get(callId);
      if (call) {
        meta.tool_name = call.name;
        meta.tool_use_uuid = call.uuid;
      }
      meta.call_id = callId;
      const output = item.output ?? item.tools ?? null;
      return mappedOf(
        "tool",
        {
          contentType: "tool_result",
          content: { type: "tool_result", tool_use_id: callId, content: output },
          text: outputText(output),
        },
        meta,
      );
    }
    case "agent_message":
      return textMessage("assistant", [str(item.message) || outputText(item.content)], meta);
    case "ghost_snapshot":
      return "ghost_snapshot (git snapshot for /undo)";
    default:
      return `unknown response item type ${JSON.stringify(type || null)}`;
  }
}

/** Mutable state of one parse. */
class CodexParse {
  readonly messages: Message[] = [];
  readonly skipped: Record<string, number> = {};
  readonly issues: LineIssue[] = [];
  readonly warnings: LineIssue[] = [];
  metadata = 0;
  changed = false;

  #series: UuidSeries | undefined;
  #seriesId: string | undefined;
  #seriesKind = "";
  /**
   * `carry.calls` as a map while parsing, written back by {@link finish}: a map is looked up at
   * half the cost, and a call id such as `__proto__` or `constructor` is only a key in it.
   */
  readonly calls: Map<string, CallRecord>;

  constructor(readonly carry: CodexCarry, readonly hint: CodexHint) {
    this.calls = new Map(Object.entries(carry.calls));
  }

  time(raw: unknown): string {
    return seenTime(this.carry, raw) || this.carry.lastTs || this.carry.firstTs || EPOCH;
  }

  emit(mapped: Mapped, uuid: string, ts: string): void {
    const c = this.carry;
    if (mapped.prompt) {
      c.round++;
      if (!c.title) {
        c.title = titleOf(mapped.text);
        this.changed = true;
      }
    }
    const message: Message = {
      uuid,
      parent_uuid: c.lastUuid,
      round_index: c.round,
      role: mapped.role,
      content_type: mapped.contentType,
      content: mapped.content,
      content_text: mapped.text,
      created_at: ts,
    };
    if (mapped.role === "assistant" && c.model) message.model = c.model;
    if (hasKeys(mapped.meta)) message.metadata = mapped.meta;
    if (mapped.call) {
      this.calls.set(mapped.call.id, { uuid, name: shortStr(mapped.call.name, NAME_LIMIT) });
      // The oldest goes first: maps keep the order of insertion.
      if (this.calls.size > CALL_LIMIT) this.calls.delete(this.calls.keys().next().value!);
    }
    c.lastUuid = uuid;
    this.messages.push(message);
  }

  sessionMeta(payload: Json): void {
    const c = this.carry;
    const id = idOf(payload.id);
    this.metadata++;
    if (c.conversationId && id && id !== c.conversationId) {
      // A fork or resume copies other threads' headers; this file's thread stays the first. A
      // few are kept: a file of thousands made each header a scan of all before it.
      if (c.otherSessions.length < OTHER_SESSION_LIMIT && !c.otherSessions.includes(id)) {
        c.otherSessions.push(id);
        this.changed = true;
      }
      return;
    }
    if (!c.conversationId && id) c.conversationId = id;
    this.time(payload.timestamp);
    c.cwd = shortStr(payload.cwd, PATH_LIMIT) || c.cwd;
    if (str(payload.cli_version)) c.cliVersion = str(payload.cli_version);
    if (str(payload.originator)) c.originator = str(payload.originator);
    if (str(payload.forked_from_id)) c.forkedFrom = str(payload.forked_from_id);
    if (str(payload.parent_thread_id)) c.parentThread = str(payload.parent_thread_id);
    const git = isObject(payload.git) ? payload.git : {};
    if (str(git.branch)) c.gitBranch = str(git.branch);
    this.changed = true;
  }

  tokenCount(info: unknown): void {
    if (!isObject(info)) {
      bump(this.skipped, "token_count without usage (rate limits only)");
      return;
    }
    const total = usageOf(info.total_token_usage);
    const last = usageOf(info.last_token_usage);
    const c = this.carry;
    this.metadata++;
    if (!total) return;
    if (
      total.total_tokens === c.usage.total_tokens && total.input_tokens === c.usage.input_tokens
    ) {
      return; // Repeated report: nothing new was used.
    }
    // The figure is cumulative: a round gets what it grew by. A smaller total means the CLI
    // started counting again (a resumed process), so the new total is all new usage.
    const restarted = total.total_tokens < c.usage.total_tokens;
    const delta = emptyUsage();
    for (const key of USAGE_KEYS) {
      delta[key] = restarted ? (last?.[key] ?? total[key]) : total[key] - c.usage[key];
    }
    const round = c.usageByRound[String(c.round)] ?? emptyUsage();
    for (const key of USAGE_KEYS) round[key] += delta[key];
    c.usageByRound[String(c.round)] = round;
    if (restarted) {
      for (const key of USAGE_KEYS) c.usage[key] += delta[key];
    } else c.usage = total;
    this.changed = true;
  }

  /** One envelope or bare line. */
  line(obj: Json, line: number): void {
    const c = this.carry;
    const envelope = typeof obj.type === "string" && isObject(obj.payload);
    if (!c.form) c.form = envelope ? "envelope" : "bare";
    if (!envelope) return this.bare(obj, line);
    const payload = obj.payload as Json;
    const type = obj.type as string;
    const ts = this.time(obj.timestamp);
    switch (type) {
      case "session_meta":
        return this.sessionMeta(payload);
      case "turn_context": {
        this.metadata++;
        const model = shortStr(payload.model, NAME_LIMIT);
        if (model) c.model = model;
        else if (str(payload.model)) {
          // It would be stored with every message after it.
          this.warnings.push({
            line,
            message: `turn_context model of ${str(payload.model).length} characters is not a ` +
              `model name (at most ${NAME_LIMIT}); ignored`,
          });
        }
        const cwd = shortStr(payload.cwd, PATH_LIMIT);
        if (cwd && !cwd.startsWith("[")) c.cwd = cwd;
        this.changed = true;
        return;
      }
      case "response_item":
        return this.item(payload, line, ts);
      case "compacted": {
        const history = Array.isArray(payload.replacement_history)
          ? payload.replacement_history.length
          : 0;
        const mapped = textMessage("system", [str(payload.message) || "(conversation compacted)"], {
          compacted: true,
          replacement_items: history,
        });
        return this.emit(mapped, this.uuid(line), ts);
      }
      case "event_msg":
        return this.event(payload, line, ts);
      default:
        if (BOOKKEEPING_TYPES.has(type)) bump(this.skipped, type);
        else this.unknown(`line type ${JSON.stringify(type)}`, line);
    }
  }

  bare(obj: Json, line: number): void {
    if (str(obj.record_type)) {
      bump(this.skipped, `${str(obj.record_type)} record`);
      return;
    }
    if (!obj.type && str(obj.id) && obj.timestamp !== undefined) {
      return this.sessionMeta(obj);
    }
    this.item(obj, line, this.time(obj.timestamp));
  }

  item(payload: Json, line: number, ts: string): void {
    const mapped = mapItem(payload, this.calls);
    if (typeof mapped === "string") {
      if (mapped.startsWith("unknown")) this.unknown(mapped, line);
      else bump(this.skipped, mapped);
      return;
    }
    if (str(payload.type) === "message") this.carry.sawItems = true;
    this.emit(mapped, this.uuid(line), ts);
  }

  event(payload: Json, line: number, ts: string): void {
    const type = str(payload.type);
    if (type === "token_count") return this.tokenCount(payload.info);
    if (type === "thread_name_updated") {
      const name = titleFrom(payload.thread_name) || titleFrom(payload.name);
      this.metadata++;
      if (name) {
        this.carry.title = name;
        this.carry.namedByCli = true;
        this.changed = true;
      }
      return;
    }
    const completed = type === "item_completed" && isObject(payload.item) ? payload.item : null;
    const completedType = completed ? str(completed.type) : undefined;
    const skip = eventSkip(type, completedType, this.carry.sawItems);
    if (skip !== undefined) {
      bump(this.skipped, skip);
      return;
    }
    // No response items in this file (yet): the event is the only record of the message.
    const user = type === "user_message" || completedType === "UserMessage";
    const text = completed ? outputText(completed.content) : str(payload.message);
    const mapped = textMessage(user ? "user" : "assistant", [text], { from_event: type });
    if (user) mapped.prompt = !isContext(text);
    this.emit(mapped, this.uuid(line), ts);
  }

  /**
   * A line this parse would skip, dealt with from its first bytes as Codex writes them: an event
   * ({@link unparsedEvent}) or a reasoning item whose text is only encrypted. Its time is seen
   * and its skip counted as when it is parsed. Such lines are a tenth to a half of a rollout's
   * bytes. Most lines are told apart by one character where a millisecond time ends the head
   * (`"type":"e` for events, `"type":"r` and `{"type":"r` for reasoning items) or the ordinal
   * key begins; the others are parsed.
   */
  unparsedLine(text: string): boolean {
    if (this.carry.form !== "envelope") return false;
    const ordinal = text.charCodeAt(41) === 111;
    const at48 = text.charCodeAt(48);
    if ((ordinal || at48 === 101) && this.unparsedEvent(text)) return true;
    if (!ordinal && (at48 !== 114 || text.charCodeAt(82) !== 114)) return false;
    const head = REASONING_HEAD.exec(text);
    if (head === null) return false;
    this.time(head[1]);
    bump(this.skipped, ENCRYPTED_REASONING);
    return true;
  }

  /**
   * An event line (`{"timestamp":"…",["ordinal":n,]"type":"event_msg","payload":{"type":"…"`)
   * this parse would skip. Mirrors and completed items are only passed over once a response item
   * has been seen (before that they may be the only record of a message); usage and names are
   * always parsed.
   */
  unparsedEvent(text: string): boolean {
    const event = EVENT_HEAD.exec(text);
    if (event === null) return false;
    const type = event[2];
    if (type === "token_count" || type === "thread_name_updated") return false;
    let reason: string | undefined;
    if (type !== "item_completed") reason = eventSkip(type, undefined, this.carry.sawItems);
    else if (this.carry.sawItems) {
      // Which item it completes is told by the first such key of the line: a guess, and so
      // taken only where it decides no more than the reason counted (once items were seen,
      // every completed item is skipped).
      ITEM_HEAD.lastIndex = event[0].length;
      const itemType = ITEM_HEAD.exec(text)?.[1];
      if (itemType) reason = eventSkip(type, itemType, true);
    }
    if (reason === undefined) return false;
    this.time(event[1]);
    bump(this.skipped, reason);
    return true;
  }

  unknown(what: string, line: number): void {
    bump(this.skipped, what);
    this.warnings.push({ line, message: `${what} is not known to this version; skipped` });
  }

  /** A message's id: the session's series of line (or item) ids. */
  uuid(line: number): string {
    const kind = this.carry.form === "json" ? "item" : "line";
    if (this.#seriesId !== this.carry.conversationId || this.#seriesKind !== kind) {
      this.#series = new UuidSeries("codex", this.carry.conversationId, kind);
      this.#seriesId = this.carry.conversationId;
      this.#seriesKind = kind;
    }
    return this.#series!.id(line);
  }

  conversation(messages: Message[], host: string): Conversation {
    const c = this.carry;
    const created = c.firstTs || messages[0]?.created_at || EPOCH;
    const metadata: Json = {
      session_id: c.conversationId,
      project_name: baseName(c.cwd),
      cwd: c.cwd,
      git_branch: c.gitBranch,
      model: c.model,
      cli_version: c.cliVersion,
      originator: c.originator,
      host,
      message_count: c.messageCount,
      usage: toUsage(c.usage),
      usage_by_round: Object.fromEntries(
        Object.entries(c.usageByRound).map(([round, u]) => [round, toUsage(u)]),
      ),
      rollout_format: c.form,
    };
    if (c.title) metadata.title_source = c.namedByCli ? "ai" : "first_prompt";
    if (c.forkedFrom) metadata.forked_from_id = c.forkedFrom;
    if (c.parentThread) metadata.parent_thread_id = c.parentThread;
    if (c.otherSessions.length > 0) metadata.other_session_ids = [...c.otherSessions];
    if (this.hint.archived) metadata.archived = true;
    return {
      uuid: c.conversationId,
      title: c.title,
      created_at: created,
      updated_at: c.lastTs || created,
      metadata,
      messages,
    };
  }
}

function finish(
  parse: CodexParse,
  messages: Message[],
  input: ParseInput<CodexCarry, CodexHint>,
): ParseOutput<CodexCarry> {
  const { carry, issues } = parse;
  carry.calls = Object.fromEntries(parse.calls);
  const conversations: Conversation[] = [];
  if (!carry.conversationId && parse.messages.length > 0) {
    issues.push({
      line: input.firstLine,
      message: "no session id found (expected a session_meta line or a rollout-…-<uuid> file name)",
    });
  } else if (messages.length > 0 || parse.changed) {
    conversations.push(parse.conversation(messages, input.file.host));
  }
  return {
    conversations,
    carry,
    messages: conversations.length > 0 ? messages.length : 0,
    metadata: parse.metadata,
    skipped: parse.skipped,
    issues,
    warnings: parse.warnings,
  };
}

/**
 * Parses complete lines of a Codex rollout (`.jsonl`, or the decompressed `.jsonl.zst`), or a
 * whole `rollout-*.json` document when `hint.form` is `json`.
 *
 * Rules: the first `session_meta` (or bare header) names the conversation; later headers of
 * other threads are listed in `metadata.other_session_ids`; `turn_context` sets the model of the
 * messages after it; response items become messages (developer items and the context messages
 * Codex sends as user items are `system`); tool calls and their outputs are paired by `call_id`;
 * the prompt/answer events that mirror response items are skipped, so each message is delivered
 * once; `token_count` totals become the session's usage and each round's share of it.
 *
 * @example Parse an envelope rollout
 * ```ts
 * import { parseCodex } from "./codex.ts";
 * const lines = [
 *   { timestamp: "2025-09-19T09:02:12.457Z", type: "session_meta",
 *     payload: { id: "01996135-afde-7911-97f0-d863511eca56", cwd: "/w", cli_version: "0.39.0" } },
 *   { timestamp: "2025-09-19T09:02:13.000Z", type: "response_item",
 *     payload: { type: "message", role: "user", content: [{ type: "input_text", text: "hi" }] } },
 * ].map((l) => JSON.stringify(l) + "\n").join("");
 * const out = parseCodex({
 *   bytes: new TextEncoder().encode(lines), firstLine: 1, carry: undefined,
 *   file: { path: "rollout.jsonl", hint: {}, host: "laptop" },
 * });
 * console.log(out.conversations[0].messages[0].content_text); // hi
 * ```
 */
export function parseCodex(input: ParseInput<CodexCarry, CodexHint>): ParseOutput<CodexCarry> {
  const hint: CodexHint = input.file.hint;
  if (hint.form === "json") return parseJsonRollout(input, hint);
  const carry = carryOf(input, () => initialCodexCarry(idOf(hint.sessionId)));
  const parse = new CodexParse(carry, hint);
  eachJsonLine(input.bytes, input.firstLine, parse.skipped, parse.issues, (obj, line) => {
    if (line === 1 && obj.type === "session_meta" && isObject(obj.payload)) {
      // The file's own header names the thread even when the file name says otherwise.
      const id = idOf(obj.payload.id);
      if (id) carry.conversationId = id;
    }
    parse.line(obj, line);
  }, { unparsed: (text) => parse.unparsedLine(text) });
  carry.messageCount += parse.messages.length;
  return finish(parse, parse.messages, input);
}

/**
 * The early TypeScript CLI's rollout: `{session, items}`, rewritten whole, read in parts; each
 * version is parsed afresh and only messages whose fingerprint changed are sent.
 */
function parseJsonRollout(
  input: ParseInput<CodexCarry, CodexHint>,
  hint: CodexHint,
): ParseOutput<CodexCarry> {
  const previous = input.carry;
  const part = documentPart(
    input,
    CODEX_JSON_ROLLOUT,
    "a whole rollout document {session, items}",
    initialCodexCarry(),
  );
  if (!isPart(part)) return part;
  if (part.recordsKey !== "items") {
    return unreadableDocument(
      previous ?? initialCodexCarry(),
      "expected a rollout document {session, items} with an items array",
    );
  }
  const session = isObject(part.header.session) ? part.header.session : {};
  let carry: CodexCarry;
  if (part.first || !previous) {
    // The TypeScript CLI drew a new session id at every save, so the file name's id is the stable one.
    carry = initialCodexCarry(idOf(hint.sessionId) || idOf(session.id));
    carry.form = "json";
    carry.fingerprints = previous?.fingerprints ?? {};
    carry.passSent = false;
  } else carry = carryOf(input, () => previous);
  const parse = new CodexParse(carry, hint);
  parse.time(session.timestamp);
  if (part.first && str(session.instructions)) parse.metadata++;
  part.records.forEach((item, i) => {
    const index = part.index + i;
    if (isObject(item)) parse.item(item, index + 1, parse.time(item.timestamp));
    else parse.issues.push({ line: 1, message: `items[${index}]: expected an object` });
  });
  carry.messageCount += parse.messages.length;
  const { changed, fingerprints } = changedMessages(parse.messages, carry.fingerprints);
  carry.fingerprints = fingerprints;
  // Sent only with changed messages (a rewrite alone changes nothing), and by the last part of
  // a pass that sent it before.
  parse.changed = part.last && carry.passSent === true;
  const out = finish(parse, changed, input);
  out.messages = changed.length;
  if (out.conversations.length > 0) carry.passSent = true;
  if (part.last) delete carry.passSent;
  return out;
}
