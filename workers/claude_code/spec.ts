/**
 * The Claude Code source as the registry knows it.
 *
 * @module
 */
import { z } from "zod";
import type { SourceSpec } from "../../common/source_spec.ts";

/**
 * Claude Code: `~/.claude/projects` (or `$CLAUDE_CONFIG_DIR/projects`), and
 * `~/.config/claude/projects` (`$XDG_CONFIG_HOME/claude`), where versions from 1.0.29 on wrote on
 * Linux, unless `CLAUDE_CONFIG_DIR` says where.
 *
 * @example Its default folders
 * ```ts
 * import { claudeCodeSpec } from "./spec.ts";
 * const env = (n: string) => n === "HOME" ? "/home/me" : undefined;
 * claudeCodeSpec.defaultDataDir(env); // "/home/me/.claude/projects"
 * claudeCodeSpec.otherDefaultDirs?.(env); // ["/home/me/.config/claude/projects"]
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
  otherDefaultDirs: (env) =>
    env("CLAUDE_CONFIG_DIR")
      ? []
      : [`${env("XDG_CONFIG_HOME") || `${env("HOME") ?? "."}/.config`}/claude/projects`],
  config: z.strictObject({ projects_dir: z.string().default("") }),
  sys: [],
};
