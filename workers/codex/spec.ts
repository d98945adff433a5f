/**
 * The Codex source as the registry knows it.
 *
 * @module
 */
import { z } from "zod";
import type { SourceSpec } from "../../common/source_spec.ts";

/**
 * Codex: `~/.codex/sessions` (or `$CODEX_HOME/sessions`) and `archived_sessions` beside it.
 *
 * @example Its default folder
 * ```ts
 * import { codexSpec } from "./spec.ts";
 * codexSpec.defaultDataDir((n) => n === "CODEX_HOME" ? "/ch" : undefined); // "/ch/sessions"
 * ```
 */
export const codexSpec: SourceSpec = {
  name: "codex",
  sourceType: "codex",
  binary: "codex-sync-worker",
  label: "Codex rollouts",
  sourceFlag: "sessions-dir",
  configKey: "sessions_dir",
  locatorEnv: ["CODEX_HOME"],
  defaultDataDir: (env) => {
    const home = env("CODEX_HOME");
    return home ? `${home}/sessions` : `${env("HOME") ?? "."}/.codex/sessions`;
  },
  config: z.strictObject({ sessions_dir: z.string().default("") }),
  sys: [],
  siblings: [{ name: "archived_sessions", watch: true }],
};
