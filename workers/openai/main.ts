/**
 * `openai-sync-worker`: syncs ChatGPT data exports (zip, conversations.json or its shards, chat.html) dropped into a folder.
 *
 * ```
 * openai-sync-worker --data-dir ~/ai-sync-exports/chatgpt --config config.yaml
 * ```
 *
 * @module
 */
import { runCli } from "../../common/cli/cli.ts";
import { openaiSpec } from "./spec.ts";

if (import.meta.main) {
  await runCli(openaiSpec, Deno.args, new URL("./engine.ts", import.meta.url));
}
