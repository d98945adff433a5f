/**
 * `codex-sync-worker`: syncs Codex CLI rollouts (`~/.codex/sessions` and the
 * `archived_sessions` folder beside it).
 *
 * ```
 * codex-sync-worker --sessions-dir ~/.codex/sessions --config config.yaml
 * ```
 *
 * @module
 */
import { runCli } from "../../common/cli/cli.ts";
import { codexSpec } from "./spec.ts";

if (import.meta.main) {
  await runCli(codexSpec, Deno.args, new URL("./engine.ts", import.meta.url));
}
