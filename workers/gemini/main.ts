/**
 * `gemini-sync-worker`: syncs Google Takeout's Gemini Apps activity (MyActivity.json or .html, in a zip or extracted) dropped into a folder.
 *
 * ```
 * gemini-sync-worker --data-dir ~/ai-sync-exports/gemini --config config.yaml
 * ```
 *
 * @module
 */
import { runCli } from "../../common/cli/cli.ts";
import { geminiSpec } from "./spec.ts";

if (import.meta.main) {
  await runCli(geminiSpec, Deno.args, new URL("./engine.ts", import.meta.url));
}
