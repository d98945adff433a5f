/**
 * The ChatGPT export source: what a ChatGPT data export holds and which of it is read.
 *
 * ```
 * <64 hex>-YYYY-MM-DD-HH-MM-SS[-<32 hex>].zip   the export as downloaded
 *   conversations.json                          2023-2025: every conversation
 *   conversations-000.json, -001.json, ...      2026: shards of up to 100 conversations
 *   export_manifest.json                        2026: the files the export should hold
 *   conversation_asset_file_names.json          attachment file names in the archive
 *   chat.html                                   the same data in a page: read only when no JSON is
 * ```
 *
 * The same files extracted into a folder are read as they lie.
 *
 * @module
 */
import { basename } from "node:path";
import { exportSource } from "../../common/watch/export_source.ts";
import { openaiSpec } from "./spec.ts";
import type { EmailConfig } from "../../common/mail/config.ts";
import { MailIntake } from "../../common/mail/intake.ts";
import type { EachRecord, ExportPlan } from "../../common/units/unit.ts";
import { isObject } from "../../parsers/json_lines.ts";
import { CHATGPT_SHAPE, type ChatGptHint, parseChatGpt } from "../../parsers/chatgpt.ts";

const EXPORT_ZIP = /^[0-9a-f]{64}-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d(-[0-9a-f]{32})?\.zip$/;
const CONVERSATIONS = /(^|\/)conversations(-\d+)?\.json$/;

/** The archive names a manifest lists (`export_files` and `logical_files`). */
function manifestFiles(text: string): string[] {
  const manifest = JSON.parse(text) as Record<string, unknown>;
  const names = new Set<string>();
  for (const entry of Array.isArray(manifest.export_files) ? manifest.export_files : []) {
    if (typeof entry?.path === "string") names.add(entry.path);
  }
  for (const logical of Array.isArray(manifest.logical_files) ? manifest.logical_files : []) {
    for (const file of Array.isArray(logical?.files) ? logical.files : []) {
      if (typeof file === "string") names.add(file);
      else if (typeof file?.path === "string") names.add(file.path);
    }
  }
  return [...names];
}

/** A name with the folder the export was extracted in (zip members may share a prefix). */
function beside(name: string, file: string): string {
  const slash = name.lastIndexOf("/");
  return slash < 0 ? file : `${name.slice(0, slash + 1)}${file}`;
}

async function planChatGpt(
  names: readonly string[],
  readText: (name: string) => Promise<string>,
  eachRecord: EachRecord,
  single: boolean,
): Promise<ExportPlan<ChatGptHint>> {
  const conversations = names.filter((n) => CONVERSATIONS.test(n)).sort();
  const html = names.filter((n) => basename(n) === "chat.html");
  const first = conversations[0] ?? html[0];
  if (!first) {
    return {
      members: [],
      missing: [],
      notExport: "no conversations.json, conversations-NNN.json or chat.html: not a ChatGPT export",
    };
  }
  if (!single && names.some((n) => basename(n) === "users.json") && html.length === 0) {
    return { members: [], missing: [], notExport: "a Claude.ai export (users.json, no chat.html)" };
  }
  const hint: ChatGptHint = {};
  const missing: string[] = [];
  const side = async (file: string) => {
    try {
      return await readText(beside(first, file));
    } catch {
      return undefined;
    }
  };
  const warnings: string[] = [];
  // Streamed: a user of many attachments has a map of megabytes, which was read whole up to
  // 1 MiB and past that left every attachment without its name.
  const assets = beside(first, "conversation_asset_file_names.json");
  if (single || names.includes(assets)) {
    try {
      await eachRecord(assets, (record) => {
        if (isObject(record)) hint.assets = record as ChatGptHint["assets"];
      });
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        warnings.push(
          `${assets}: not read (${(error as Error).message}); attachments keep their file ids`,
        );
      }
    }
  }
  if (single && conversations.length === 0) {
    // chat.html on its own: only when no conversations JSON lies beside it.
    for (const json of ["conversations.json", "conversations-000.json"]) {
      if (await side(json) !== undefined) {
        return { members: [], missing: [], notExport: `${json} beside it is read instead` };
      }
    }
  }
  if (!single) {
    const manifest = await side("export_manifest.json");
    if (manifest !== undefined) {
      try {
        for (const file of manifestFiles(manifest)) {
          const name = beside(first, file);
          if (!names.includes(name) && !names.includes(file)) missing.push(file);
        }
      } catch {
        missing.push("export_manifest.json (unreadable)");
      }
    }
  }
  const members = conversations.length > 0
    ? conversations.map((name) => ({ name, hint, shape: CHATGPT_SHAPE }))
    : [{ name: html[0], hint }];
  return {
    members: single ? members.map((m) => ({ ...m, name: "" })) : members,
    missing,
    ...(warnings.length ? { warnings } : {}),
  };
}

/**
 * The ChatGPT export source.
 *
 * @example Only exports are touched in ~/Downloads
 * ```ts
 * import { openaiSource } from "./source.ts";
 * const downloads = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${downloads}/notes.zip`, "");
 * console.log(await openaiSource.classify(`${downloads}/notes.zip`, downloads, undefined, false)); // null
 * ```
 */
export const openaiSource = exportSource<null, ChatGptHint>({
  spec: openaiSpec,
  parser: parseChatGpt,
  accepts: (rel, own) => {
    const name = basename(rel);
    if (!own) return EXPORT_ZIP.test(name);
    return name.endsWith(".zip") || CONVERSATIONS.test(name) || name === "chat.html";
  },
  plan: (ref, names, readText, eachRecord) =>
    planChatGpt(
      ref.path.endsWith(".zip") ? names : [basename(ref.path)],
      readText,
      eachRecord,
      !ref.path.endsWith(".zip"),
    ),
  hint: () => ({}),
  intake: (ctx) => (ctx.section().email as EmailConfig).enabled ? new MailIntake(ctx) : undefined,
});
