/**
 * The Gemini CLI source: what each path under `~/.gemini/tmp` means.
 *
 * ```
 * <tmp>/<project>/chats/session-<time>-<id8>.jsonl     a session, append-only (0.39+)
 * <tmp>/<project>/chats/session-<time>-<id8>.json      a session, rewritten whole (≤ 0.38)
 * <tmp>/<project>/chats/<parent id>/<id>.jsonl         a sub-agent session
 * <tmp>/<project>/logs.json                            the prompt log, rewritten whole
 * <tmp>/<project>/checkpoint-<tag>.json                a /chat save checkpoint, rewritten whole
 * ```
 *
 * `<project>` is the SHA-256 of the project's path (before 0.29) or a short slug; both map to
 * the path through `~/.gemini/projects.json` (`{"projects": {"<path>": "<slug>"}}`), and a
 * slug folder may also hold the path in its `.project_root` file.
 *
 * @module
 */
import { basename, dirname, join, relative } from "node:path";
import { ReadScope } from "../../common/io/guarded_file.ts";
import { sha256Hex } from "../../common/hash.ts";
import type { FileSource } from "../../common/watch/source_worker.ts";
import type { FileRef } from "../../common/units/unit.ts";
import { isInside, listDir } from "../../common/watch/walk.ts";
import {
  GEMINI_DOCUMENTS,
  type GeminiCarry,
  type GeminiHint,
  parseGeminiCli,
} from "../../parsers/gemini_cli.ts";

const SESSION_FILE = /^session-.*-([0-9a-f]{8})\.(jsonl|json)$/i;
const SUBAGENT_FILE = /^(.+)\.jsonl$/;
const CHECKPOINT_FILE = /^checkpoint-(.+)\.json$/;
const HASH_DIR = /^[0-9a-f]{64}$/;

/**
 * What the Gemini CLI worker may read: its data directory and the single file
 * `projects.json` beside it (not `~/.gemini` itself, which holds the CLI's credentials).
 *
 * @example The default scope
 * ```ts
 * import { geminiCliScope } from "./source.ts";
 * console.log(geminiCliScope("/home/me/.gemini/tmp").roots);
 * ```
 */
export function geminiCliScope(root: string): ReadScope {
  return new ReadScope([root, join(dirname(root), "projects.json")]);
}

/**
 * Project folder names mapped to project paths, from `projects.json` beside `root`.
 *
 * @example No registry yet
 * ```ts
 * import { projectPaths } from "./source.ts";
 * const root = await Deno.makeTempDir();
 * console.log((await projectPaths(root)).size); // 0
 * ```
 */
export async function projectPaths(
  root: string,
  files: ReadScope = geminiCliScope(root),
  warn: (message: string) => void = () => {},
): Promise<Map<string, string>> {
  const paths = new Map<string, string>();
  let registry: unknown;
  try {
    registry = JSON.parse(await files.readTextFile(join(dirname(root), "projects.json")));
  } catch (error) {
    // Absent before 0.29, and only a nicety: folder names still identify projects.
    if (!(error instanceof Deno.errors.NotFound)) {
      warn(`${join(dirname(root), "projects.json")}: not used: ${(error as Error).message}`);
    }
    return paths;
  }
  const projects = (registry as { projects?: unknown })?.projects;
  if (typeof projects !== "object" || projects === null) return paths;
  for (const [path, slug] of Object.entries(projects)) {
    if (typeof slug === "string") paths.set(slug, path);
    paths.set(sha256Hex(path), path);
  }
  return paths;
}

async function projectPath(
  dir: string,
  registry: Map<string, string>,
  files: ReadScope,
  warn: (message: string) => void,
): Promise<string> {
  const known = registry.get(basename(dir));
  if (known) return known;
  if (HASH_DIR.test(basename(dir))) return "";
  try {
    return (await files.readTextFile(join(dir, ".project_root"))).trim();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) warn((error as Error).message);
    return "";
  }
}

/** A file's own mtime (a link's, not its target's: nothing outside is looked at). */
async function mtimeIso(path: string): Promise<string> {
  try {
    return (await Deno.lstat(path)).mtime?.toISOString() ?? "";
  } catch {
    return "";
  }
}

/** 8-character prefixes of the sessions recorded in a project's `chats/`. */
async function recordedSessions(projectDir: string, root: string): Promise<string> {
  const prefixes = new Set<string>();
  try {
    for (const entry of await listDir(join(projectDir, "chats"), root, () => {})) {
      const session = entry.name.match(SESSION_FILE);
      if (session) prefixes.add(session[1].toLowerCase());
      else if (entry.isDirectory) prefixes.add(entry.name.slice(0, 8).toLowerCase());
    }
  } catch {
    // No chats folder: every logged prompt is the only record of its session.
  }
  return [...prefixes].join(",");
}

