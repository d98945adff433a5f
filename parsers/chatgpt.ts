/**
 * ChatGPT data exports: `conversations.json` (2023-2025) or its shards `conversations-NNN.json`
 * (2026), each an array of conversations whose `mapping` is a tree of message nodes; and
 * `chat.html`, which embeds the same array, as a fallback.
 *
 * Every node with a message is one message, on every branch; the path from `current_node` to
 * the root (what the user last saw) is marked `main_line`. A message's uuid is derived from
 * its conversation and node id (a node id can occur in two conversations of one export), the
 * export's own id kept as `metadata.export_id`. Hidden and system nodes are delivered and
 * marked. Unknown content types pass through with their raw content and a warning.
 *
 * @module
 */
import type { Conversation, Message } from "../common/types.ts";
import { derivedUuid } from "../common/hash.ts";
import {
  type DocumentShape,
  emptyOutput,
  type LineIssue,
  type ParseInput,
  type ParseOutput,
} from "../common/source.ts";
import { blockText } from "./blocks.ts";
import {
  idOf,
  isObject,
  isoOfEpochMs,
  type Json,
  latestTime,
  num,
  str,
  titleFrom,
} from "./json_lines.ts";
import { endOfJsonValue } from "./html.ts";

/** What the source knows of an export member. */
export interface ChatGptHint {
  /** Archive file names of attachments mapped to their original names. */
  assets?: Record<string, string>;
}

/** ChatGPT's conversations files: a root array of conversations, read in parts. */
export const CHATGPT_SHAPE: DocumentShape = {
  recordKeys: ["conversations"],
  inParts: true,
  recordPerConversation: true,
};

const EPOCH = "1970-01-01T00:00:00.000Z";

/**
 * Parses a part of a ChatGPT conversations file (or a whole `chat.html`).
 *
 * @example One conversation of two messages
 * ```ts
 * import { parseChatGpt } from "./chatgpt.ts";
 * const conversation = {
 *   id: "6925e174-0000-8000-8000-000000000001", title: "Hi", create_time: 1764090229.36,
 *   current_node: "b", mapping: {
 *     root: { id: "root", message: null, parent: null },
 *     a: { id: "a", parent: "root", message: { id: "a", author: { role: "user" }, create_time: 1764090229.4, content: { content_type: "text", parts: ["hello"] } } },
 *     b: { id: "b", parent: "a", message: { id: "b", author: { role: "assistant" }, create_time: 1764090231, content: { content_type: "text", parts: ["hi!"] }, metadata: { model_slug: "gpt-5" } } },
 *   },
 * };
 * const out = parseChatGpt({
 *   bytes: new Uint8Array(0), firstLine: 1, carry: undefined, file: { path: "c.json", hint: {}, host: "h" },
 *   document: { root: "array", header: {}, recordsKey: "", records: [conversation], index: 0, first: true, last: true },
 * });
 * console.log(out.conversations[0].messages.map((m) => m.role)); // ["user", "assistant"]
 * ```
 */
export function parseChatGpt(input: ParseInput<null, ChatGptHint>): ParseOutput<null> {
  const out = emptyOutput(null);
  let records: unknown[];
  let first = 1;
  if (input.document) {
    records = input.document.records;
    first = input.document.index + 1;
  } else {
    records = chatHtmlRecords(new TextDecoder().decode(input.bytes), out.issues);
  }
  const drift = new Set<string>();
  records.forEach((record, i) => {
    const conversation = isObject(record)
      ? conversationOf(record, input.file.hint, input.file.host, drift, out, first + i)
      : null;
    if (!conversation) {
      if (!isObject(record)) {
        out.issues.push({ line: first + i, message: "conversation: expected an object" });
      }
      return;
    }
    out.messages += conversation.messages.length;
    out.conversations.push(conversation);
  });
  for (const type of drift) {
    out.warnings!.push({
      line: first,
      message: `content type ${type} is not known to this version; passed through raw`,
    });
  }
  return out;
}

