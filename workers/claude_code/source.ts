/**
 * The Claude Code source: where session files live and what each path means.
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
import type { FileSource } from "../../common/watch/source_worker.ts";
import { ReadScope } from "../../common/io/guarded_file.ts";
import type { FileRef } from "../../common/units/unit.ts";
import { isInside, listDir } from "../../common/watch/walk.ts";
import {
  type ClaudeCodeCarry,
  type ClaudeCodeHint,
  parseClaudeCode,
} from "../../parsers/claude_code.ts";

const AGENT_FILE = /^agent-(.+)\.jsonl$/;

/** The `agentType` of a sub-agent's `.meta.json`, read through the guarded open; `""` if none. */
async function agentType(
  metaPath: string,
  files: ReadScope,
  warn: (message: string) => void,
): Promise<string> {
  let text: string;
  try {
    text = await files.readTextFile(metaPath);
  } catch (error) {
    // Absent for most agents; anything else (a link out, a FIFO, a huge file) is said.
    if (!(error instanceof Deno.errors.NotFound)) warn((error as Error).message);
    return "";
  }
  try {
    const meta = JSON.parse(text);
    return typeof meta?.agentType === "string" ? meta.agentType : "";
  } catch {
    warn(`${metaPath}: not JSON; the sub-agent's type is left out`);
    return "";
  }
}

async function subagentRef(
  path: string,
  files: ReadScope,
  warn: (message: string) => void,
): Promise<FileRef<ClaudeCodeHint> | null> {
  const match = basename(path).match(AGENT_FILE);
  if (!match) return null;
  const sessionId = basename(dirname(dirname(path)));
  const hint: ClaudeCodeHint = { kind: "agent", sessionId, agentId: match[1] };
  const type = await agentType(path.replace(/\.jsonl$/, ".meta.json"), files, warn);
  if (type) hint.agentType = type;
  return { path, hint };
}

function projectFileRef(path: string): FileRef<ClaudeCodeHint> | null {
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
 * import { claudeCodeSource } from "./source.ts";
 * const root = await Deno.makeTempDir();
 * console.log(await claudeCodeSource.discover(root, console.warn)); // []
 * ```
 */
export const claudeCodeSource: FileSource<ClaudeCodeCarry, ClaudeCodeHint> = {
  name: "claude_code",
  sourceType: "claude_code",
  label: "Claude Code sessions",
  parser: parseClaudeCode,

  async discover(root, warn, files = new ReadScope([root]), skip = () => {}) {
    const refs: FileRef<ClaudeCodeHint>[] = [];
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
          else if (!entry.name.endsWith(".meta.json")) {
            skip(`${entry.path}: skipped: not a session file (.jsonl)`);
          }
        } else if (entry.isDirectory) {
          const subagents = join(entry.path, "subagents");
          let agents;
          try {
            agents = await listDir(subagents, root, warn);
          } catch {
            continue; // Most session folders have no sub-agents.
          }
          for (const agent of agents) {
            const ref = agent.isFile ? await subagentRef(agent.path, files, warn) : null;
            if (ref) refs.push(ref);
          }
        }
      }
    }
    return refs;
  },

  classify(path, root, files = new ReadScope([root])) {
    if (!isInside(path, root) || !path.endsWith(".jsonl")) return Promise.resolve(null);
    const depth = path.slice(root.length).split("/").filter(Boolean).length;
    if (depth === 2) return Promise.resolve(projectFileRef(path));
    if (depth === 4 && basename(dirname(path)) === "subagents") {
      return subagentRef(path, files, () => {});
    }
    return Promise.resolve(null);
  },
};
