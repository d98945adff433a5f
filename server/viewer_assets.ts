/**
 * The viewer's script and style, served from this server (the Content-Security-Policy allows
 * nothing inline). The script builds search results with DOM calls and text only: the snippet's
 * `<mark>`s are the one structure it makes from an answer.
 *
 * @module
 */

/**
 * The viewer's script: times in the viewer's zone, the hidden-messages toggle, instant search.
 *
 * @example It is plain JavaScript
 * ```ts
 * import { APP_JS } from "./viewer_assets.ts";
 * console.log(APP_JS.includes("innerHTML =")); // false
 * ```
 */
export const APP_JS = `"use strict";
function localTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const d = new Date(el.getAttribute("datetime"));
    if (!Number.isNaN(d.getTime())) el.textContent = d.toLocaleString();
  }
}
function decode(text) {
  const area = document.createElement("textarea");
  area.insertAdjacentHTML("afterbegin", text);
  return area.value;
}
function snippet(html) {
  const out = document.createElement("div");
  out.className = "snippet";
  html.split(/(<\\/?mark>)/).reduce((inMark, part) => {
    if (part === "<mark>") return true;
    if (part === "</mark>") return false;
    const node = document.createTextNode(decode(part));
    if (inMark) {
      const m = document.createElement("mark");
      m.appendChild(node);
      out.appendChild(m);
    } else out.appendChild(node);
    return inMark;
  }, false);
  return out;
}
function item(c) {
  const li = document.createElement("li");
  const a = document.createElement("a");
  a.href = "/c/" + encodeURIComponent(c.uuid);
  const badge = document.createElement("span");
  badge.className = "badge " + c.source_type;
  badge.textContent = c.source_type;
  const title = document.createElement("span");
  title.className = "title";
  title.textContent = c.title || "Untitled";
  a.append(badge, " ", title);
  const meta = document.createElement("div");
  meta.className = "meta";
  const project = c.metadata.project_name || c.metadata.cwd || "";
  meta.textContent = (project ? project + " · " : "") + c.message_count + " messages · " +
    new Date(c.updated_at).toLocaleString();
  li.append(a, meta);
  if (c.snippet) li.append(snippet(c.snippet));
  return li;
}
document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  const toggle = document.getElementById("show-hidden");
  if (toggle) toggle.addEventListener("change", () => document.body.classList.toggle("show-hidden", toggle.checked));
  const q = document.getElementById("q");
  const list = document.getElementById("list");
  if (!q || !list) return;
  const first = Array.from(list.children);
  let timer = 0;
  let asked = 0;
  q.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const words = q.value.trim();
      const mine = ++asked;
      if (!words) {
        list.replaceChildren(...first);
        return;
      }
      const response = await fetch("/api/v1/conversations?page_size=50&q=" + encodeURIComponent(words));
      if (mine !== asked || !response.ok) return;
      const body = await response.json();
      list.replaceChildren(...body.items.map(item));
      document.body.dataset.results = String(body.total);
    }, 150);
  });
});
`;

/**
 * The viewer's style: readable on a phone and on a desktop.
 *
 * @example Hidden messages are hidden until asked for
 * ```ts
 * import { APP_CSS } from "./viewer_assets.ts";
 * console.log(APP_CSS.includes(".hidden")); // true
 * ```
 */
export const APP_CSS =
  `:root { color-scheme: light dark; --fg: #1d1d1f; --muted: #6e6e73; --line: #d2d2d7; --bg2: #f5f5f7; }
@media (prefers-color-scheme: dark) { :root { --fg: #f5f5f7; --muted: #a1a1a6; --line: #3a3a3c; --bg2: #1c1c1e; } }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, sans-serif; color: var(--fg); margin: 0 auto; max-width: 52rem; padding: 0.75rem; overflow-wrap: anywhere; }
header { border-bottom: 1px solid var(--line); padding-bottom: 0.5rem; margin-bottom: 0.75rem; }
h1 { font-size: 1.3rem; margin: 0.3rem 0; }
input[type=search] { width: 100%; font-size: 1rem; padding: 0.5rem; border: 1px solid var(--line); border-radius: 0.4rem; }
ul#list { list-style: none; padding: 0; margin: 0; }
#list li { padding: 0.5rem 0; border-bottom: 1px solid var(--line); }
#list a { text-decoration: none; color: inherit; }
.title { font-weight: 600; }
.meta, .who, .total { color: var(--muted); font-size: 0.85rem; }
.snippet { font-size: 0.9rem; margin-top: 0.2rem; }
mark { background: #ffe28a; color: #1d1d1f; }
.badge { font-size: 0.75rem; padding: 0.05rem 0.4rem; border-radius: 0.3rem; background: var(--bg2); border: 1px solid var(--line); }
.badge.claude_code, .badge.claude { background: #f3d9c6; color: #5a2d0c; }
.badge.codex, .badge.gpt { background: #d1f0e3; color: #0b4a33; }
.badge.gemini, .badge.gemini_cli { background: #d8e3fb; color: #163a7a; }
.msg { padding: 0.5rem 0.75rem; margin: 0.5rem 0; border-radius: 0.5rem; border: 1px solid var(--line); }
.msg.user { background: var(--bg2); }
.msg.off-path { opacity: 0.75; border-style: dashed; }
.msg.sidechain { margin-left: 1.25rem; border-left: 3px solid var(--line); }
.msg.hidden { display: none; }
body.show-hidden .msg.hidden { display: block; opacity: 0.7; }
.branch { font-size: 0.75rem; border: 1px solid var(--line); border-radius: 0.3rem; padding: 0 0.3rem; }
pre { background: var(--bg2); padding: 0.5rem; border-radius: 0.4rem; overflow-x: auto; white-space: pre; }
code { font: 0.85rem/1.4 ui-monospace, Menlo, monospace; }
.k { color: #ad3da4; } .s { color: #c41a16; } .c { color: #5d6c79; font-style: italic; } .n { color: #1c00cf; }
details { margin: 0.3rem 0; } summary { cursor: pointer; color: var(--muted); }
.toggle { font-size: 0.85rem; color: var(--muted); display: block; margin-top: 0.3rem; }
`;