/** The array `chat.html` embeds as `var jsonData = [...]`. */
function chatHtmlRecords(html: string, issues: LineIssue[]): unknown[] {
  const marker = html.search(/jsonData\s*=\s*\[/);
  if (marker < 0) {
    issues.push({ line: 1, message: "chat.html: no `var jsonData = [...]` found" });
    return [];
  }
  const start = html.indexOf("[", marker);
  const end = endOfJsonValue(html, start);
  try {
    const value = JSON.parse(html.slice(start, end));
    return Array.isArray(value) ? value : [];
  } catch (error) {
    issues.push({
      line: 1,
      message: `chat.html: jsonData is not JSON (${(error as Error).message})`,
    });
    return [];
  }
}

/** The first millisecond RFC 3339 cannot write: the year 10000. */
const YEAR_10000_MS = 253_402_300_800_000;

/** An epoch time in seconds as RFC 3339; `""` for none, and for one before 1970 or after 9999. */
function iso(seconds: unknown): string {
  const ms = Math.round(num(seconds) * 1000);
  return ms > 0 && ms < YEAR_10000_MS ? isoOfEpochMs(ms) : "";
}

interface Node {
  id: string;
  parent: string;
  message: Json | null;
}

function conversationOf(
  c: Json,
  hint: ChatGptHint,
  host: string,
  drift: Set<string>,
  found: { issues: LineIssue[]; warnings?: LineIssue[] },
  line: number,
): Conversation | null {
  const id = idOf(c.conversation_id) || idOf(c.id);
  if (!id || !isObject(c.mapping)) {
    found.issues.push({ line, message: "conversation: expected an `id` and a `mapping`; skipped" });
    return null;
  }
  const nodes = new Map<string, Node>();
  for (const [key, raw] of Object.entries(c.mapping)) {
    if (!isObject(raw)) continue;
    const nodeId = str(raw.id) || key;
    nodes.set(nodeId, {
      id: nodeId,
      parent: str(raw.parent),
      message: isObject(raw.message) ? raw.message : null,
    });
  }
  const children = new Map<string, Node[]>();
  const roots: Node[] = [];
  for (const node of nodes.values()) {
    if (node.parent && nodes.has(node.parent)) {
      const list = children.get(node.parent) ?? [];
      list.push(node);
      children.set(node.parent, list);
    } else roots.push(node);
  }
  const mainLine = new Set<string>();
  for (let at = nodes.get(str(c.current_node)); at && !mainLine.has(at.id);) {
    mainLine.add(at.id);
    at = nodes.get(at.parent);
  }
  const created = iso(c.create_time) || EPOCH;
  const messages: Message[] = [];
  // Depth first from each root, children by time: iterative, for trees of any depth.
  const stack: { node: Node; parentUuid: string; round: number; time: string }[] = [];
  const push = (list: Node[], parentUuid: string, round: number, time: string) => {
    const sorted = [...list].sort(byTime);
    for (let i = sorted.length - 1; i >= 0; i--) {
      stack.push({ node: sorted[i], parentUuid, round, time });
    }
  };
  const seen = new Set<string>();
  const walk = () => {
    while (stack.length > 0) {
      const { node, parentUuid, round, time } = stack.pop()!;
      if (seen.has(node.id)) continue;
      seen.add(node.id);
      let uuid = parentUuid;
      let nextRound = round;
      let nextTime = time;
      if (node.message) {
        const message = messageOf(node, id, parentUuid, round, time, mainLine, hint, drift);
        messages.push(message);
        uuid = message.uuid;
        nextRound = message.round_index;
        nextTime = message.created_at;
      }
      push(children.get(node.id) ?? [], uuid, nextRound, nextTime);
    }
  };
  push(roots, "", 0, created);
  walk();
  // Nodes whose parents form a cycle hang from no root: each cycle is entered at its first node
  // in the export's order, as a root, so that none of its messages is lost.
  const reached = seen.size;
  for (const node of nodes.values()) {
    if (seen.has(node.id)) continue;
    push([node], "", 0, created);
    walk();
  }
  if (seen.size > reached) {
    found.warnings?.push({
      line,
      message: `conversation ${id}: ${seen.size - reached} node(s) whose parents form a cycle; ` +
        `delivered from the first of each cycle as a root`,
    });
  }
  const metadata: Json = { host, export_id: id, message_count: messages.length };
  const extra: [string, unknown][] = [
    ["model", c.default_model_slug],
    ["gizmo_id", c.gizmo_id],
    ["gizmo_type", c.gizmo_type],
    ["conversation_template_id", c.conversation_template_id],
    ["is_archived", c.is_archived],
    ["is_starred", c.is_starred],
    ["conversation_origin", c.conversation_origin],
  ];
  for (const [key, value] of extra) {
    // Scalars only: these fields are strings and flags, and an object here would be stored in
    // the conversation's metadata, which the store reads with SQL (common/json_depth.ts).
    const scalar = typeof value === "string" || typeof value === "number" ||
      typeof value === "boolean";
    if (scalar && value !== "") metadata[key] = value;
  }
  // Custom GPTs are `g-…`, projects `g-p-…`.
  if (str(c.gizmo_id).startsWith("g-p-")) metadata.project_id = c.gizmo_id;
  const canvases = [
    ...new Set(messages.map((m) => str(m.metadata?.canvas_id)).filter(Boolean)),
  ];
  if (canvases.length > 0) metadata.canvas_ids = canvases;
  const title = titleFrom(c.title);
  if (title) metadata.title_source = "ai";
  const last = latestTime(messages, created);
  return {
    uuid: id,
    title,
    created_at: created,
    updated_at: iso(c.update_time) || last,
    metadata,
    messages,
  };
}

function byTime(a: Node, b: Node): number {
  const ta = num(a.message?.create_time) || Number.MAX_VALUE;
  const tb = num(b.message?.create_time) || Number.MAX_VALUE;
  return ta - tb || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function messageOf(
  node: Node,
  conversationId: string,
  parentUuid: string,
  round: number,
  time: string,
  mainLine: Set<string>,
  hint: ChatGptHint,
  drift: Set<string>,
): Message {
  const m = node.message!;
  const author = isObject(m.author) ? m.author : {};
  const meta = isObject(m.metadata) ? m.metadata : {};
  const rawRole = str(author.role);
  const role: Message["role"] = rawRole === "user" || rawRole === "assistant" ||
      rawRole === "tool"
    ? rawRole
    : "system";
  const recipient = str(m.recipient) || "all";
  const hidden = meta.is_visually_hidden_from_conversation === true;
  const userSystem = meta.is_user_system_message === true;
  const { block, type } = contentOf(m, role, recipient, str(author.name), hint, drift);
  const prompt = role === "user" && !hidden && !userSystem;
  const metadata: Json = { export_id: str(m.id) || node.id, main_line: mainLine.has(node.id) };
  if (hidden) metadata.hidden = true;
  if (userSystem) metadata.user_system_message = true;
  if (rawRole && rawRole !== role) metadata.author_role = rawRole;
  if (str(author.name)) metadata.author_name = author.name;
  if (recipient !== "all") metadata.recipient = recipient;
  for (const key of ["channel", "status", "end_turn", "weight"] as const) {
    if (m[key] !== undefined && m[key] !== null) metadata[key] = m[key];
  }
  for (const key of ["finish_details", "reasoning_status", "finished_duration_sec"] as const) {
    if (meta[key] !== undefined) metadata[key] = meta[key];
  }
  if (Array.isArray(meta.attachments)) {
    metadata.attachments = meta.attachments.filter(isObject).map((a) => {
      const file = assetFile(str(a.id), hint);
      return file ? { ...a, archive_file: file } : a;
    });
  }
  if (isObject(meta.canvas) && str(meta.canvas.textdoc_id)) {
    metadata.canvas_id = meta.canvas.textdoc_id;
  }
  const message: Message = {
    uuid: derivedUuid("gpt", conversationId, node.id),
    parent_uuid: parentUuid,
    round_index: round + (prompt ? 1 : 0),
    role,
    content_type: type,
    content: block,
    content_text: blockText(block) || textOfParts(block),
    created_at: iso(m.create_time) || time,
    metadata,
  };
  if (str(meta.model_slug)) message.model = str(meta.model_slug);
  return message;
}

/** An export's archive names sorted, each with its place in the export's list; answers so far. */
interface AssetIndex {
  sorted: string[];
  order: Map<string, number>;
  found: Map<string, string>;
}

const assetIndexes = new WeakMap<Record<string, string>, AssetIndex>();

/**
 * The archive file of an asset id (`file-abc`, `file_abc`), by the export's list of names: the
 * first name in that list that starts with the id. Looked up in the names sorted (the ones with
 * the id's prefix stand together there), once per id: a scan of the list for every image took
 * time to the square of an export's images (10,000: 19 s).
 */
function assetFile(id: string, hint: ChatGptHint): string {
  if (!id || !hint.assets) return "";
  let index = assetIndexes.get(hint.assets);
  if (!index) {
    const names = Object.keys(hint.assets);
    index = {
      sorted: names.toSorted(),
      order: new Map(names.map((n, i) => [n, i])),
      found: new Map(),
    };
    assetIndexes.set(hint.assets, index);
  }
  const known = index.found.get(id);
  if (known !== undefined) return known;
  const { sorted, order } = index;
  let lo = 0;
  for (let hi = sorted.length; lo < hi;) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < id) lo = mid + 1;
    else hi = mid;
  }
  let file = "";
  for (let i = lo; i < sorted.length && sorted[i].startsWith(id); i++) {
    if (!file || order.get(sorted[i])! < order.get(file)!) file = sorted[i];
  }
  index.found.set(id, file);
  return file;
}

