/**
 * The Claude.ai exports source as the registry knows it.
 *
 * @module
 */
import { exportSpec, type SourceSpec } from "../../common/source_spec.ts";

/**
 * Claude.ai data exports dropped into `~/ai-sync-exports/claude` (and, by name only, in the folders
 * `claude.extra_dirs` lists).
 *
 * @example Its default folder
 * ```ts
 * import { claudeSpec } from "./spec.ts";
 * claudeSpec.defaultDataDir((n) => n === "HOME" ? "/home/me" : undefined); // "/home/me/ai-sync-exports/claude"
 * ```
 */
export const claudeSpec: SourceSpec = exportSpec({
  name: "claude",
  sourceType: "claude",
  binary: "claude-sync-worker",
  label: "Claude.ai exports",
  folder: "claude",
});
