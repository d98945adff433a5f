/**
 * The Gemini CLI source as the registry knows it.
 *
 * @module
 */
import { z } from "zod";
import type { SourceSpec } from "../../common/source_spec.ts";

/**
 * Gemini CLI: `~/.gemini/tmp` (`$GEMINI_CLI_HOME/.gemini/tmp` when set), and the single file `~/.gemini/projects.json` beside it (not
 * `~/.gemini` itself, which holds the CLI's credentials).
 *
 * @example Its default folder
 * ```ts
 * import { geminiCliSpec } from "./spec.ts";
 * geminiCliSpec.defaultDataDir((n) => n === "HOME" ? "/home/me" : undefined); // "/home/me/.gemini/tmp"
 * ```
 */
export const geminiCliSpec: SourceSpec = {
  name: "gemini_cli",
  sourceType: "gemini_cli",
  binary: "gemini-cli-sync-worker",
  label: "Gemini CLI sessions",
  sourceFlag: "data-dir",
  configKey: "data_dir",
  // Gemini CLI keeps its state under $GEMINI_CLI_HOME/.gemini when that is set (several accounts).
  locatorEnv: ["GEMINI_CLI_HOME"],
  defaultDataDir: (env) => `${env("GEMINI_CLI_HOME") || env("HOME") || "."}/.gemini/tmp`,
  config: z.strictObject({ data_dir: z.string().default("") }),
  sys: [],
  siblings: [{ name: "projects.json", watch: false }],
};
