/**
 * Claude.ai data exports: `conversations.json`, an array of conversations with their
 * `chat_messages`. 2024 exports hold text only (artifacts and thinking as `<antArtifact>` and
 * `<antThinking>` tags in it); 2025 and later add `content[]` blocks (text with citations,
 * thinking, tool_use, artifacts as tool_use, tool_result), which are preferred when present.
 * Messages keep the export's uuids (ids that are not UUIDs are scoped to their conversation:
 * {@link scopedId}); `parent_message_uuid` gives the tree (the sentinel root
 * `00000000-0000-4000-8000-000000000000` is the top), else the list order does. Attachments
 * come with their extracted text, files as references, and the project's knowledge from
 * `projects.json` (or `projects/<uuid>.json`) where the conversation names its project.
 *
 * @module
 */
import { type Conversation, type Message } from "../common/types.ts";
import { derivedUuid } from "../common/hash.ts";
import {
  type DocumentPart,
  type DocumentShape,
  emptyOutput,
  type LineIssue,
  type ParseInput,
  type ParseOutput,
} from "../common/source.ts";
import { blockText, fromBlocks } from "./blocks.ts";
import {
  idOf,
  isObject,
  isUuid,
  type Json,
  latestTime,
  ownEntry,
  str,
  timestamp,
  titleFrom,
  titleOf,
} from "./json_lines.ts";

/** A Claude.ai project as `projects.json` describes it. */
export interface ClaudeProject {
  uuid: string;
  name: string;
  description?: string;
  prompt_template?: string;
  created_at?: string;
  updated_at?: string;
  docs?: { uuid?: string; filename: string; content: string; created_at?: string }[];
}

/** What a conversation that names a project is told of it. */
export interface ProjectSummary {
  uuid: string;
  name: string;
  description?: string;
  /** How many knowledge documents it has. */
  documents: number;
}

/** What the source knows of an export member. */
export interface ClaudeHint {
  /** `projects`: a member of projects (`projects.json`, `projects/<uuid>.json`), else conversations. */
  kind?: "projects";
  /** The export's projects, by uuid, for the conversations that name one. */
  projects?: Record<string, ProjectSummary>;
}

/**
 * A project record of `projects.json` (or a project file) as a {@link ClaudeProject}; `null` when
 * it has no uuid.
 *
 * @example A project with one document
 * ```ts
 * import { projectOf } from "./claude.ts";
 * const project = projectOf({ uuid: "p1", name: "Shop", docs: [{ filename: "a.md", content: "x" }] });
 * console.log(project?.docs?.length); // 1
 * ```
 */
export function projectOf(record: unknown): ClaudeProject | null {
  if (!isObject(record) || !str(record.uuid)) return null;
  const optional = (key: string) => str(record[key]) ? { [key]: str(record[key]) } : {};
  return {
    uuid: str(record.uuid),
    name: str(record.name),
    ...optional("description"),
    ...optional("prompt_template"),
    ...optional("created_at"),
    ...optional("updated_at"),
    docs: (Array.isArray(record.docs) ? record.docs : []).filter(isObject).map((d) => ({
      ...(str(d.uuid) ? { uuid: str(d.uuid) } : {}),
      filename: str(d.filename),
      content: str(d.content),
      ...(str(d.created_at) ? { created_at: str(d.created_at) } : {}),
    })),
  };
}

/**
 * What conversations are told of a project: its name and description cut to a title's length
 * (each conversation of the project repeats them) and the number of its documents.
 *
 * @example A summary
 * ```ts
 * import { projectSummary } from "./claude.ts";
 * console.log(projectSummary({ uuid: "p1", name: "Shop", docs: [] }).documents); // 0
 * ```
 */
export function projectSummary(project: ClaudeProject): ProjectSummary {
  return {
    uuid: project.uuid,
    name: titleFrom(project.name),
    ...(project.description ? { description: titleFrom(project.description) } : {}),
    documents: project.docs?.length ?? 0,
  };
}

/** `conversations.json`: a root array of conversations, read in parts. */
export const CLAUDE_SHAPE: DocumentShape = {
  recordKeys: [],
  inParts: true,
  recordPerConversation: true,
};

const SENTINEL_ROOT = "00000000-0000-4000-8000-000000000000";
const EPOCH = "1970-01-01T00:00:00.000Z";
const TAG_NAMES = ["antThinking", "antArtifact"] as const;

