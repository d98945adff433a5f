/**
 * The Gemini Takeout exports source as the registry knows it.
 *
 * @module
 */
import { exportSpec, type SourceSpec } from "../../common/source_spec.ts";

/**
 * Google Takeout exports of Gemini Apps activity dropped into `~/ai-sync-exports/gemini` (and, by name only, in the folders
 * `gemini.extra_dirs` lists).
 *
 * @example Its default folder
 * ```ts
 * import { geminiSpec } from "./spec.ts";
 * geminiSpec.defaultDataDir((n) => n === "HOME" ? "/home/me" : undefined); // "/home/me/ai-sync-exports/gemini"
 * ```
 */
export const geminiSpec: SourceSpec = exportSpec({
  name: "gemini",
  sourceType: "gemini",
  binary: "gemini-sync-worker",
  label: "Gemini Takeout exports",
  folder: "gemini",
});
