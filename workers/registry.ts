/**
 * Every source this build has: one line each. Adding a source is a folder under `workers/`
 * (its spec, its file layout and its `main.ts`), a parser under `parsers/`, and a line here.
 *
 * @module
 */
import type { SourceSpec } from "../common/source_spec.ts";
import { claudeCodeSpec } from "./claude_code/spec.ts";
import { codexSpec } from "./codex/spec.ts";
import { geminiCliSpec } from "./gemini_cli/spec.ts";
import { openaiSpec } from "./openai/spec.ts";
import { claudeSpec } from "./claude/spec.ts";
import { geminiSpec } from "./gemini/spec.ts";

/**
 * The sources, in the order `start` numbers them (status ports: the base plus the index).
 *
 * @example Their binaries
 * ```ts
 * import { SOURCES } from "./registry.ts";
 * console.log(SOURCES.map((s) => s.binary));
 * ```
 */
export const SOURCES: readonly SourceSpec[] = [
  claudeCodeSpec,
  codexSpec,
  geminiCliSpec,
  openaiSpec,
  claudeSpec,
  geminiSpec,
];

/**
 * The source named `name`.
 *
 * @example Look one up
 * ```ts
 * import { sourceSpec } from "./registry.ts";
 * sourceSpec("claude_code").sourceFlag === "projects-dir";
 * ```
 */
export function sourceSpec(name: string): SourceSpec {
  const spec = SOURCES.find((s) => s.name === name);
  if (!spec) {
    throw new Error(
      `unknown source ${name}: expected one of ${SOURCES.map((s) => s.name).join(", ")}`,
    );
  }
  return spec;
}
