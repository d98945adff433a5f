/**
 * `claude-code-sync-worker`: syncs Claude Code sessions (`~/.claude/projects`).
 *
 * ```
 * claude-code-sync-worker --projects-dir ~/.claude/projects --config config.yaml
 * ```
 *
 * @module
 */
import { runCli } from "../../common/cli/cli.ts";
import { claudeCodeSpec } from "./spec.ts";

if (import.meta.main) {
  await runCli(claudeCodeSpec, Deno.args, new URL("./engine.ts", import.meta.url));
}
