/**
 * Takeout's `MyActivity.html` as the records `MyActivity.json` holds: one `outer-cell` per
 * record, whose content cell is the title (prefix and prompt), a localised date and the
 * response's HTML, separated by `<br>`, and whose caption may link the conversation.
 *
 * Dates are read in the English (`Aug 8, 2026, 6:39:27 PM CEST`) and German
 * (`08.08.2026, 18:39:27 MESZ`) forms, and in the year-first forms of Chinese
 * (`2026年8月8日 下午6:39:27 CST`), Japanese (`2026/08/08 18:39:27 JST`) and Korean
 * (`2026. 8. 8. 오후 6:39:27 KST`), with the zone abbreviations Takeout writes for them or an
 * offset (`GMT+08:00`, `UTC+9`); a record whose date is in another form is reported and skipped.
 *
 * @module
 */
import type { LineIssue } from "../common/source.ts";
import { decodeEntities, htmlToText, stripTags } from "./html.ts";
import type { Json } from "./json_lines.ts";

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
/** Offsets in minutes east of UTC. */
const ZONES: Record<string, number> = {
  UTC: 0,
  GMT: 0,
  BST: 60,
  CET: 60,
  CEST: 120,
  MEZ: 60,
  MESZ: 120,
  EET: 120,
  EEST: 180,
  WET: 0,
  WEST: 60,
  EST: -300,
  EDT: -240,
  CST: -360,
  CDT: -300,
  MST: -420,
  MDT: -360,
  PST: -480,
  PDT: -420,
  JST: 540,
  KST: 540,
  IST: 330,
  AEST: 600,
  AEDT: 660,
};
/**
 * Where a year-first (Chinese, Japanese, Korean) date names a zone differently: `CST` there is
 * China Standard Time, not the American Central one.
 */
const YEAR_FIRST_ZONES: Record<string, number> = { CST: 480, HKT: 480, SGT: 480 };
/** A zone abbreviation, or an offset from GMT or UTC (`GMT+08:00`, `UTC+9`, `GMT-3:30`). */
const ZONE = String.raw`([A-Z]{2,5}|(?:GMT|UTC)[+-]\d{1,2}(?::?\d{2})?)`;
const ENGLISH = new RegExp(
  String.raw`^([A-Z][a-z]{2}) (\d{1,2}), (\d{4}), (\d{1,2}):(\d{2}):(\d{2})\s*([AP]M)\s+${ZONE}$`,
);
const GERMAN = new RegExp(
  String.raw`^(\d{2})\.(\d{2})\.(\d{4}), (\d{2}):(\d{2}):(\d{2})\s+${ZONE}$`,
);
/** Morning and afternoon markers of the year-first forms (`AM`, 上午, 午前, 오전 …). */
const MORNING = ["AM", "上午", "午前", "오전"];
const AFTERNOON = ["PM", "下午", "午後", "오후"];
const MARKER = String.raw`(AM|PM|上午|下午|午前|午後|오전|오후)?`;
/** `2026年8月8日`, `2026/08/08`, `2026. 8. 8.`, with a weekday in brackets after it, if any. */
const YEAR_FIRST_DATE = String.raw`(\d{4}) ?[年./-] ?(\d{1,2}) ?[月./-] ?(\d{1,2}) ?[日.]?`;
const WEEKDAY = String.raw`(?: ?(?:\([^)]*\)|（[^）]*）))?`;
const YEAR_FIRST = new RegExp(
  `^${YEAR_FIRST_DATE}${WEEKDAY},? ?${MARKER} ?(\\d{1,2}):(\\d{2}):(\\d{2}) ?${MARKER} ?` +
    `[\\[(]?${ZONE}[\\])]?$`,
);

/** The longest date Takeout writes is about 40 characters. */
const MAX_DATE_LENGTH = 64;

/** Minutes east of UTC of a zone abbreviation or offset, or `undefined`. */
function zoneOffset(zone: string, yearFirst: boolean): number | undefined {
  const offset = zone.match(/^(?:GMT|UTC)([+-])(\d{1,2})(?::?(\d{2}))?$/);
  if (offset) {
    const minutes = Number(offset[2]) * 60 + Number(offset[3] ?? 0);
    if (minutes > 14 * 60) return undefined; // No zone is further from UTC than 14 hours.
    return offset[1] === "-" ? -minutes : minutes;
  }
  return (yearFirst ? YEAR_FIRST_ZONES[zone] : undefined) ?? ZONES[zone];
}

/**
 * An RFC 3339 time from Takeout's localised date, or `""`.
 *
 * @example The same moment in three forms
 * ```ts
 * import { takeoutTime } from "./gemini_html.ts";
 * console.log(takeoutTime("Aug 8, 2026, 6:39:27 PM CEST")); // 2026-08-08T16:39:27.000Z
 * console.log(takeoutTime("08.08.2026, 18:39:27 MESZ")); // 2026-08-08T16:39:27.000Z
 * console.log(takeoutTime("2026年8月9日 上午12:39:27 GMT+08:00")); // 2026-08-08T16:39:27.000Z
 * ```
 */
