/**
 * What an email says about a ChatGPT export: whether it is the "export ready" email, and its
 * download link. The MIME structure, transfer encodings (quoted-printable, base64) and charsets
 * are `postal-mime`'s; the rules (sender, subject, the link's text or address) come from the
 * config, so that a changed template needs a config line, not a release.
 *
 * @module
 */
import PostalMime from "postal-mime";
import { stripTags } from "../../parsers/html.ts";

/** How an export email is told apart, from `openai.email`. */
export interface ExportEmailRules {
  /** The sender's address (case-insensitive). */
  sender: string;
  /** A regular expression the subject matches (case-insensitive). */
  subjectPattern: string;
  /** A regular expression the link's text matches (case-insensitive). */
  linkTextPattern: string;
  /** A regular expression the link's address matches. */
  linkPattern: string;
}

/** An email as far as the intake cares. */
export interface ExportEmail {
  messageId: string;
  from: string;
  subject: string;
  /** When it was sent (RFC 3339), or `""`. */
  date: string;
  /** The download link, when it is an export email. */
  link?: string;
  /** Why it is not, when it is not. */
  notExport?: string;
}

/** Folded header lines, and MIME boundary lines, an export email could hold; more is refused. */
const MAX_FOLDED_LINES = 1000;
const MAX_BOUNDARY_LINES = 1000;

/**
 * Why `raw` is refused before its MIME structure is parsed, or `undefined`. `postal-mime` takes
 * time to the square of a header's folded lines and of an email's parts (measured: 200,000
 * folded lines, 0.8 MB, took 35 s; 50,000 parts, 1.8 MB, 90 s), and an email's sender is
 * whoever writes that address into From. An export email has a few of each. One pass over the
 * bytes: a header runs from the start, or from a line that begins with `--` (a boundary), to the
 * next empty line.
 *
 * @example A plain email passes
 * ```ts
 * import { emailShapeProblem } from "./export_email.ts";
 * const raw = new TextEncoder().encode("From: a@b\r\nSubject: x\r\n  folded\r\n\r\nbody");
 * console.log(emailShapeProblem(raw)); // undefined
 * ```
 */
export function emailShapeProblem(raw: Uint8Array): string | undefined {
  let folded = 0;
  let boundaries = 0;
  let inHeader = true;
  for (let start = 0; start < raw.length;) {
    let end = raw.indexOf(10, start);
    if (end < 0) end = raw.length;
    const first = raw[start];
    if (end === start || (end === start + 1 && first === 13)) inHeader = false;
    else if (first === 45 && raw[start + 1] === 45) {
      boundaries++;
      inHeader = true;
    } else if (inHeader && (first === 32 || first === 9)) folded++;
    start = end + 1;
  }
  if (folded > MAX_FOLDED_LINES) {
    return `${folded} folded header lines (an export email has a few; at most ${MAX_FOLDED_LINES} are read)`;
  }
  if (boundaries > MAX_BOUNDARY_LINES) {
    return `${boundaries} MIME boundary lines (an export email has a few; at most ${MAX_BOUNDARY_LINES} are read)`;
  }
  return undefined;
}