/**
 * The reference of a file under a project folder, from its path parts below `root`; `null`
 * when it is not a Gemini CLI session file.
 */
async function projectFileRef(
  path: string,
  root: string,
  registry: Map<string, string>,
  files: ReadScope,
  warn: (message: string) => void,
): Promise<FileRef<GeminiHint> | null> {
  const parts = relative(root, path).split("/");
  const project = parts[0];
  const projectDir = join(root, project);
  const hint: GeminiHint = { project };
  const projectPathValue = await projectPath(projectDir, registry, files, warn);
  if (projectPathValue) hint.projectPath = projectPathValue;
  const name = parts.at(-1) ?? "";
  if (parts.length === 2 && name === "logs.json") {
    hint.kind = "logs";
    hint.recorded = await recordedSessions(projectDir, root);
    return { path, hint, form: "whole", shape: GEMINI_DOCUMENTS.logs };
  }
  const checkpoint = parts.length === 2 ? name.match(CHECKPOINT_FILE) : null;
  if (checkpoint) {
    hint.kind = "checkpoint";
    hint.tag = safeDecode(checkpoint[1]);
    hint.mtime = await mtimeIso(path);
    return { path, hint, form: "whole", shape: GEMINI_DOCUMENTS.checkpoint };
  }
  if (parts.length === 3 && parts[1] === "chats") {
    const session = name.match(SESSION_FILE);
    if (!session) return null;
    hint.sessionId = session[1].toLowerCase();
    if (session[2].toLowerCase() === "json") {
      hint.kind = "json";
      return { path, hint, form: "whole", shape: GEMINI_DOCUMENTS.json };
    }
    hint.kind = "jsonl";
    return { path, hint, form: "lines" };
  }
  if (parts.length === 4 && parts[1] === "chats") {
    const subagent = name.match(SUBAGENT_FILE);
    if (!subagent) return null;
    Object.assign(hint, { kind: "jsonl", sessionId: subagent[1], parentSessionId: parts[2] });
    return { path, hint, form: "lines" };
  }
  return null;
}

function safeDecode(tag: string): string {
  try {
    return decodeURIComponent(tag);
  } catch {
    return tag; // Older CLIs wrote the raw tag.
  }
}

/**
 * The Gemini CLI source.
 *
 * @example Discover sessions
 * ```ts
 * import { geminiCliSource } from "./source.ts";
 * const root = await Deno.makeTempDir();
 * console.log(await geminiCliSource.discover(root, console.warn)); // []
 * ```
 */
export const geminiCliSource: FileSource<GeminiCarry, GeminiHint> = {
  name: "gemini_cli",
  sourceType: "gemini_cli",
  label: "Gemini CLI sessions",
  parser: parseGeminiCli,

  async discover(root, warn, files = geminiCliScope(root), skip = () => {}) {
    const registry = await projectPaths(root, files, warn);
    const refs: FileRef<GeminiHint>[] = [];
    for (const project of await listDir(root, root, warn)) {
      if (!project.isDirectory) continue;
      const candidates: string[] = [];
      try {
        for (const entry of await listDir(project.path, root, warn)) {
          if (entry.isFile) candidates.push(entry.path);
        }
        for (const entry of await listDir(join(project.path, "chats"), root, warn)) {
          if (entry.isFile) candidates.push(entry.path);
          else if (entry.isDirectory) {
            for (const sub of await listDir(entry.path, root, warn)) {
              if (sub.isFile) candidates.push(sub.path);
            }
          }
        }
      } catch (error) {
        if (!(error instanceof Deno.errors.NotFound)) {
          warn(`${project.path}: skipped: cannot list: ${(error as Error).message}`);
        }
      }
      for (const path of candidates) {
        const ref = await projectFileRef(path, root, registry, files, warn);
        if (ref) refs.push(ref);
        else if (/\.jsonl?$/.test(path)) {
          skip(`${path}: skipped: not named like a Gemini CLI session, log or checkpoint`);
        }
      }
    }
    return refs;
  },

  async classify(path, root, files = geminiCliScope(root)) {
    if (!isInside(path, root) || !path.endsWith(".json") && !path.endsWith(".jsonl")) return null;
    const quiet = () => {};
    return await projectFileRef(path, root, await projectPaths(root, files), files, quiet);
  },
};
