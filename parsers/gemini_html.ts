/**
 * Takeout's `MyActivity.html` as the records `MyActivity.json` holds: one `outer-cell` per
 * record, whose content cell is the title (prefix and prompt), a localised date and the
 * response's HTML, separated by `<br>`, and whose caption may link the conversation.
 *
 * Dates are read in the English (`Aug 8, 2026, 6:39:27 PM CEST`) and German
 * (`08.08.2026, 18:39:27 MESZ`) forms with the zone abbreviations Takeout writes for them; a
 * record whose date is in another form is reported and skipped.
 *
 * @module
 */
import type { LineIssue } from "../common/source.ts";
import { decodeEntities, htmlToText } from "./html.ts";
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
const ENGLISH =
  /^([A-Z][a-z]{2}) (\d{1,2}), (\d{4}), (\d{1,2}):(\d{2}):(\d{2})\s*([AP]M)\s+([A-Z]{2,5})$/;
const GERMAN = /^(\d{2})\.(\d{2})\.(\d{4}), (\d{2}):(\d{2}):(\d{2})\s+([A-Z]{2,5})$/;

/**
 * An RFC 3339 time from Takeout's localised date, or `""`.
 *
 * @example Both forms
 * ```ts
 * import { takeoutTime } from "./gemini_html.ts";
 * console.log(takeoutTime("Aug 8, 2026, 6:39:27 PM CEST")); // 2026-08-08T16:39:27.000Z
 * console.log(takeoutTime("08.08.2026, 18:39:27 MESZ")); // 2026-08-08T16:39:27.000Z
 * ```
 */
export function takeoutTime(text: string): string {
  const clean = text.replace(/[\u202f\u00a0]/g, " ").trim();
  let y: number, mo: number, d: number, h: number, mi: number, s: number, zone: string;
  const en = clean.match(ENGLISH);
  const de = clean.match(GERMAN);
  if (en) {
    mo = MONTHS.indexOf(en[1].toLowerCase());
    [d, y, h, mi, s] = [en[2], en[3], en[4], en[5], en[6]].map(Number);
    h = (h % 12) + (en[7] === "PM" ? 12 : 0);
    zone = en[8];
  } else if (de) {
    [d, mo, y, h, mi, s] = [de[1], de[2], de[3], de[4], de[5], de[6]].map(Number);
    mo -= 1;
    zone = de[7];
  } else return "";
  const offset = ZONES[zone];
  if (offset === undefined || mo < 0) return "";
  return new Date(Date.UTC(y, mo, d, h, mi, s) - offset * 60_000).toISOString();
}

/**
 * The records of a `MyActivity.html`, newest first as written.
 *
 * @example One record
 * ```ts
 * import { activityFromHtml } from "./gemini_html.ts";
 * const html = '<div class="outer-cell mdl-cell"><div class="header-cell">Gemini Apps</div>' +
 *   '<div class="content-cell mdl-cell--6-col">Prompted&nbsp;hello<br>Aug 8, 2026, 6:39:27 PM CEST<br><p>Hi!</p></div></div>';
 * console.log(activityFromHtml(html, [])[0].title); // Prompted hello
 * ```
 */
export function activityFromHtml(html: string, issues: LineIssue[]): Json[] {
  const records: Json[] = [];
  const cells = html.split(/<div class="outer-cell\b/).slice(1);
  cells.forEach((cell, i) => {
    // The first content cell runs to the next cell (the caption); responses hold divs too.
    const start = cell.match(/<div class="content-cell[^"]*">/);
    if (!start) return;
    const from = start.index! + start[0].length;
    const next = cell.indexOf('<div class="content-cell', from);
    const body = cell.slice(from, next < 0 ? cell.length : next).replace(/(<\/div>\s*)+$/, "");
    const parts = body.split(/<br\s*\/?>/i);
    const title = decodeEntities(parts[0].replace(/<[^>]*>/g, "")).replace(/\u00a0/g, " ").trim();
    const dateIndex = parts.findIndex((p, n) => n > 0 && takeoutTime(htmlToText(p)) !== "");
    if (dateIndex < 0) {
      issues.push({
        line: i + 1,
        message: `activity record ${i + 1}: no date in a known form; skipped`,
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
