/**
 * The ChatGPT exports source as the registry knows it.
 *
 * @module
 */
import { exportSpec, type SourceSpec } from "../../common/source_spec.ts";

/**
 * ChatGPT data exports dropped into `~/ai-sync-exports/chatgpt` (and, by name only, in the folders
 * `openai.extra_dirs` lists).
 *
 * @example Its default folder
 * ```ts
 * import { openaiSpec } from "./spec.ts";
 * openaiSpec.defaultDataDir((n) => n === "HOME" ? "/home/me" : undefined); // "/home/me/ai-sync-exports/chatgpt"
 * ```
 */
export const openaiSpec: SourceSpec = exportSpec({
  name: "openai",
  sourceType: "gpt",
  binary: "openai-sync-worker",
  label: "ChatGPT exports",
  folder: "chatgpt",
  parser: "chatgpt",
});