export function takeoutTime(text: string): string {
  // One space for any run of them, and nothing longer than a date: the patterns then never
  // backtrack over long runs of spaces (a page is the user's, but read as hostile).
  const clean = text.replace(/\s+/g, " ").trim();
  if (clean.length > MAX_DATE_LENGTH) return "";
  let y: number, mo: number, d: number, h: number, mi: number, s: number, zone: string;
  const en = clean.match(ENGLISH);
  const de = clean.match(GERMAN);
  const yearFirst = clean.match(YEAR_FIRST);
  if (en) {
    mo = MONTHS.indexOf(en[1].toLowerCase());
    [d, y, h, mi, s] = [en[2], en[3], en[4], en[5], en[6]].map(Number);
    h = (h % 12) + (en[7] === "PM" ? 12 : 0);
    zone = en[8];
  } else if (de) {
    [d, mo, y, h, mi, s] = [de[1], de[2], de[3], de[4], de[5], de[6]].map(Number);
    mo -= 1;
    zone = de[7];
  } else if (yearFirst) {
    [y, mo, d, h, mi, s] = [1, 2, 3, 5, 6, 7].map((i) => Number(yearFirst[i]));
    mo -= 1;
    const marker = yearFirst[4] ?? yearFirst[8];
    if (marker && (h < 1 || h > 12)) return "";
    if (AFTERNOON.includes(marker)) h = (h % 12) + 12;
    else if (MORNING.includes(marker)) h %= 12;
    zone = yearFirst[9];
  } else return "";
  const offset = zoneOffset(zone, Boolean(yearFirst));
  const local = new Date(Date.UTC(y, mo, d, h, mi, s));
  // `Date.UTC` carries over (February 30 is March 2): a date it had to move is not one.
  const real = local.getUTCFullYear() === y && local.getUTCMonth() === mo &&
    local.getUTCDate() === d && h < 24 && mi < 60 && s < 60;
  if (offset === undefined || !real) return "";
  return new Date(local.getTime() - offset * 60_000).toISOString();
}

/**
 * `html` without the `</div>`s (each with the spaces after it) that end it. A loop, not the
 * pattern `/(<\/div>\s*)+$/`, which is tried again from every `</div>` before text and so took
 * time to the square of their number.
 */
function withoutClosingDivs(html: string): string {
  let end = html.length;
  for (let at = end;;) {
    while (at > 0 && /\s/.test(html[at - 1])) at--;
    if (!html.endsWith("</div>", at)) return html.slice(0, end);
    end = at -= "</div>".length;
  }
}

/** What each cell of a `MyActivity.html` starts with: a page may be cut before it. */
export const CELL_MARKER = '<div class="outer-cell';

/**
 * The records of a `MyActivity.html` (or of a part of it, whole cells, the first of which is
 * cell `firstCell` of the page), newest first as written.
 *
 * @example One record
 * ```ts
 * import { activityFromHtml } from "./gemini_html.ts";
 * const html = '<div class="outer-cell mdl-cell"><div class="header-cell">Gemini Apps</div>' +
 *   '<div class="content-cell mdl-cell--6-col">Prompted&nbsp;hello<br>Aug 8, 2026, 6:39:27 PM CEST<br><p>Hi!</p></div></div>';
 * console.log(activityFromHtml(html, [])[0].title); // Prompted hello
 * ```
 */
export function activityFromHtml(html: string, issues: LineIssue[], firstCell = 1): Json[] {
  const records: Json[] = [];
  const cells = html.split(/<div class="outer-cell\b/).slice(1);
  cells.forEach((cell, i) => {
    // The first content cell runs to the next cell (the caption); responses hold divs too.
    const start = cell.match(/<div class="content-cell[^"]*">/);
    if (!start) return;
    const from = start.index! + start[0].length;
    const next = cell.indexOf('<div class="content-cell', from);
    const body = withoutClosingDivs(cell.slice(from, next < 0 ? cell.length : next));
    const parts = body.split(/<br\s*\/?>/i);
    const title = decodeEntities(stripTags(parts[0])).replace(/\u00a0/g, " ").trim();
    const dateIndex = parts.findIndex((p, n) => n > 0 && takeoutTime(htmlToText(p)) !== "");
    if (dateIndex < 0) {
      issues.push({
        line: firstCell + i,
        message: `activity record ${firstCell + i}: no date in a known form; skipped`,
      });
      return;
    }
    const time = takeoutTime(htmlToText(parts[dateIndex]));
    const response = parts.slice(dateIndex + 1).join("<br>").trim();
    const link = cell.match(/https:\/\/gemini\.google\.com\/app\/[0-9a-zA-Z_-]+/)?.[0];
    const record: Json = { header: "Gemini Apps", title, time };
    if (response) record.safeHtmlItem = [{ html: response }];
    if (link) record.titleUrl = link;
    records.push(record);
  });
  return records;
}