/** An `<antThinking>` or `<antArtifact>` element of a 2024 message's text. */
interface AntTag {
  name: (typeof TAG_NAMES)[number];
  /** The opening tag's attributes as written. */
  attributes: string;
  content: string;
  /** Where the element starts and ends in the text. */
  start: number;
  end: number;
}

/**
 * The `<antThinking>` and `<antArtifact>` elements of `text`, in order: each from its opening
 * tag to the first closing tag of its name; a tag left open is text. Linear in the text's
 * length, whatever it holds: the pattern this replaces (`<(name)[^>]*>[\s\S]*?<\/\1>`) scanned
 * to the end again from every opening tag that nothing closed, and a message of a megabyte of
 * them took minutes.
 */
function* antTags(text: string): Generator<AntTag> {
  /** Names no closing tag follows any more, from where it was last looked for. */
  const unclosed = new Set<string>();
  let nextGt = -1;
  let from = 0;
  while (unclosed.size < TAG_NAMES.length) {
    const open = text.indexOf("<ant", from);
    if (open < 0) return;
    from = open + 1;
    const name = TAG_NAMES.find((n) => text.startsWith(n, open + 1));
    if (!name || unclosed.has(name) || /\w/.test(text[open + 1 + name.length] ?? "")) continue;
    // The opening tag ends at the next `>`; it is the same one for every tag before it.
    if (nextGt < open) nextGt = text.indexOf(">", open);
    if (nextGt < 0) return;
    const closing = `</${name}>`;
    const close = text.indexOf(closing, nextGt + 1);
    if (close < 0) {
      unclosed.add(name);
      continue;
    }
    yield {
      name,
      attributes: text.slice(open + 1 + name.length, nextGt),
      content: text.slice(nextGt + 1, close),
      start: open,
      end: close + closing.length,
    };
    from = close + closing.length;
  }
}

/**
 * Parses a part of a Claude.ai `conversations.json`; for a member of projects (`hint.kind`), of
 * `projects.json` or a project file: each project's knowledge as a conversation of its own.
 *
 * @example A 2024 message with an artifact
 * ```ts
 * import { parseClaude } from "./claude.ts";
 * const conversation = {
 *   uuid: "c0000000-0000-4000-8000-000000000001", name: "Plot", created_at: "2024-10-01T10:00:00.000000Z",
 *   updated_at: "2024-10-01T10:01:00.000000Z", chat_messages: [
 *     { uuid: "m1", sender: "human", text: "plot it", created_at: "2024-10-01T10:00:00.000000Z" },
 *     { uuid: "m2", sender: "assistant", created_at: "2024-10-01T10:00:30.000000Z",
 *       text: 'Here: <antArtifact identifier="p" type="application/vnd.ant.code" title="plot.py">print(1)</antArtifact>' },
 *   ],
 * };
 * const out = parseClaude({
 *   bytes: new Uint8Array(0), firstLine: 1, carry: undefined, file: { path: "c.json", hint: {}, host: "h" },
 *   document: { root: "array", header: {}, recordsKey: "", records: [conversation], index: 0, first: true, last: true },
 * });
 * console.log(out.conversations[0].messages[1].content_type); // multipart
 * ```
 */
export function parseClaude(input: ParseInput<null, ClaudeHint>): ParseOutput<null> {
  const out = emptyOutput(null);
  const part = input.document;
  if (!part) {
    out.issues.push({ line: 1, message: "expected conversations.json records" });
    return out;
  }
  if (input.file.hint.kind === "projects") return parseProjects(part, input.file.host, out);
  part.records.forEach((record, i) => {
    const line = part.index + i + 1;
    const named = isObject(record) ? namedProject(record, input.file.hint) : NO_PROJECT;
    const conversation = isObject(record)
      ? conversationOf(record, named, input.file.host, out.issues, line)
      : null;
    if (!conversation) {
      if (!isObject(record)) {
        out.issues.push({ line, message: "conversation: expected an object; skipped" });
      }
      return;
    }
    out.messages += conversation.messages.length;
    out.conversations.push(conversation);
  });
  return out;
}

/**
 * A part of a member of projects: each project's knowledge as a conversation of its own. A
 * `projects.json` holds them as its records, a project file as its root object (whole, in the
 * last part).
 */
function parseProjects(
  part: DocumentPart,
  host: string,
  out: ParseOutput<null>,
): ParseOutput<null> {
  const records = part.root === "object" ? (part.last ? [part.header] : []) : part.records;
  records.forEach((record, i) => {
    const project = projectOf(record);
    if (!project) {
      out.issues.push({
        line: part.index + i + 1,
        message: "project: expected an object with a uuid; skipped",
      });
      return;
    }
    const knowledge = projectConversation(project, host);
    out.messages += knowledge.messages.length;
    out.conversations.push(knowledge);
  });
  return out;
}

