/**
 * Markdown to HTML for the viewer, safe by construction: every character of the input is escaped
 * first, and only the structures produced here become tags (paragraphs, fenced and inline code,
 * emphasis, links to http(s) only). No HTML from content ever reaches the page as HTML. Code gets
 * a small highlighter (strings, comments, numbers, keywords) that works on escaped text.
 *
 * @module
 */

/**
 * `text` with `& < > " '` escaped.
 *
 * @example Escape a tag
 * ```ts
 * import { escapeHtml } from "./markdown.ts";
 * console.log(escapeHtml("<b>")); // &lt;b&gt;
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) =>
      c === "&"
        ? "&amp;"
        : c === "<"
        ? "&lt;"
        : c === ">"
        ? "&gt;"
        : c === '"'
        ? "&quot;"
        : "&#39;",
  );
}

const KEYWORDS = new Set(
  ("const let var function return if else for while do switch case break continue class new " +
    "import export from async await try catch finally throw def elif lambda pass yield in of " +
    "fn pub mut impl struct enum match use true false null None True False nil self this").split(
      " ",
    ),
);

/**
 * Code as highlighted HTML: each token escaped, strings, comments, numbers and keywords in spans.
 *
 * @example A line of code
 * ```ts
 * import { highlight } from "./markdown.ts";
 * console.log(highlight('const a = "<x>"; // hi'));
 * ```
 */
export function highlight(code: string): string {
  // A comment or string left open runs to the end of its line (or of the code), as an editor
  // shows it; were it not a token, the scan to its end would be repeated from every quote
  // after it (a line of 40,000 `"\\` took five seconds).
  const token =
    /(\/\/[^\n]*|#[^\n]*|\/\*[\s\S]*?(?:\*\/|$))|("(?:[^"\\\n]|\\[^\n]?)*"?|'(?:[^'\\\n]|\\[^\n]?)*'?|`(?:[^`\\]|\\[\s\S]?)*`?)|(\b\d+(?:\.\d+)?\b)|([A-Za-z_]\w*)/g;
  let out = "";
  let at = 0;
  for (const m of code.matchAll(token)) {
    out += escapeHtml(code.slice(at, m.index));
    const [text, comment, string, number, word] = m;
    const cls = comment ? "c" : string ? "s" : number ? "n" : word && KEYWORDS.has(word) ? "k" : "";
    out += cls ? `<span class="${cls}">${escapeHtml(text)}</span>` : escapeHtml(text);
    at = m.index + text.length;
  }
  return out + escapeHtml(code.slice(at));
}

/** Inline Markdown on one paragraph's text: code, bold, italic, http(s) links. */
function inline(text: string): string {
  const parts = text.split(/(`[^`\n]+`)/);
  return parts.map((part) => {
    if (part.length > 2 && part.startsWith("`") && part.endsWith("`")) {
      return `<code>${escapeHtml(part.slice(1, -1))}</code>`;
    }
    let html = escapeHtml(part);
    html = html.replace(/\*\*([^*\n]+)\*\*/g, "<strong>$1</strong>");
    html = html.replace(/(^|[^*\w])\*([^*\n]+)\*(?!\w)/g, "$1<em>$2</em>");
    // The address was escaped with the rest: `&quot;` cannot end the attribute.
    html = html.replace(
      // A label holds no `[`: each is then scanned once, not again from every `[` inside it.
      /\[([^[\]\n]+)\]\((https?:\/\/[^\s)]+)\)/g,
      '<a href="$2" rel="noopener noreferrer nofollow" target="_blank">$1</a>',
    );
    return html;
  }).join("");
}

/**
 * Markdown as safe HTML: fenced code blocks (highlighted), paragraphs with line breaks, and the
 * inline forms above. Anything else shows as the text it is.
 *
 * @example Script stays text
 * ```ts
 * import { markdownToHtml } from "./markdown.ts";
 * console.log(markdownToHtml("<script>alert(1)</script> **hi**")); // <p>&lt;script&gt;alert(1)&lt;/script&gt; <strong>hi</strong></p>
 * ```
 */
export function markdownToHtml(markdown: string): string {
  const out: string[] = [];
  const lines = markdown.split("\n");
  let paragraph: string[] = [];
  const flush = () => {
    if (paragraph.length) out.push(`<p>${paragraph.map(inline).join("<br>")}</p>`);
    paragraph = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const fence = lines[i].match(/^\s*(`{3,}|~{3,})\s*([\w+#.-]*)/);
    if (fence) {
      flush();
      const code: string[] = [];
      let j = i + 1;
      while (j < lines.length && !lines[j].trim().startsWith(fence[1])) code.push(lines[j++]);
      const language = fence[2] ? ` data-lang="${escapeHtml(fence[2])}"` : "";
      out.push(`<pre${language}><code>${highlight(code.join("\n"))}</code></pre>`);
      i = j;
    } else if (lines[i].trim() === "") flush();
    else paragraph.push(lines[i]);
  }
  flush();
  return out.join("\n");
}
