/**
 * Parser for Claude Code session files (`~/.claude/projects/<project>/<session>.jsonl`, the
 * sub-agent files beside them; docs/sources.md). Pure: complete lines and the carry of the
 * previous parse in, canonical conversations out. It reads a file incrementally, so everything
 * that spans lines (round numbers, usage groups, titles, re-parented ids) lives in the carry.
 *
 * @module
 */
import { derivedUuid, sha256Hex } from "../common/hash.ts";
import {
  bump,
  carryOf,
  type LineIssue,
  type ParseInput,
  type ParseOutput,
} from "../common/source.ts";
import { fromBlocks, type MappedContent } from "./blocks.ts";
import {
  baseName,
  eachJsonLine,
  hasKeys,
  idOf,
  isObject,
  type Json,
  num,
  PATH_LIMIT,
  shortStr,
  str,
  titleFrom,
  titleOf,
} from "./json_lines.ts";
import {
  type Conversation,
  isTimestamp,
  type Message,
  NAME_LIMIT,
  TITLE_SOURCES,
  titleRank,
  type TitleSource,
} from "../common/types.ts";
import { type Usage, usage } from "./usage.ts";

/** Token counts summed over a conversation, each API response counted once. */
export interface UsageTotals {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}

/** What one parse of a Claude Code file hands to the next. */
export interface ClaudeCodeCarry {
  /** The conversation this file's lines belong to ('' until known). */
  conversationId: string;
  /** Genuine user prompts seen so far. */
  round: number;
  /** Messages produced so far. */
  messageCount: number;
  firstTs: string;
  lastTs: string;
  title: string;
  /**
   * Where the title came from: 0 none, 1 the first real prompt, 2 a summary line, 3 ai-title,
   * 4 custom-title (the rank of `TITLE_SOURCES`); a stronger source wins.
   */
  titleRank: number;
  /** `summary` lines whose `leafUuid` has not been seen yet, by leaf uuid (the newest 1,000). */
  pendingTitles: Record<string, string>;
  model: string;
  cwd: string;
  gitBranch: string;
  version: string;
  usage: UsageTotals;
  /** The last API response group (`message.id` + `requestId`) and its usage so far. */
  lastGroup: { key: string; usage: UsageTotals } | null;
  /** Skipped lines that others may name as parent, mapped to their nearest delivered ancestor. */
  reparent: Record<string, string>;
  /** The last uuids delivered, so a replay that straddles two reads is still delivered once. */
  recent: string[];
}

/** Path facts the worker passes in `FileContext.hint`. */
export interface ClaudeCodeHint {
  /** `session` for `<session>.jsonl`, `agent` for sub-agent transcripts. */
  kind?: "session" | "agent";
  /** The parent session id when the path names it (`<session>/subagents/agent-*.jsonl`). */
  sessionId?: string;
  /** The agent id from an `agent-<id>.jsonl` name. */
  agentId?: string;
  /** `agentType` from the agent's `.meta.json`. */
  agentType?: string;
}

/** Line types that carry no conversation content; skipped with their type as the reason. */
const BOOKKEEPING_TYPES = new Set([
  "file-history-snapshot",
  "queue-operation",
  "last-prompt",
  "mode",
  "permission-mode",
  "agent-name",
  "worktree-state",
  "pr-link",
  "frame-link",
  "bridge-session",
  "relocated",
  "started",
  "result",
  "atis-latch",
]);

/** Line types that take part in the parent graph but are not messages (hooks, progress). */
const GRAPH_ONLY_TYPES = new Set(["attachment", "progress"]);

const REPARENT_LIMIT = 1000;
/** Summaries kept waiting for their leaf message (a session copies in a few dozen at most). */
const PENDING_TITLE_LIMIT = 1000;
const RECENT_LIMIT = 64;

function emptyUsage(): UsageTotals {
  return {
    input_tokens: 0,
    output_tokens: 0,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
  };
}

/**
 * A fresh carry for a file read from offset 0.
 *
 * @example Start a carry for a session file
 * ```ts
 * import { initialCarry } from "./claude_code.ts";
 * initialCarry("0a1b2c3d-4e5f-4061-8071-2a3b4c5d6e7f").round === 0;
 * ```
 */
