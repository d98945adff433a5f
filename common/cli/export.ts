/**
 * `export`: the conversations of the embedded store (every one, or those a search and filters
 * select) as Markdown files, one per conversation with front matter, or as JSON Lines of the
 * canonical schema. The store is opened read-only, beside running workers.
 *
 * @module
 */
import { join } from "node:path";
import { sha256Hex } from "../hash.ts";
import {
  ConversationStore,
  type StoredConversation,
  type StoredMessage,
} from "../../store/store.ts";
import { type ConversationFilter, SearchIndex, timeBound } from "../../store/search.ts";
import { stripTags } from "../../parsers/html.ts";

/** What to export and where. */
export interface ExportOptions {
  /** The store's file. */
  storePath: string;
  outDir: string;
  format: "md" | "jsonl";
  filter: ConversationFilter;
  /** A search: only conversations that match it. */
  q?: string;
}

const PAGE = 500;

function yamlValue(value: unknown): string {
  return JSON.stringify(value ?? "");
}

const encoder = new TextEncoder();

function slug(title: string): string {
  const s = [
    ...title.toLowerCase().normalize("NFKD").replace(/[^\p{L}\p{N}]+/gu, "-")
      .replace(/^-+|-+$/g, "").slice(0, 60),
  ];
  // At most 120 bytes: letters of four bytes (CJK Extension B) would pass the name's limit.
  while (encoder.encode(s.join("")).length > 120) s.pop();
  return s.join("") || "untitled";
}

/**
 * A conversation's Markdown file name: date, title and id, within the 255 bytes a file name may
 * have. The whole id keeps names apart (ChatGPT's ids share their first digits, the creation
 * time); an id too long for the name (up to 1,024 characters pass the schema) is shortened with
 * a digest of it. One such id failed the whole export.
 */
function fileNameOf(c: { created_at: string; title: string; uuid: string }): string {
  const id = encoder.encode(c.uuid).length <= 80
    ? c.uuid
    : `${[...c.uuid].slice(0, 16).join("")}-${sha256Hex(c.uuid).slice(0, 32)}`;
  return `${c.created_at.slice(0, 10)}-${slug(c.title)}-${id}.md`.replace(/[/\\]/g, "-");
}

/** A fenced block that no backtick run inside `text` can close. */
function fence(text: string, language = ""): string {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const ticks = "`".repeat(longest + 1);
  return `${ticks}${language}\n${text}\n${ticks}`;
}

function details(summary: string, body: string): string {
  return `<details><summary>${summary.replace(/[<>&]/g, "")}</summary>\n\n${body}\n\n</details>`;
}

/** One content block as Markdown. */
function blockMarkdown(block: Record<string, unknown>): string {
  const type = String(block.type ?? "");
  if (type === "text") return String(block.text ?? "");
  if (type === "thinking") return details("Thinking", String(block.thinking ?? ""));
  if (type === "tool_use") {
    return details(
      `Tool call: ${String(block.name ?? "")}`,
      fence(JSON.stringify(block.input ?? {}, null, 2), "json"),
    );
  }
  if (type === "tool_result") {
    const content = typeof block.content === "string"
      ? block.content
      : JSON.stringify(block.content ?? "", null, 2);
    return details(`Tool result${block.name ? `: ${block.name}` : ""}`, fence(content));
  }
  if (type === "multipart" && Array.isArray(block.parts)) {
    return block.parts.map((p) => blockMarkdown(p as Record<string, unknown>)).join("\n\n");
  }
  if (type === "html") return stripTags(String(block.html ?? ""));
  return details(type || "content", fence(JSON.stringify(block, null, 2), "json"));
}

/**
 * A conversation as Markdown: front matter (source, project, model, times, usage), then each
 * message under a heading with its role and time; thinking, tool calls and results folded.
 *
 * @example A short conversation
 * ```ts
 * import { markdownOf } from "./export.ts";
 * const c = { uuid: "c1", source_type: "codex", title: "Hi", created_at: "2026-01-01T00:00:00Z",
 *   updated_at: "2026-01-01T00:00:00Z", metadata: {}, message_count: 1 };
 * const m = { uuid: "m1", conversation_uuid: "c1", parent_uuid: "", round_index: 1, role: "user" as const,
 *   content_type: "text" as const, content: { type: "text", text: "hello" }, content_text: "hello",
 *   created_at: "2026-01-01T00:00:00Z" };
 * console.log(markdownOf(c, [m]).includes("## User")); // true
 * ```
 */
