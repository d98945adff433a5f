/**
 * `gemini-cli-sync-worker`: syncs Gemini CLI sessions (`~/.gemini/tmp`).
 *
 * ```
 * gemini-cli-sync-worker --data-dir ~/.gemini/tmp --config config.yaml
 * ```
 *
 * @module
 */
import { runCli } from "../../common/cli/cli.ts";
import { geminiCliSpec } from "./spec.ts";

if (import.meta.main) {
  await runCli(geminiCliSpec, Deno.args, new URL("./engine.ts", import.meta.url));
}
