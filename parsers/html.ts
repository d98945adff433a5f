/**
 * Small, bounded helpers for the HTML that exports hold: the text of a fragment, entities
 * decoded, and where a JSON value embedded in a page ends. No DOM: these pages are read, never
 * rendered, and every loop here is linear in the input.
 *
 * @module
 */

const ENTITIES: Record<string, string> = {
  amp: "&",
  lt: "<",
  gt: ">",
  quot: '"',
  apos: "'",
  nbsp: " ",
  "#39": "'",
};

/**
 * `text` with HTML entities decoded (named ones that pages use, and numeric ones).
 *
 * @example Decode a link
 * ```ts
 * import { decodeEntities } from "./html.ts";
 * console.log(decodeEntities("a &amp; b &#x3C;3")); // a & b <3
 * ```
 */
export function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z0-9]{2,8});/gi, (all, name: string) => {
    const lower = name.toLowerCase();
    if (lower.startsWith("#x") || lower.startsWith("#") && lower !== "#39") {
      const code = lower.startsWith("#x")
        ? parseInt(lower.slice(2), 16)
        : parseInt(lower.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : all;
    }
    return ENTITIES[lower] ?? all;
  });
}

/**
 * `html` with its tags replaced by `replacement`. A tag runs from `<` to the next `>` with no `<`
 * between: a `<` that no `>` closes is text. Linear in the input, however many `<` it holds
 * (`/<[^>]*>/` scanned to the end again from every unclosed `<`).
 *
 * @example Tags out, text kept
 * ```ts
 * import { stripTags } from "./html.ts";
 * console.log(stripTags('<a href="x">link</a> if 1 < 2')); // link if 1 < 2
 * ```
 */
export function stripTags(html: string, replacement = ""): string {
  return html.replace(/<[^<>]*>/g, replacement);
}

/**
 * The plain text of an HTML fragment: tags dropped (line breaks for block ends and `<br>`),
 * scripts and styles left out (an unclosed one to the end, as a browser reads it), entities
 * decoded, runs of blank lines folded. Linear in the input, like every pattern here: a pattern
 * that can fail after a long scan must not be tried again from each position inside it.
 *
 * @example A response
 * ```ts
 * import { htmlToText } from "./html.ts";
 * console.log(htmlToText("<p>Hi &amp; bye</p><p>two</p>")); // "Hi & bye\ntwo"
 * ```
 */
export function htmlToText(html: string): string {
  const text = stripTags(
    html
      .replace(/<(script|style)\b[^<>]*>[\s\S]*?(?:<\/\1\s*>|$)/gi, "")
      .replace(/<br\s*\/?>|<\/(p|div|li|h[1-6]|tr|pre|blockquote)\s*>/gi, "\n"),
  );
  // Spaces before a line break: matched only from the start of a run of them.
  return decodeEntities(text).replace(/(?<![ \t])[ \t]+\n/g, "\n").replace(/\n{3,}/g, "\n\n")
    .trim();
}

/**
 * The index just after the JSON value that starts at `start` in `text` (strings and escapes
 * skipped, brackets counted without recursion), or `text.length` if it does not end.
 *
 * @example An array followed by code
 * ```ts
 * import { endOfJsonValue } from "./html.ts";
 * const page = 'var jsonData = [{"a": "]"}];\nrender();';
 * const start = page.indexOf("[");
 * console.log(page.slice(start, endOfJsonValue(page, start))); // [{"a": "]"}]
 * ```
 */
export function endOfJsonValue(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) depth++;
    else if (c === 0x5d || c === 0x7d) {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return text.length;
}