/** The project a conversation names: its id, and what the export says of it. */
interface NamedProject {
  id: string;
  project?: ProjectSummary;
}

const NO_PROJECT: NamedProject = { id: "" };

function namedProject(c: Json, hint: ClaudeHint): NamedProject {
  // The projects are looked up as the export names them.
  const named = str(c.project_uuid) || (isObject(c.project) ? str(c.project.uuid) : "");
  const project = named && hint.projects ? ownEntry(hint.projects, named) : undefined;
  return { id: idOf(named), project };
}

/**
 * A message id as the export gives it when it is a UUID (Claude.ai's are), else one derived
 * from it within `scope` (its conversation or project). Message ids are global, and the store
 * keeps each once: the second conversation of an export made by hand or by another tool, whose
 * ids were `m1`, `m2`, …, was dropped as a copy of the first.
 */
function scopedId(v: unknown, ...scope: string[]): string {
  const id = idOf(v);
  return id === "" || isUuid(id) ? id : derivedUuid("claude", ...scope, "message", id);
}

/**
 * A project's knowledge as a conversation of its own, under the project's uuid (the
 * conversations of the project name it in `metadata.project_uuid`): its instructions and each
 * document, as system messages.
 */
function projectConversation(project: ClaudeProject, host: string): Conversation {
  const created = timestamp(project.created_at) || EPOCH;
  const message = (uuid: string, text: string, time: string, metadata: Json): Message => ({
    uuid,
    parent_uuid: "",
    round_index: 0,
    role: "system",
    content_type: "text",
    content: { type: "text", text },
    content_text: text,
    created_at: timestamp(time) || created,
    metadata,
  });
  const messages: Message[] = [];
  if (project.prompt_template) {
    messages.push(
      message(
        derivedUuid("claude", "project", project.uuid, "instructions"),
        project.prompt_template,
        created,
        {
          project_instructions: true,
        },
      ),
    );
  }
  (project.docs ?? []).forEach((doc, i) => {
    const uuid = scopedId(doc.uuid, "project", project.uuid) ||
      derivedUuid("claude", "project", project.uuid, "doc", i);
    messages.push(message(uuid, doc.content, doc.created_at ?? "", { filename: doc.filename }));
  });
  const metadata: Json = {
    host,
    kind: "project",
    message_count: messages.length,
    ...(project.description ? { description: project.description } : {}),
  };
  return {
    uuid: idOf(project.uuid),
    title: titleFrom(project.name),
    created_at: created,
    updated_at: timestamp(project.updated_at) || latestTime(messages, created),
    metadata,
    messages,
  };
}

function conversationOf(
  c: Json,
  named: NamedProject,
  host: string,
  issues: LineIssue[],
  line: number,
): Conversation | null {
  const id = idOf(c.uuid);
  if (!id || !Array.isArray(c.chat_messages)) {
    issues.push({ line, message: "conversation: expected `uuid` and `chat_messages`; skipped" });
    return null;
  }
  const created = timestamp(c.created_at) || EPOCH;
  const raw = c.chat_messages.filter(isObject).filter((m) => idOf(m.uuid));
  const rounds = new Map<string, number>();
  const messages: Message[] = [];
  let previous = "";
  for (const m of raw) {
    const uuid = scopedId(m.uuid, id);
    const declared = scopedId(m.parent_message_uuid, id);
    const parent = declared === SENTINEL_ROOT ? "" : declared || previous;
    const role: Message["role"] = str(m.sender) === "human" ? "user" : "assistant";
    const { blocks, text } = blocksOf(m);
    const mapped = fromBlocks(blocks);
    const prompt = role === "user" && blocks.some((b) => b.type === "text");
    const round = (rounds.get(parent) ?? 0) + (prompt ? 1 : 0);
    rounds.set(uuid, round);
    const metadata: Json = {};
    if (str(m.sender) && str(m.sender) !== "human" && str(m.sender) !== "assistant") {
      metadata.sender = m.sender;
    }
    messages.push({
      uuid,
      parent_uuid: parent,
      round_index: round,
      role,
      content_type: mapped.contentType,
      content: mapped.content,
      content_text: text || mapped.text,
      created_at: timestamp(m.created_at) || created,
      ...(Object.keys(metadata).length ? { metadata } : {}),
    });
    previous = uuid;
  }
  const metadata: Json = { host, message_count: messages.length };
  const summary = str(c.summary);
  if (summary) metadata.summary = summary;
  if (isObject(c.account) && str(c.account.uuid)) metadata.account_uuid = c.account.uuid;
  const { id: projectId, project } = named;
  if (projectId) metadata.project_uuid = projectId;
  if (project) {
    // The knowledge is a conversation of its own (a member of projects): a copy in each
    // conversation of the project was stored, and read by every query of the conversations'
    // metadata, as many times over.
    metadata.project_name = project.name;
    metadata.project = {
      uuid: projectId,
      name: project.name,
      ...(project.description ? { description: project.description } : {}),
      documents: project.documents,
    };
  }
  let title = titleFrom(c.name);
  let titleSource = "ai";
  if (!title && summary) {
    title = titleOf(summary);
    titleSource = "summary";
  }
  if (!title) {
    const first = messages.find((m) => m.role === "user" && m.content_text.trim());
    title = first ? titleOf(first.content_text) : "";
    titleSource = "first_prompt";
  }
  if (title) metadata.title_source = titleSource;
  const last = latestTime(messages, created);
  return {
    uuid: id,
    title,
    created_at: created,
    updated_at: timestamp(c.updated_at) || last,
    metadata,
    messages,
  };
}