export function markdownOf(c: StoredConversation, messages: readonly StoredMessage[]): string {
  const meta = c.metadata;
  const models = [...new Set(messages.map((m) => m.model).filter(Boolean))];
  const front = [
    "---",
    `title: ${yamlValue(c.title)}`,
    `uuid: ${yamlValue(c.uuid)}`,
    `source: ${c.source_type}`,
    ...(meta.project_name ? [`project: ${yamlValue(meta.project_name)}`] : []),
    ...(meta.cwd ? [`cwd: ${yamlValue(meta.cwd)}`] : []),
    ...(models.length ? [`model: ${yamlValue(models.join(", "))}`] : []),
    `created: ${c.created_at}`,
    `updated: ${c.updated_at}`,
    `messages: ${messages.length}`,
    ...(meta.usage ? [`usage: ${JSON.stringify(meta.usage)}`] : []),
    "---",
  ];
  const body = messages.map((m) => {
    const role = m.role[0].toUpperCase() + m.role.slice(1);
    const hidden = m.metadata?.hidden ? " (hidden)" : "";
    const heading = `## ${role}${m.model ? ` (${m.model})` : ""}${hidden} · ${m.created_at}`;
    return `${heading}\n\n${blockMarkdown(m.content as Record<string, unknown>)}`;
  });
  return `${front.join("\n")}\n\n# ${c.title || "Untitled"}\n\n${body.join("\n\n")}\n`;
}

/**
 * Writes the export; returns how many conversations and where.
 *
 * @example An empty store exports nothing
 * ```ts
 * import { exportConversations } from "./export.ts";
 * import { ConversationStore } from "../../store/store.ts";
 * const dir = await Deno.makeTempDir();
 * new ConversationStore(`${dir}/c.db`).close();
 * console.log((await exportConversations({ storePath: `${dir}/c.db`, outDir: `${dir}/out`, format: "md", filter: {} })).count); // 0
 * ```
 */
export async function exportConversations(
  o: ExportOptions,
): Promise<{ count: number; path: string }> {
  const store = new ConversationStore(o.storePath, { readOnly: true });
  try {
    await Deno.mkdir(o.outDir, { recursive: true });
    let uuids: string[];
    if (o.q) {
      const search = new SearchIndex(o.storePath);
      try {
        uuids = search.search(o.q, o.filter, 1_000_000).map((h) => h.uuid);
      } finally {
        search.close();
      }
    } else {
      uuids = [];
      for (let page = 1;; page++) {
        const got = store.listConversations(o.filter, page, PAGE);
        uuids.push(...got.items.map((c) => c.uuid));
        if (got.items.length < PAGE) break;
      }
    }
    const jsonl = join(o.outDir, "conversations.jsonl");
    const file = o.format === "jsonl"
      ? await Deno.open(jsonl, { write: true, create: true, truncate: true })
      : undefined;
    try {
      for (const uuid of uuids) {
        const c = store.conversation(uuid);
        if (!c) continue;
        const messages = store.allMessages(uuid);
        if (file) {
          const { message_count: _, ...conversation } = c;
          const canonical = {
            ...conversation,
            messages: messages.map(({ conversation_uuid: _c, ...m }) => m),
          };
          await file.write(encoder.encode(`${JSON.stringify(canonical)}\n`));
        } else {
          await Deno.writeTextFile(join(o.outDir, fileNameOf(c)), markdownOf(c, messages));
        }
      }
    } finally {
      file?.close();
    }
    return { count: uuids.length, path: file ? jsonl : o.outDir };
  } finally {
    store.close();
  }
}

/** The flags of `export`, as given. */
export type ExportFlags = {
  out?: string;
  format?: string;
  q?: string;
  project?: string;
  from?: string;
  to?: string;
};

/**
 * The flags of `export` for `parseArgs`.
 *
 * @example Parse them
 * ```ts
 * import { parseArgs } from "node:util";
 * import { EXPORT_FLAGS } from "./export.ts";
 * console.log(parseArgs({ args: ["--q", "tax"], options: EXPORT_FLAGS }).values.q); // tax
 * ```
 */
export const EXPORT_FLAGS = {
  out: { type: "string" },
  format: { type: "string" },
  q: { type: "string" },
  project: { type: "string" },
  from: { type: "string" },
  to: { type: "string" },
} as const;

/**
 * The export flags, checked; throws an `Error` naming the flag.
 *
 * @example Markdown of one project since November
 * ```ts
 * import { exportOptionsOf } from "./export.ts";
 * const o = exportOptionsOf({ project: "shop", from: "2026-11-01" }, "/s/conversations.db");
 * console.log(o.format, o.filter.project); // md shop
 * ```
 */
export function exportOptionsOf(
  flags: ExportFlags,
  storePath: string,
  source?: string,
): ExportOptions {
  const format = flags.format ?? "md";
  if (format !== "md" && format !== "jsonl") throw new Error(`--format: expected md or jsonl`);
  const filter: ConversationFilter = {};
  if (source) filter.source = source;
  if (flags.project) filter.project = flags.project;
  for (const key of ["from", "to"] as const) {
    if (flags[key] === undefined) continue;
    const ms = timeBound(flags[key]!, key === "to");
    if (ms === undefined) throw new Error(`--${key}: expected a date (2026-11-29) or a time`);
    filter[key === "from" ? "fromMs" : "toMs"] = ms;
  }
  return {
    storePath,
    outDir: flags.out ?? "ai-sync-export",
    format,
    filter,
    ...(flags.q ? { q: flags.q } : {}),
  };
}