export function initialCarry(conversationId = ""): ClaudeCodeCarry {
  return {
    conversationId,
    round: 0,
    messageCount: 0,
    firstTs: "",
    lastTs: "",
    title: "",
    titleRank: 0,
    pendingTitles: {},
    model: "",
    cwd: "",
    gitBranch: "",
    version: "",
    usage: emptyUsage(),
    lastGroup: null,
    reparent: {},
    recent: [],
  };
}

function usageOf(raw: unknown): UsageTotals | null {
  if (!isObject(raw)) return null;
  return {
    input_tokens: num(raw.input_tokens),
    output_tokens: num(raw.output_tokens),
    cache_creation_input_tokens: num(raw.cache_creation_input_tokens),
    cache_read_input_tokens: num(raw.cache_read_input_tokens),
  };
}

/** Anthropic's counts in the one usage shape (its `input_tokens` exclude the cache). */
function toUsage(u: UsageTotals): Usage {
  return usage({
    input: u.input_tokens,
    output: u.output_tokens,
    cache_read: u.cache_read_input_tokens,
    cache_write: u.cache_creation_input_tokens,
  });
}

function addUsage(into: UsageTotals, add: UsageTotals, sign = 1): void {
  into.input_tokens += sign * add.input_tokens;
  into.output_tokens += sign * add.output_tokens;
  into.cache_creation_input_tokens += sign * add.cache_creation_input_tokens;
  into.cache_read_input_tokens += sign * add.cache_read_input_tokens;
}

/** Replaces inline image data with a reference (media type, SHA-256, size). */
function imageReference(block: Json): Json {
  const source = isObject(block.source) ? block.source : {};
  if (source.type === "base64" && typeof source.data === "string") {
    return {
      type: "image",
      source: {
        type: "reference",
        media_type: str(source.media_type),
        sha256: sha256Hex(source.data),
        base64_length: source.data.length,
      },
    };
  }
  return { type: "image", source };
}

function mapBlock(block: unknown): Json {
  if (!isObject(block)) return { type: "text", text: String(block) };
  switch (block.type) {
    case "image":
      return imageReference(block);
    case "tool_result": {
      const content = Array.isArray(block.content) ? block.content.map(mapBlock) : block.content;
      return { ...block, content };
    }
    default:
      return block;
  }
}

interface MappedClaudeContent extends MappedContent {
  hasToolResult: boolean;
  hasPromptText: boolean;
}

function mapContent(raw: unknown, toolUseResult: unknown): MappedClaudeContent {
  if (typeof raw === "string") {
    return {
      content: { type: "text", text: raw },
      contentType: "text",
      text: raw,
      hasToolResult: false,
      hasPromptText: raw.length > 0,
    };
  }
  const blocks = Array.isArray(raw) ? raw.map(mapBlock) : [mapBlock(raw ?? "")];
  const hasToolResult = blocks.some((b) => b.type === "tool_result");
  const hasPromptText = blocks.some((b) => b.type === "text" || b.type === "image");
  // An empty block list stays an empty multipart, as earlier versions delivered it.
  let { content, contentType, text } = blocks.length > 0 ? fromBlocks(blocks) : {
    content: { type: "multipart", parts: [] } as Json,
    contentType: "multipart" as const,
    text: "",
  };
  if (hasToolResult && toolUseResult !== undefined) {
    content = { ...content, tool_use_result: toolUseResult };
  }
  return { content, contentType, text, hasToolResult, hasPromptText };
}

