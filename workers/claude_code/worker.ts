/**
 * The Claude Code source: where session files live and what each path means (FORMATS §3.1).
 *
 * ```
 * <projects>/<project>/<session>.jsonl                          a session
 * <projects>/<project>/agent-<id>.jsonl                         a sub-agent (2.0.x), parent from its lines
 * <projects>/<project>/<session>/subagents/agent-<id>.jsonl     a sub-agent (2.1.x), parent = <session>
 * ```
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import type { LineSource } from "../../common/line_worker.ts";
import type { FileRef } from "../../common/pipeline.ts";
import { isInside, listDir } from "../../common/walk.ts";
import { type ClaudeCodeCarry, parseClaudeCode } from "../../parsers/claude_code.ts";

const AGENT_FILE = /^agent-(.+)\.jsonl$/;

async function agentType(metaPath: string): Promise<string> {
  try {
    const meta = JSON.parse(await Deno.readTextFile(metaPath));
    return typeof meta?.agentType === "string" ? meta.agentType : "";
  } catch {
    return "";
  }
}

async function subagentRef(path: string): Promise<FileRef | null> {
  const match = basename(path).match(AGENT_FILE);
  if (!match) return null;
  const sessionId = basename(dirname(dirname(path)));
  const hint: Record<string, string> = { kind: "agent", sessionId, agentId: match[1] };
  const type = await agentType(path.replace(/\.jsonl$/, ".meta.json"));
  if (type) hint.agentType = type;
  return { path, hint };
}

function projectFileRef(path: string): FileRef | null {
  const name = basename(path);
  if (!name.endsWith(".jsonl")) return null;
  const agent = name.match(AGENT_FILE);
  if (agent) return { path, hint: { kind: "agent", agentId: agent[1] } };
  return { path, hint: { kind: "session", sessionId: name.slice(0, -".jsonl".length) } };
}

/**
 * The Claude Code line source.
 *
 * @example Discover sessions
 * ```ts
 * import { claudeCodeSource } from "./worker.ts";
 * const root = await Deno.makeTempDir();
 * console.log(await claudeCodeSource.discover(root, console.warn)); // []
 * ```
 */
export const claudeCodeSource: LineSource<ClaudeCodeCarry> = {
  name: "claude_code",
  sourceType: "claude_code",
  label: "Claude Code sessions",
  parser: parseClaudeCode,

  async discover(root, warn) {
    const refs: FileRef[] = [];
    for (const project of await listDir(root, root, warn)) {
      if (!project.isDirectory) continue;
      let entries;
      try {
        entries = await listDir(project.path, root, warn);
      } catch (error) {
        warn(`${project.path}: skipped: cannot list: ${(error as Error).message}`);
        continue;
      }
      for (const entry of entries) {
        if (entry.isFile) {
          const ref = projectFileRef(entry.path);
          if (ref) refs.push(ref);
        } else if (entry.isDirectory) {
          const subagents = join(entry.path, "subagents");
          let files;
          try {
            files = await listDir(subagents, root, warn);
          } catch {
            continue; // Most session folders have no sub-agents.
          }
          for (const file of files) {
            const ref = file.isFile ? await subagentRef(file.path) : null;
            if (ref) refs.push(ref);
          }
        }
      }
    }
    return refs;
  },

  classify(path, root) {
    if (!isInside(path, root) || !path.endsWith(".jsonl")) return Promise.resolve(null);
    const depth = path.slice(root.length).split("/").filter(Boolean).length;
    if (depth === 2) return Promise.resolve(projectFileRef(path));
    if (depth === 4 && basename(dirname(path)) === "subagents") return subagentRef(path);
    return Promise.resolve(null);
  },
};
