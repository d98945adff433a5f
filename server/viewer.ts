/**
 * The viewer: server-rendered pages over the store (a list with a search box, one page per
 * conversation) and a little plain JavaScript (instant search, times in the viewer's zone, the
 * hidden-messages toggle). No build step, no external request; every page is sent with a strict
 * Content-Security-Policy (scripts and styles only from this server, none inline), and content
 * reaches the page only escaped (`markdown.ts`).
 *
 * @module
 */
import type { ConversationStore, StoredConversation, StoredMessage } from "../store/store.ts";
import { escapeHtml, markdownToHtml } from "./markdown.ts";
import { APP_CSS, APP_JS } from "./viewer_assets.ts";
import { markdownOf } from "../common/cli/export.ts";
import { stripTags } from "../parsers/html.ts";

/** The policy every page is sent with. */
export const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
  "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

function page(title: string, body: string): Response {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · ai-sync</title><link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script></head><body>${body}</body></html>`;
  return new Response(html, {
    headers: {
      "content-type": "text/html; charset=utf-8",
      "content-security-policy": CSP,
      "x-content-type-options": "nosniff",
      "referrer-policy": "no-referrer",
    },
  });
}

function time(iso: string): string {
  return `<time datetime="${escapeHtml(iso)}">${
    escapeHtml(iso.replace("T", " ").slice(0, 16))
  } UTC</time>`;
}

function tokens(c: StoredConversation): number {
  const usage = c.metadata.usage as { total?: number } | undefined;
  return typeof usage?.total === "number" ? usage.total : 0;
}

/** One row of the list (the same markup app.js builds for search results). */
function row(c: StoredConversation & { snippet?: string }): string {
  const project = String(c.metadata.project_name ?? c.metadata.cwd ?? "");
  return `<li><a href="/c/${encodeURIComponent(c.uuid)}"><span class="badge ${
    escapeHtml(c.source_type)
  }">` +
    `${escapeHtml(c.source_type)}</span> <span class="title">${
      escapeHtml(c.title || "Untitled")
    }</span></a>` +
    `<div class="meta">${project ? `${escapeHtml(project)} · ` : ""}${c.message_count} messages` +
    `${tokens(c) ? ` · ${tokens(c).toLocaleString("en-US")} tokens` : ""} · ${
      time(c.updated_at)
    }</div></li>`;
}

function listPage(store: ConversationStore, url: URL): Response {
  const pageNo = Math.max(1, Number(url.searchParams.get("page")) || 1);
  const list = store.listConversations({}, pageNo, 50);
  const next = pageNo * 50 < list.total ? `<a href="/?page=${pageNo + 1}">older →</a>` : "";
  return page(
    "Conversations",
    `<header><h1>Conversations</h1><form action="/" method="get" role="search">` +
      `<input id="q" name="q" type="search" placeholder="Search titles and messages" autocomplete="off">` +
      `</form></header><ul id="list">${list.items.map(row).join("")}</ul>` +
      `<p class="total">${list.total} conversations ${next}</p>`,
  );
}

/** One content block as HTML: text as Markdown; thinking and tools folded. */
function block(b: Record<string, unknown>): string {
  const type = String(b.type ?? "");
  const fold = (summary: string, inner: string) =>
    `<details class="${escapeHtml(type)}"><summary>${
      escapeHtml(summary)
    }</summary>${inner}</details>`;
  if (type === "text") return markdownToHtml(String(b.text ?? ""));
  if (type === "thinking") return fold("Thinking", markdownToHtml(String(b.thinking ?? "")));
  if (type === "tool_use") {
    return fold(
      `Tool call: ${b.name ?? ""}`,
      `<pre><code>${escapeHtml(JSON.stringify(b.input ?? {}, null, 2))}</code></pre>`,
    );
  }
  if (type === "tool_result") {
    const text = typeof b.content === "string"
      ? b.content
      : JSON.stringify(b.content ?? "", null, 2);
    return fold(
      `Tool result${b.name ? `: ${b.name}` : ""}`,
      `<pre><code>${escapeHtml(text)}</code></pre>`,
    );
  }
  if (type === "multipart" && Array.isArray(b.parts)) {
    return b.parts.map((p) => block(p as Record<string, unknown>)).join("");
  }
  if (type === "html") return markdownToHtml(stripTags(String(b.html ?? "")));
  return fold(
    type || "content",
    `<pre><code>${escapeHtml(JSON.stringify(b, null, 2))}</code></pre>`,
  );
}

