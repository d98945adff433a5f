/**
 * The Claude.ai export source: what a Claude.ai data export holds and which of it is read.
 *
 * ```
 * data-*.zip                      the export as downloaded
 *   conversations.json            every conversation with its messages
 *   projects.json                 projects with their knowledge (2025): each project's knowledge
 *                                 is a conversation of its own
 *   projects/<uuid>.json          the same, one file per project (2026)
 *   users.json, memories.json     not conversations: not read
 * ```
 *
 * The same files extracted into a folder are read as they lie.
 *
 * @module
 */
import { basename } from "node:path";
import { exportSource } from "../../common/watch/export_source.ts";
import { claudeSpec } from "./spec.ts";
import type { EachRecord, ExportPlan } from "../../common/units/unit.ts";
import {
  CLAUDE_SHAPE,
  type ClaudeHint,
  parseClaude,
  projectOf,
  type ProjectSummary,
  projectSummary,
} from "../../parsers/claude.ts";
import { setEntry } from "../../parsers/json_lines.ts";

const EXPORT_ZIP = /^data-.*\.zip$/;
const PROJECT_FILE = /(^|\/)projects\/[0-9a-f-]{36}\.json$/;

async function planClaude(
  names: readonly string[],
  eachRecord: EachRecord,
  single: boolean,
  warn: string[],
): Promise<ExportPlan<ClaudeHint>> {
  const conversations = names.filter((n) => basename(n) === "conversations.json").sort();
  if (conversations.length === 0) {
    return { members: [], missing: [], notExport: "no conversations.json: not a Claude.ai export" };
  }
  if (
    names.some((n) =>
      ["chat.html", "message_feedback.json", "export_manifest.json"].includes(basename(n))
    )
  ) {
    return { members: [], missing: [], notExport: "a ChatGPT export (chat.html beside it)" };
  }
  const prefix = conversations[0].slice(0, conversations[0].length - "conversations.json".length);
  // What the conversations that name a project are told of it, read one project at a time: the
  // knowledge itself is read as a member of its own (a projects.json of megabytes was read
  // whole, up to 1 MiB: past that every project was lost).
  const projects: Record<string, ProjectSummary> = {};
  const projectFiles: string[] = [];
  const sources = single
    ? ["projects.json"]
    : names.filter((n) => n === `${prefix}projects.json` || PROJECT_FILE.test(n));
  for (const name of sources) {
    try {
      await eachRecord(name, (record) => {
        const project = projectOf(record);
        if (project) setEntry(projects, project.uuid, projectSummary(project));
      });
      projectFiles.push(name);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) {
        warn.push(`${name}: projects not read: ${(error as Error).message}`);
      }
    }
  }
  const hint: ClaudeHint = Object.keys(projects).length > 0 ? { projects } : {};
  return {
    members: [
      ...conversations.map((name) => ({ name: single ? "" : name, hint, shape: CLAUDE_SHAPE })),
      ...projectFiles.map((name) => ({
        name,
        hint: { kind: "projects" } as const,
        shape: CLAUDE_SHAPE,
      })),
    ],
    missing: [],
  };
}

/**
 * The Claude.ai export source.
 *
 * @example An extracted export's conversations are read in the drop folder
 * ```ts
 * import { claudeSource } from "./source.ts";
 * const drop = await Deno.makeTempDir();
 * console.log((await claudeSource.classify(`${drop}/conversations.json`, drop))?.form); // export
 * ```
 */
export const claudeSource = exportSource<null, ClaudeHint>({
  spec: claudeSpec,
  parser: parseClaude,
  accepts: (rel, own) => {
    const name = basename(rel);
    if (!own) return EXPORT_ZIP.test(name);
    return name.endsWith(".zip") || name === "conversations.json";
  },
  plan: async (ref, names, _readText, eachRecord) => {
    const warnings: string[] = [];
    const single = !ref.path.endsWith(".zip");
    const plan = await planClaude(
      single ? [basename(ref.path)] : names,
      eachRecord,
      single,
      warnings,
    );
    return warnings.length ? { ...plan, warnings } : plan;
  },
  hint: () => ({}),
});
