/**
 * The Claude Code source as the registry knows it.
 *
 * @module
 */
import { z } from "zod";
import type { SourceSpec } from "../../common/source_spec.ts";

/**
 * Claude Code: `~/.claude/projects` (or `$CLAUDE_CONFIG_DIR/projects`).
 *
 * @example Its default folder
 * ```ts
 * import { claudeCodeSpec } from "./spec.ts";
 * claudeCodeSpec.defaultDataDir((n) => n === "HOME" ? "/home/me" : undefined);
 * // "/home/me/.claude/projects"
 * ```
 */
export const claudeCodeSpec: SourceSpec = {
  name: "claude_code",
  sourceType: "claude_code",
  binary: "claude-code-sync-worker",
  label: "Claude Code sessions",
  sourceFlag: "projects-dir",
  configKey: "projects_dir",
  locatorEnv: ["CLAUDE_CONFIG_DIR"],
  defaultDataDir: (env) => {
    const configDir = env("CLAUDE_CONFIG_DIR");
    return configDir ? `${configDir}/projects` : `${env("HOME") ?? "."}/.claude/projects`;
  },
  config: z.strictObject({ projects_dir: z.string().default("") }),
  sys: [],
};