function message(
  m: StoredMessage,
  branches: Map<string, string>,
  agents: Map<string, string>,
): string {
  const hidden = Boolean(m.metadata?.hidden || m.metadata?.user_system_message) ||
    (m.role === "system" && m.metadata?.main_line === false);
  const branch = branches.has(m.uuid) ? `<span class="branch">${branches.get(m.uuid)}</span>` : "";
  // A sub-agent's messages are set in; where its thread leaves its parent's, the fork is said.
  const agent = String(m.metadata?.agent_type ?? m.metadata?.agent_id ?? "");
  const sidechain = Boolean(m.metadata?.is_sidechain || m.metadata?.agent_id);
  const forks = sidechain && agents.get(m.parent_uuid) !== String(m.metadata?.agent_id ?? "");
  const side = sidechain
    ? `<span class="branch">${forks ? "sub-agent starts" : "sub-agent"}${
      agent ? `: ${escapeHtml(agent)}` : ""
    }</span>`
    : "";
  const off = m.metadata?.main_line === false ? " off-path" : "";
  const cls = `msg ${escapeHtml(m.role)}${hidden ? " hidden" : ""}${off}${
    sidechain ? " sidechain" : ""
  }`;
  return `<article class="${cls}" id="m-${escapeHtml(m.uuid)}">` +
    `<div class="who">${escapeHtml(m.role)}${m.model ? ` · ${escapeHtml(m.model)}` : ""} · ${
      time(m.created_at)
    } ${branch}${side}</div>` +
    `${block(m.content as Record<string, unknown>)}</article>`;
}

function conversationPage(store: ConversationStore, uuid: string, format: string): Response {
  const c = store.conversation(uuid);
  if (!c) {
    return page(
      "Not found",
      `<p>No conversation ${escapeHtml(uuid)}. <a href="/">All conversations</a></p>`,
    );
  }
  const messages = store.allMessages(uuid);
  if (format === "md") {
    return new Response(markdownOf(c, messages), {
      headers: {
        "content-type": "text/markdown; charset=utf-8",
        "content-disposition": `attachment; filename="${c.uuid.replace(/[^\w.-]/g, "_")}.md"`,
      },
    });
  }
  if (format === "jsonl") {
    const { message_count: _, ...conversation } = c;
    const canonical = {
      ...conversation,
      messages: messages.map(({ conversation_uuid: _c, ...m }) => m),
    };
    return new Response(`${JSON.stringify(canonical)}\n`, {
      headers: {
        "content-type": "application/x-ndjson",
        "content-disposition": `attachment; filename="${c.uuid.replace(/[^\w.-]/g, "_")}.jsonl"`,
      },
    });
  }
  // Messages under one parent are its branches (roots are not); built in one pass, since a
  // conversation of many messages under one parent made copying the list each time quadratic.
  const siblings = Map.groupBy(messages.filter((m) => m.parent_uuid !== ""), (m) => m.parent_uuid);
  const branches = new Map<string, string>();
  for (const twins of siblings.values()) {
    if (twins.length > 1) {
      twins.forEach((m, i) => branches.set(m.uuid, `branch ${i + 1} of ${twins.length}`));
    }
  }
  const agents = new Map(messages.map((m) => [m.uuid, String(m.metadata?.agent_id ?? "")]));
  const id = encodeURIComponent(c.uuid);
  const project = String(c.metadata.project_name ?? c.metadata.cwd ?? "");
  return page(
    c.title || "Untitled",
    `<header><a href="/">← all</a><h1>${escapeHtml(c.title || "Untitled")}</h1>` +
      `<div class="meta"><span class="badge ${escapeHtml(c.source_type)}">${
        escapeHtml(c.source_type)
      }</span> ` +
      `${project ? `${escapeHtml(project)} · ` : ""}${messages.length} messages · ${
        time(c.created_at)
      }` +
      ` · <a href="/c/${id}.md">Markdown</a> · <a href="/c/${id}.jsonl">JSON Lines</a></div>` +
      `<label class="toggle"><input type="checkbox" id="show-hidden"> show hidden system messages</label>` +
      `</header><main>${messages.map((m) => message(m, branches, agents)).join("")}</main>`,
  );
}

/**
 * Answers a viewer path (`/`, `/c/:uuid`, its `.md` and `.jsonl`, the assets), or `undefined`.
 *
 * @example The list page
 * ```ts
 * import { ConversationStore } from "../store/store.ts";
 * import { viewerRoute } from "./viewer.ts";
 * const response = viewerRoute(new URL("http://x/"), new ConversationStore(":memory:"));
 * console.log(response?.headers.get("content-security-policy")?.startsWith("default-src 'none'")); // true
 * ```
 */
export function viewerRoute(url: URL, store: ConversationStore): Response | undefined {
  if (url.pathname === "/") return listPage(store, url);
  if (url.pathname === "/app.js") {
    return new Response(APP_JS, { headers: { "content-type": "text/javascript; charset=utf-8" } });
  }
  if (url.pathname === "/app.css") {
    return new Response(APP_CSS, { headers: { "content-type": "text/css; charset=utf-8" } });
  }
  const match = url.pathname.match(/^\/c\/([^/]+?)(?:\.(md|jsonl))?$/);
  if (!match) return undefined;
  let uuid: string;
  try {
    uuid = decodeURIComponent(match[1]);
  } catch {
    return undefined;
  }
  return conversationPage(store, uuid, match[2] ?? "");
}