const LOCAL_COMMAND_OUTPUT = /^<(local-command-stdout|local-command-stderr|local-command-caveat)>/;
/** Prompt text that Claude Code or a command wrote, not the user: no title from it. */
const MACHINE_TEXT =
  /^\s*(<(command-|local-command-|bash-|system-reminder|user-memory-input)|\[Request interrupted)/;
/** Title ranks, after `TITLE_SOURCES`. */
const RANK = Object.fromEntries(TITLE_SOURCES.map((s) => [s, titleRank(s)])) as Record<
  TitleSource,
  number
>;

/**
 * Parses complete lines of a Claude Code session or sub-agent file.
 *
 * Rules: every `user`, `assistant` and `system` line with a uuid becomes a message;
 * `summary`, `ai-title` and `custom-title` lines set the title (a summary only when its
 * `leafUuid` is in the same file); `attachment`/`progress` lines are skipped but their children
 * are re-parented to the nearest delivered ancestor; other known bookkeeping types and unknown
 * types are skipped and counted by type; malformed lines are reported with their line number.
 * A uuid seen twice (a resumed session replaying its predecessor) is delivered once. Usage is
 * counted once per API response (`message.id` + `requestId`), on the response's first line.
 *
 * @example Parse two lines of a session
 * ```ts
 * import { parseClaudeCode } from "./claude_code.ts";
 * const lines = [
 *   { type: "user", uuid: "u1", parentUuid: null, sessionId: "s1", timestamp: "2025-01-01T00:00:00.000Z",
 *     message: { role: "user", content: "hello" } },
 *   { type: "assistant", uuid: "a1", parentUuid: "u1", sessionId: "s1", timestamp: "2025-01-01T00:00:01.000Z",
 *     message: { id: "msg_1", role: "assistant", model: "claude-x", content: [{ type: "text", text: "hi" }] } },
 * ].map((l) => JSON.stringify(l) + "\n").join("");
 * const out = parseClaudeCode({
 *   bytes: new TextEncoder().encode(lines), firstLine: 1, carry: undefined,
 *   file: { path: "s1.jsonl", hint: { kind: "session", sessionId: "s1" }, host: "laptop" },
 * });
 * console.log(out.conversations[0].messages.length); // 2
 * ```
 */
export function parseClaudeCode(
  input: ParseInput<ClaudeCodeCarry, ClaudeCodeHint>,
): ParseOutput<ClaudeCodeCarry> {
  const hint: ClaudeCodeHint = input.file.hint;
  const isAgentFile = hint.kind === "agent";
  const carry: ClaudeCodeCarry = carryOf(input, () => initialCarry(idOf(hint.sessionId)));
  const messages: Message[] = [];
  const skipped: Record<string, number> = {};
  const issues: LineIssue[] = [];
  let metadataLines = 0;
  const seen = new Set<string>(carry.recent);
  const groupFirst = new Map<string, Message>();
  const groupUsage = new Map<string, UsageTotals>();
  let titleChanged = false;

  const setTitle = (title: string, rank: number) => {
    if (title && rank >= carry.titleRank && title !== carry.title) {
      carry.title = title;
      carry.titleRank = rank;
      titleChanged = true;
    }
  };
  // The carry keeps these two as objects; during the parse they are maps, oldest first, so that
  // dropping the oldest costs nothing: listing an object's keys for it on every skipped line
  // took 90 µs a line (50,000 progress lines, 12 MB: 4.5 s).
  const reparent = new Map(Object.entries(carry.reparent));
  const pendingTitles = new Map(Object.entries(carry.pendingTitles));
  const remember = (map: Map<string, string>, key: string, value: string, limit: number) => {
    map.set(key, value);
    if (map.size > limit) map.delete(map.keys().next().value!);
  };
  const resolveParent = (p: string): string => reparent.get(p) ?? p;
  const rememberSkipped = (obj: Json) => {
    const uuid = idOf(obj.uuid);
    // The parent is given to every child of the skipped line: one the schema refuses is
    // replaced by the id derived from it, which is short.
    if (uuid) {
      remember(reparent, uuid, resolveParent(idOf(obj.parentUuid)), REPARENT_LIMIT);
    }
  };

  eachJsonLine(input.bytes, input.firstLine, skipped, issues, (obj, lineNo) => {
    const type = str(obj.type);
    if (!carry.conversationId) {
      const sessionId = idOf(obj.sessionId);
      if (sessionId && !sessionId.startsWith("agent-")) carry.conversationId = sessionId;
    }

    if (type === "summary") {
      metadataLines++;
      const leaf = str(obj.leafUuid);
      if (seen.has(leaf)) setTitle(titleFrom(obj.summary), RANK.summary);
      // The carry is stored with every checkpoint: a file of summaries must not grow it without
      // bound (100,000 of them made it 5.5 MB). The oldest waiting one goes.
      else if (leaf) remember(pendingTitles, leaf, titleFrom(obj.summary), PENDING_TITLE_LIMIT);
      return;
    }
    if (type === "custom-title" || type === "ai-title") {
      metadataLines++;
      if (!isAgentFile) {
        setTitle(
          titleFrom(type === "custom-title" ? obj.customTitle : obj.aiTitle),
          type === "custom-title" ? RANK.custom : RANK.ai,
        );
      }
      return;
    }
    if (BOOKKEEPING_TYPES.has(type)) {
      bump(skipped, type);
      return;
    }
    if (GRAPH_ONLY_TYPES.has(type)) {
      rememberSkipped(obj);
      bump(skipped, type);
      return;
    }
    if (type !== "user" && type !== "assistant" && type !== "system") {
      bump(skipped, `unknown type ${JSON.stringify(type || null)}`);
      return;
    }

    const uuid = idOf(obj.uuid) ||
      derivedUuid("claude_code", carry.conversationId, hint.agentId ?? "", "line", lineNo);
    if (seen.has(uuid)) {
      bump(skipped, "duplicate uuid (replayed by a resumed session)");
      return;
    }
    seen.add(uuid);
    const pendingTitle = pendingTitles.get(uuid);
    if (pendingTitle !== undefined) {
      setTitle(pendingTitle, RANK.summary);
      pendingTitles.delete(uuid);
    }

    let ts = str(obj.timestamp);
    if (!isTimestamp(ts)) {
      const parsed = Date.parse(ts);
      // A date `Date` reads may still be one RFC 3339 cannot write (the year 20000, say).
      const written = Number.isNaN(parsed) ? "" : new Date(parsed).toISOString();
      if (isTimestamp(written)) ts = written;
      else {
        issues.push({
          line: lineNo,
          message: `timestamp ${JSON.stringify(obj.timestamp ?? null)} is not an ISO 8601 ` +
            `date between the years 0 and 9999; used the previous line's time`,
        });
        ts = carry.lastTs || "1970-01-01T00:00:00.000Z";
      }
    }
    if (!carry.firstTs || ts < carry.firstTs) carry.firstTs = ts;
    if (ts > carry.lastTs) carry.lastTs = ts;
    // Each goes with every part of the conversation sent after it.
    carry.cwd = shortStr(obj.cwd, PATH_LIMIT) || carry.cwd;
    carry.gitBranch = shortStr(obj.gitBranch, PATH_LIMIT) || carry.gitBranch;
    carry.version = shortStr(obj.version, NAME_LIMIT) || carry.version;

    const sidechain = obj.isSidechain === true;
    const meta: Json = {};
    if (sidechain) meta.is_sidechain = true;
    const agentId = str(obj.agentId) || hint.agentId || "";
    if (agentId) meta.agent_id = agentId;
    if (hint.agentType) meta.agent_type = hint.agentType;
    const lineSession = str(obj.sessionId);
    if (lineSession && lineSession !== carry.conversationId && !lineSession.startsWith("agent-")) {
      meta.session_id = lineSession;
    }
    let parent = idOf(obj.parentUuid);
    const message: Message = {
      uuid,
      parent_uuid: "",
      round_index: 0,
      role: "user",
      content_type: "text",
      content: {},
      content_text: "",
      created_at: ts,
    };

    if (type === "system") {
      const subtype = str(obj.subtype);
      if (subtype === "compact_boundary" && !parent) parent = str(obj.logicalParentUuid);
      const { parentUuid: _p, uuid: _u, type: _t, ...rest } = obj;
      message.role = "system";
      message.content = { type: "system", ...rest };
      message.content_text = str(obj.content);
      meta.subtype = subtype;
    } else {
      const apiMessage = isObject(obj.message) ? obj.message : {};
      const mapped = mapContent(apiMessage.content, obj.toolUseResult);
      message.content = mapped.content;
      message.content_type = mapped.contentType;
      message.content_text = mapped.text;
      if (type === "assistant") {
        message.role = "assistant";
        const model = shortStr(apiMessage.model, NAME_LIMIT);
        if (model) {
          message.model = model;
          if (model !== "<synthetic>") carry.model = model;
        }
        if (str(apiMessage.id)) meta.message_id = apiMessage.id;
        if (str(obj.requestId)) meta.request_id = obj.requestId;
        if (str(apiMessage.stop_reason)) meta.stop_reason = apiMessage.stop_reason;
        if (obj.isApiErrorMessage === true) meta.is_api_error = true;
        const usage = usageOf(apiMessage.usage);
        if (usage) {
          const key = `${str(apiMessage.id) || uuid}\u001f${str(obj.requestId)}`;
          accountUsage(carry, key, usage, message, groupFirst, groupUsage);
        }
      } else if (mapped.hasToolResult) {
        message.role = "tool";
      } else if (
        obj.isMeta === true || obj.isCompactSummary === true ||
        LOCAL_COMMAND_OUTPUT.test(mapped.text)
      ) {
        message.role = "system";
        if (obj.isMeta === true) meta.is_meta = true;
        if (obj.isCompactSummary === true) meta.is_compact_summary = true;
      } else if (!sidechain && !isAgentFile && mapped.hasPromptText) {
        carry.round++;
        // Until something better comes: the first prompt the user typed (not a command).
        if (!carry.title && !MACHINE_TEXT.test(mapped.text)) {
          setTitle(titleOf(mapped.text), RANK.first_prompt);
        }
      }
    }
    message.parent_uuid = resolveParent(parent);
    message.round_index = carry.round;
    if (hasKeys(meta)) message.metadata = meta;
    messages.push(message);
  });

  carry.reparent = Object.fromEntries(reparent);
  carry.pendingTitles = Object.fromEntries(pendingTitles);
  carry.messageCount += messages.length;
  carry.recent = [...carry.recent, ...messages.map((m) => m.uuid)].slice(-RECENT_LIMIT);
  const conversations: Conversation[] = [];
  if ((messages.length > 0 || titleChanged) && carry.conversationId) {
    conversations.push(buildConversation(carry, messages, input.file.host, isAgentFile, hint));
  } else if (messages.length > 0) {
    issues.push({
      line: input.firstLine,
      message: "no session id found (expected a sessionId field or a <session>.jsonl file name)",
    });
  }
  return {
    conversations,
    carry,
    messages: conversations.length > 0 ? messages.length : 0,
    metadata: metadataLines,
    skipped,
    issues,
    totals: carry.conversationId
      ? {
        [carry.conversationId]: {
          messages: carry.messageCount,
          usage: { ...toUsage(carry.usage) },
        },
      }
      : undefined,
  };
}

/**
 * Attaches a response's usage to its first line and keeps the conversation totals exact: a
 * later line of the same response (usage grows as blocks stream) replaces the response's
 * contribution instead of adding to it.
 */
function accountUsage(
  carry: ClaudeCodeCarry,
  key: string,
  usage: UsageTotals,
  message: Message,
  groupFirst: Map<string, Message>,
  groupUsage: Map<string, UsageTotals>,
): void {
  const previous = groupUsage.get(key) ??
    (carry.lastGroup?.key === key ? carry.lastGroup.usage : undefined);
  if (previous) addUsage(carry.usage, previous, -1);
  addUsage(carry.usage, usage);
  groupUsage.set(key, usage);
  carry.lastGroup = { key, usage };
  const first = groupFirst.get(key);
  if (first) first.usage = toUsage(usage);
  else if (!previous) {
    message.usage = toUsage(usage);
    groupFirst.set(key, message);
  }
}

function buildConversation(
  carry: ClaudeCodeCarry,
  messages: Message[],
  host: string,
  isAgentFile: boolean,
  hint: ClaudeCodeHint,
): Conversation {
  const created = carry.firstTs || messages[0]?.created_at || "1970-01-01T00:00:00.000Z";
  // This file's counts; when sub-agent files add to the conversation, the pipeline sends the sum.
  const metadata: Json = {
    session_id: carry.conversationId,
    message_count: carry.messageCount,
    usage: toUsage(carry.usage),
  };
  if (isAgentFile) {
    // A sub-agent file must not overwrite the parent's title or project on the server.
    if (hint.agentId) metadata.last_agent_id = hint.agentId;
  } else {
    Object.assign(metadata, {
      project_name: baseName(carry.cwd),
      cwd: carry.cwd,
      git_branch: carry.gitBranch,
      model: carry.model,
      cli_version: carry.version,
      host,
    });
    if (carry.title) metadata.title_source = TITLE_SOURCES[carry.titleRank - 1];
  }
  return {
    uuid: carry.conversationId,
    title: isAgentFile ? "" : carry.title,
    created_at: created,
    updated_at: carry.lastTs || created,
    metadata,
    messages,
  };
}