function textOfParts(block: Json): string {
  if (!Array.isArray(block.parts)) return "";
  return block.parts.filter(isObject).map((p) => blockText(p)).filter(Boolean).join("\n");
}

/** A message's content as a block, and its content type. */
function contentOf(
  m: Json,
  role: Message["role"],
  recipient: string,
  authorName: string,
  hint: ChatGptHint,
  drift: Set<string>,
): { block: Json; type: Message["content_type"] } {
  const c = isObject(m.content) ? m.content : {};
  const kind = str(c.content_type);
  const toolCall = role === "assistant" && recipient !== "all";
  const text = (value: string) => ({ type: "text", text: value });
  const partsText = Array.isArray(c.parts)
    ? c.parts.filter((p) => typeof p === "string").join("\n")
    : "";
  let block: Json;
  switch (kind) {
    case "text":
      block = text(partsText);
      break;
    case "multimodal_text":
      block = {
        type: "multipart",
        parts: (Array.isArray(c.parts) ? c.parts : []).map((p) => partOf(p, hint)),
      };
      break;
    case "code":
      block = { type: "text", text: str(c.text), language: str(c.language) };
      break;
    case "execution_output":
    case "system_error":
      block = {
        type: "tool_result",
        name: authorName,
        content: str(c.text),
        ...(kind === "system_error" ? { is_error: true, error_name: str(c.name) } : {}),
      };
      break;
    case "tether_browsing_display":
      block = { type: "tool_result", name: authorName, content: str(c.result), summary: c.summary };
      break;
    case "tether_quote":
      block = {
        type: "tool_result",
        name: authorName,
        content: str(c.text),
        url: str(c.url),
        domain: str(c.domain),
        title: str(c.title),
      };
      break;
    case "thoughts": {
      const thoughts = Array.isArray(c.thoughts) ? c.thoughts.filter(isObject) : [];
      block = {
        type: "thinking",
        thinking: thoughts.map((t) => [str(t.summary), str(t.content)].filter(Boolean).join("\n"))
          .join("\n\n"),
        thoughts,
      };
      break;
    }
    case "reasoning_recap":
      block = { type: "thinking", thinking: str(c.content), recap: true };
      break;
    case "user_editable_context":
      block = text([str(c.user_profile), str(c.user_instructions)].filter(Boolean).join("\n\n"));
      block.context = "custom_instructions";
      break;
    case "model_editable_context":
      block = text(str(c.model_set_context));
      block.context = "memory";
      break;
    default:
      drift.add(kind || "(none)");
      block = { type: kind || "unknown", raw: c };
  }
  if (toolCall) {
    const raw = str(block.text) || partsText;
    let input: unknown = raw;
    try {
      input = raw.trim().startsWith("{") ? JSON.parse(raw) : { text: raw };
    } catch {
      input = { text: raw };
    }
    return { block: { type: "tool_use", name: recipient, input }, type: "tool_use" };
  }
  if (role === "tool" && block.type !== "tool_result") {
    return {
      block: { type: "tool_result", name: authorName, content: blockText(block) || partsText },
      type: "tool_result",
    };
  }
  const type: Message["content_type"] = block.type === "tool_result"
    ? "tool_result"
    : block.type === "multipart"
    ? "multipart"
    : "text";
  return { block, type };
}

/** One part of a multimodal message. */
function partOf(part: unknown, hint: ChatGptHint): Json {
  if (typeof part === "string") return { type: "text", text: part };
  if (!isObject(part)) return { type: "unknown", raw: part };
  const kind = str(part.content_type);
  if (kind === "audio_transcription") return { type: "text", text: str(part.text), voice: true };
  if (kind.endsWith("asset_pointer")) {
    const pointer = str(part.asset_pointer);
    const file = assetFile(pointer.replace(/^[a-z-]+:\/\//, ""), hint);
    return {
      type: kind === "image_asset_pointer" ? "image" : "media",
      content_type: kind,
      asset_pointer: pointer,
      ...(file ? { archive_file: file, file_name: hint.assets?.[file] } : {}),
      ...(part.width !== undefined ? { width: part.width, height: part.height } : {}),
      ...(part.size_bytes !== undefined ? { size_bytes: part.size_bytes } : {}),
    };
  }
  return { type: kind || "unknown", raw: part };
}
