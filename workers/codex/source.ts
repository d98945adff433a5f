/**
 * The Codex source: where rollouts live and what each path means.
 *
 * ```
 * <sessions>/YYYY/MM/DD/rollout-<local time>-<uuid>.jsonl       append-only (Rust CLI)
 * <sessions>/rollout-<local time>-<uuid>.jsonl                   early Rust CLI, flat
 * <sessions>/rollout-YYYY-MM-DD-<uuid>.json                      TypeScript CLI, rewritten whole
 * ….jsonl.zst                                                    a compressed rollout
 * <sessions>/../archived_sessions/…                              archived rollouts, dated or flat
 * ```
 *
 * @module
 */
import { basename } from "node:path";
import type { FileSource } from "../../common/watch/source_worker.ts";
import type { FileRef } from "../../common/units/unit.ts";
import { isInside, listDir } from "../../common/watch/walk.ts";
import {
  CODEX_JSON_ROLLOUT,
  type CodexCarry,
  type CodexHint,
  parseCodex,
} from "../../parsers/codex.ts";

const ROLLOUT =
  /^rollout-.*?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?\.(jsonl|jsonl\.zst|json)$/i;
/** Dated folders go three levels deep (YYYY/MM/DD). */
const MAX_DEPTH = 3;

/**
 * The reference of a rollout file, or `null` when the name is not a rollout's.
 *
 * @example Classify a compressed rollout
 * ```ts
 * import { rolloutRef } from "./source.ts";
 * rolloutRef("/s/rollout-2025-09-19T11-02-12-01996135-afde-7911-97f0-d863511eca56.jsonl.zst", "/s")
 *   ?.form === "zstd";
 * ```
 */
export function rolloutRef(path: string, root: string): FileRef<CodexHint> | null {
  const match = basename(path).match(ROLLOUT);
  if (!match) return null;
  const hint: CodexHint = {};
  if (match[1]) hint.sessionId = match[1].toLowerCase();
  if (basename(root) === "archived_sessions") hint.archived = "true";
  const extension = match[2].toLowerCase();
  if (extension === "json") {
    hint.form = "json";
    return { path, hint, form: "whole", shape: CODEX_JSON_ROLLOUT };
  }
  return { path, hint, form: extension === "jsonl.zst" ? "zstd" : "lines" };
}

async function walk(
  dir: string,
  root: string,
  depth: number,
  refs: FileRef<CodexHint>[],
  warn: (m: string) => void,
  skip: (m: string) => void,
): Promise<void> {
  const entries = await listDir(dir, root, warn);
  const names = new Set(entries.map((e) => e.name));
  for (const entry of entries) {
    if (entry.isFile) {
      // While a rollout is being compressed both files exist; the plain one is read until then.
      if (entry.name.endsWith(".zst") && names.has(entry.name.slice(0, -4))) continue;
      const ref = rolloutRef(entry.path, root);
      if (ref) refs.push(ref);
      else skip(`${entry.path}: skipped: not named like a rollout (rollout-….jsonl)`);
    } else if (entry.isDirectory && depth < MAX_DEPTH) {
      try {
        await walk(entry.path, root, depth + 1, refs, warn, skip);
      } catch (error) {
        warn(`${entry.path}: skipped: cannot list: ${(error as Error).message}`);
      }
    }
  }
}

/**
 * The Codex line source.
 *
 * @example Discover rollouts
 * ```ts
 * import { codexSource } from "./source.ts";
 * const root = await Deno.makeTempDir();
 * console.log(await codexSource.discover(root, console.warn)); // []
 * ```
 */
export const codexSource: FileSource<CodexCarry, CodexHint> = {
  name: "codex",
  sourceType: "codex",
  label: "Codex rollouts",
  parser: parseCodex,

  async discover(root, warn, _files, skip = () => {}) {
    const refs: FileRef<CodexHint>[] = [];
    await walk(root, root, 0, refs, warn, skip);
    return refs;
  },

  async classify(path, root) {
    if (!isInside(path, root)) return null;
    const depth = path.slice(root.length).split("/").filter(Boolean).length;
    if (depth > MAX_DEPTH + 1) return null;
    const ref = rolloutRef(path, root);
    if (ref?.form === "zstd") {
      // Its original is still there: the compression is not finished.
      try {
        await Deno.stat(path.slice(0, -4));
        return null;
      } catch {
        return ref;
      }
    }
    return ref;
  },

  related(path) {
    const copy = compressedCopyOf(path);
    if (!copy) return [];
    try {
      return Deno.statSync(copy).isFile ? [copy] : [];
    } catch {
      return [];
    }
  },

  // Codex compresses an old rollout to `<name>.jsonl.zst`: the copy continues the rollout.
  continues(ref) {
    return ref.form === "zstd" ? ref.path.slice(0, -".zst".length) : undefined;
  },

  successor: compressedCopyOf,
};

/** Where Codex puts the compressed copy of a rollout. */
function compressedCopyOf(path: string): string | undefined {
  return path.endsWith(".jsonl") ? `${path}.zst` : undefined;
}
