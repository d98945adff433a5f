/**
 * `claude-sync-worker`: syncs Claude.ai data exports (zip or conversations.json) dropped into a folder.
 *
 * ```
 * claude-sync-worker --data-dir ~/ai-sync-exports/claude --config config.yaml
 * ```
 *
 * @module
 */
import { runCli } from "../../common/cli/cli.ts";
import { claudeSpec } from "./spec.ts";

if (import.meta.main) {
  await runCli(claudeSpec, Deno.args, new URL("./engine.ts", import.meta.url));
}