const ENTITY = /&(amp|lt|gt|quot|#39|#x[0-9a-f]+|#[0-9]+);/gi;
const NAMED: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'" };

function decodeAttribute(value: string): string {
  return value.replace(ENTITY, (all, name: string) => {
    const lower = name.toLowerCase();
    if (NAMED[lower]) return NAMED[lower];
    const code = lower.startsWith("#x") ? parseInt(lower.slice(2), 16) : parseInt(lower.slice(1));
    return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : all;
  });
}

function textOf(html: string): string {
  return decodeAttribute(stripTags(html, " ")).replace(/\s+/g, " ").trim();
}

/**
 * The anchors of an HTML body with an address, in order: the address as written and the HTML
 * inside. Linear in the body, however hostile (an email is anyone's to send): no pattern is
 * tried again over text it scanned before, and an anchor no `</a>` closes ends the search, since
 * none after it can be closed either.
 */
function anchorsOf(html: string): { href: string; html: string }[] {
  const anchors: { href: string; html: string }[] = [];
  const lower = html.toLowerCase();
  let after = 0;
  for (const open of html.matchAll(/<a\b[^<>]*>/gi)) {
    if (open.index < after) continue; // Inside the anchor before: part of its text.
    const start = open.index + open[0].length;
    const close = lower.indexOf("</a>", start);
    if (close < 0) break;
    after = close + "</a>".length;
    const href = open[0].match(/\bhref\s*=\s*(?:"([^"]*)"|'([^']*)')/i);
    if (href) anchors.push({ href: href[1] ?? href[2], html: html.slice(start, close) });
  }
  return anchors;
}

/**
 * The download link of an HTML body: the first anchor whose text matches the link text (a
 * button), else the first whose address matches the link pattern.
 */
function htmlLink(html: string, rules: ExportEmailRules): string | undefined {
  const text = new RegExp(rules.linkTextPattern, "i");
  const address = new RegExp(rules.linkPattern);
  const anchors = anchorsOf(html).map((a) => ({
    href: decodeAttribute(a.href).trim(),
    text: textOf(a.html),
  }))
    .filter((a) => address.test(a.href));
  return (anchors.find((a) => text.test(a.text)) ?? anchors[0])?.href;
}

/** The download link of a text body: the address on the line of the link text, or after it. */
function textLink(text: string, rules: ExportEmailRules): string | undefined {
  const address = new RegExp(rules.linkPattern);
  const urls = [...text.matchAll(/https?:\/\/[^\s<>"')\]]+/g)].map((m) => ({
    url: m[0],
    at: m.index,
  })).filter((u) => address.test(u.url));
  const label = text.search(new RegExp(rules.linkTextPattern, "i"));
  return (label >= 0 ? urls.find((u) => u.at > label) : undefined)?.url ?? urls[0]?.url;
}

/**
 * Reads an email (its raw source) and says whether it is an export email and where its link
 * points.
 *
 * @example An export email
 * ```ts
 * import { readExportEmail } from "./export_email.ts";
 * const raw = "From: ChatGPT <noreply@tm.openai.com>\r\nSubject: Your data export is ready\r\n" +
 *   "Message-ID: <m1@openai.com>\r\nContent-Type: text/html\r\n\r\n" +
 *   '<a href="https://chatgpt.com/backend-api/download?id=1&amp;sig=2">Download data export</a>';
 * const email = await readExportEmail(new TextEncoder().encode(raw), {
 *   sender: "noreply@tm.openai.com", subjectPattern: "export", linkTextPattern: "download data export",
 *   linkPattern: "^https://",
 * });
 * console.log(email.link); // https://chatgpt.com/backend-api/download?id=1&sig=2
 * ```
 */
export async function readExportEmail(
  raw: Uint8Array,
  rules: ExportEmailRules,
): Promise<ExportEmail> {
  const refused = (why: string) => ({
    messageId: "",
    from: "",
    subject: "",
    date: "",
    notExport: why,
  });
  const shape = emailShapeProblem(raw);
  if (shape) return refused(shape);
  let parsed: Awaited<ReturnType<typeof PostalMime.parse>>;
  try {
    parsed = await PostalMime.parse(raw);
  } catch (error) {
    // Thrown for MIME nested too deep or a header too large: this email is not an export email,
    // and the ones after it in the mailbox are still read.
    return refused(`not a readable email: ${(error as Error).message}`);
  }
  const from = (parsed.from?.address ?? "").toLowerCase();
  const email: ExportEmail = {
    messageId: parsed.messageId ?? "",
    from,
    subject: parsed.subject ?? "",
    date: parsed.date && !Number.isNaN(Date.parse(parsed.date))
      ? new Date(parsed.date).toISOString()
      : "",
  };
  if (from !== rules.sender.toLowerCase()) {
    email.notExport = `from ${from || "no sender"}, not ${rules.sender}`;
  } else if (!new RegExp(rules.subjectPattern, "i").test(email.subject)) {
    email.notExport = `its subject does not match openai.email.subject_pattern`;
  } else {
    email.link = (parsed.html ? htmlLink(parsed.html, rules) : undefined) ??
      (parsed.text ? textLink(parsed.text, rules) : undefined);
    if (!email.link) email.notExport = "no download link in it";
  }
  return email;
}