/** A message's blocks (from `content[]`, else from its text and tags) and extra search text. */
function blocksOf(m: Json): { blocks: Json[]; text: string } {
  const blocks: Json[] = Array.isArray(m.content) && m.content.length > 0
    ? m.content.filter(isObject).map(blockOf)
    : textBlocks(str(m.text));
  const extra: string[] = [];
  for (const a of Array.isArray(m.attachments) ? m.attachments.filter(isObject) : []) {
    blocks.push({
      type: "attachment",
      file_name: str(a.file_name),
      file_type: str(a.file_type),
      file_size: a.file_size,
      extracted_content: str(a.extracted_content),
    });
    if (str(a.extracted_content)) extra.push(str(a.extracted_content));
  }
  for (const f of Array.isArray(m.files) ? m.files.filter(isObject) : []) {
    blocks.push({ type: "file", file_name: str(f.file_name), file_uuid: str(f.file_uuid) });
  }
  const text = [...blocks.map(blockText).filter(Boolean), ...extra].join("\n");
  return { blocks, text };
}

/** A 2025+ content block in the canonical shape. */
function blockOf(b: Json): Json {
  const times = { start_timestamp: b.start_timestamp, stop_timestamp: b.stop_timestamp };
  switch (str(b.type)) {
    case "text":
      return {
        type: "text",
        text: str(b.text),
        ...(Array.isArray(b.citations) && b.citations.length ? { citations: b.citations } : {}),
      };
    case "thinking":
      return {
        type: "thinking",
        thinking: str(b.thinking),
        ...(Array.isArray(b.summaries) ? { summaries: b.summaries } : {}),
        ...times,
      };
    case "tool_use":
      return { type: "tool_use", id: str(b.id), name: str(b.name), input: b.input ?? {}, ...times };
    case "tool_result": {
      const content = Array.isArray(b.content)
        ? b.content.filter(isObject).map((c) =>
          isObject(c) && c.type === "text" ? str(c.text) : JSON.stringify(c)
        ).join("\n")
        : b.content;
      return {
        type: "tool_result",
        tool_use_id: str(b.tool_use_id),
        name: str(b.name),
        content,
        is_error: b.is_error === true,
      };
    }
    default:
      return { type: str(b.type) || "unknown", raw: b };
  }
}

/** A 2024 message's text: `<antThinking>` as thinking, `<antArtifact>` as an artifact call. */
function textBlocks(text: string): Json[] {
  const blocks: Json[] = [];
  let at = 0;
  for (const tag of antTags(text)) {
    const before = text.slice(at, tag.start).trim();
    if (before) blocks.push({ type: "text", text: before });
    if (tag.name === "antThinking") blocks.push({ type: "thinking", thinking: tag.content.trim() });
    else {
      const attrs: Json = {};
      // From the start of a name only: a long word without `=` is scanned once.
      for (const a of tag.attributes.matchAll(/(?<!\w)(\w+)="([^"]*)"/g)) attrs[a[1]] = a[2];
      blocks.push({
        type: "tool_use",
        name: "artifacts",
        input: { command: "create", id: str(attrs.identifier), ...attrs, content: tag.content },
      });
    }
    at = tag.end;
  }
  const rest = text.slice(at).trim();
  if (rest || blocks.length === 0) blocks.push({ type: "text", text: rest });
  return blocks;
}
