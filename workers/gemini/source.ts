/**
 * The Gemini Takeout source: what a Google Takeout of "My Activity / Gemini Apps" holds and
 * which of it is read, and the per-conversation JSON that browser exporters write.
 *
 * ```
 * takeout-*.zip                                       the export as downloaded
 *   Takeout/My Activity/Gemini Apps/MyActivity.json   one record per prompt, newest first
 *   Takeout/My Activity/Gemini Apps/MyActivity.html   the same as a page: read when no JSON is
 * <name>.json                                         a browser exporter's conversation
 * ```
 *
 * The activity folder's name follows the account's language ("Gemini-Apps", "Gemini 앱"): a
 * folder whose name holds "Gemini" is taken. Takeouts of other products hold `MyActivity`
 * files too, in folders of their own names, which are left alone.
 *
 * @module
 */
import { basename, dirname } from "node:path";
import { exportSource } from "../../common/watch/export_source.ts";
import { geminiSpec } from "./spec.ts";
import type { ExportMember, ExportPlan } from "../../common/units/unit.ts";
import { CELL_MARKER } from "../../parsers/gemini_html.ts";
import {
  GEMINI_SHAPES,
  type GeminiCarry,
  type GeminiHint,
  parseGemini,
} from "../../parsers/gemini.ts";

/** A Takeout archive: a zip, or a gzip-compressed tar (Takeout's other file type). */
const ARCHIVE = /\.(zip|tgz|tar\.gz)$/i;
const TAKEOUT = /^takeout-.*\.(zip|tgz|tar\.gz)$/i;
const ACTIVITY = /^My ?Activity\.(json|html)$/i;

function inGeminiFolder(name: string): boolean {
  const folder = basename(dirname(name));
  return folder === "." || /gemini/i.test(folder);
}

function planGemini(
  names: readonly string[],
  single: boolean,
  mtime: string,
): ExportPlan<GeminiHint> {
  // A single file was taken by its folder already (see `accepts`).
  const activity = names.filter((n) => ACTIVITY.test(basename(n)) && (single || inGeminiFolder(n)))
    .sort();
  const json = activity.filter((n) => n.toLowerCase().endsWith(".json"));
  const members: ExportMember<GeminiHint>[] = [];
  for (const name of json.length > 0 ? json : activity) {
    const hint: GeminiHint = { kind: "activity" };
    members.push(
      name.toLowerCase().endsWith(".json")
        ? { name, hint, shape: GEMINI_SHAPES.activity }
        : { name, hint, cellMarker: CELL_MARKER },
    );
  }
  if (single && members.length === 0 && names[0]?.endsWith(".json")) {
    const hint: GeminiHint = { kind: "conversation", mtime };
    members.push({ name: names[0], hint, shape: GEMINI_SHAPES.conversation });
  }
  if (members.length === 0) {
    return {
      members,
      missing: [],
      notExport: "no Gemini Apps MyActivity.json or .html: not a Gemini Takeout",
    };
  }
  return { members: single ? members.map((m) => ({ ...m, name: "" })) : members, missing: [] };
}

/**
 * The Gemini Takeout source.
 *
 * @example A Takeout zip in ~/Downloads is looked at, other zips are not
 * ```ts
 * import { geminiSource } from "./source.ts";
 * const downloads = await Deno.makeTempDir();
 * console.log(await geminiSource.classify(`${downloads}/photos.zip`, downloads, undefined, false)); // null
 * ```
 */
export const geminiSource = exportSource<GeminiCarry, GeminiHint>({
  spec: geminiSpec,
  parser: parseGemini,
  accepts: (rel, own) => {
    const name = basename(rel);
    if (!own) return TAKEOUT.test(name);
    if (ACTIVITY.test(name)) return inGeminiFolder(rel);
    return ARCHIVE.test(name) || name.endsWith(".json");
  },
  plan: async (ref, names) => {
    const single = !ARCHIVE.test(ref.path);
    let mtime = "";
    if (single) {
      // A conversation file holds no times: its own mtime stands in.
      mtime = (await Deno.lstat(ref.path).catch(() => null))?.mtime?.toISOString() ?? "";
    }
    return planGemini(single ? [basename(ref.path)] : names, single, mtime);
  },
  hint: () => ({ kind: "activity" }),
});
