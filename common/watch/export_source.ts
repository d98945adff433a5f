/**
 * A source of exports: the files in a drop folder (and its subfolders, where an extracted export
 * lies) that its {@link ExportLayout} recognises, each read as an export (`FileRef.form`
 * `export`). In further folders the config lists (`~/Downloads`), only files named like the
 * source's export are touched.
 *
 * @module
 */
import { relative } from "node:path";
import type { Parser } from "../source.ts";
import type { SourceSpec } from "../source_spec.ts";
import type { EachRecord, ExportPlan, FileRef } from "../units/unit.ts";
import type { FileSource } from "./source_worker.ts";
import { isInside, listDir } from "./walk.ts";

/** How deep below a drop folder exports are looked for (`Takeout/My Activity/Gemini Apps/`). */
const MAX_DEPTH = 5;

/** What tells a source's exports apart. */
export interface ExportLayout<Carry, Hint> {
  /** The source's names (`name`, `sourceType`, `label`). */
  spec: Pick<SourceSpec, "name" | "sourceType" | "label">;
  parser: Parser<Carry, Hint>;
  /**
   * Whether the file at `rel` (relative to a folder) may be one of the source's exports: in
   * its own drop folder (`own`), any file its exports are made of; elsewhere, only archives
   * and files named as the source names them.
   */
  accepts(rel: string, own: boolean): boolean;
  /** The members to read, from the names the export holds (see {@link ExportPlan}). */
  plan(
    ref: FileRef<Hint>,
    names: readonly string[],
    readText: (name: string) => Promise<string>,
    eachRecord: EachRecord,
  ): Promise<ExportPlan<Hint>>;
  /** The hint of a file found (before its plan gives each member its own). */
  hint(path: string): Hint;
  /** An intake that fetches exports into a folder the source watches (see `FileSource`). */
  intake?: FileSource<Carry, Hint>["intake"];
}

/**
 * The file source of an export layout.
 *
 * @example Nothing in an empty folder
 * ```ts
 * import { exportSource } from "./export_source.ts";
 * const source = exportSource({
 *   spec: { name: "demo", sourceType: "gpt", label: "demo exports" }, parser: () => { throw new Error(); },
 *   accepts: (rel) => rel.endsWith(".zip"), plan: () => Promise.resolve({ members: [], missing: [] }),
 *   hint: () => ({}),
 * });
 * console.log(await source.discover(await Deno.makeTempDir(), console.warn)); // []
 * ```
 */
export function exportSource<Carry, Hint>(
  layout: ExportLayout<Carry, Hint>,
): FileSource<Carry, Hint> {
  const refOf = (path: string): FileRef<Hint> => ({
    path,
    hint: layout.hint(path),
    form: "export",
  });
  return {
    name: layout.spec.name,
    sourceType: layout.spec.sourceType,
    label: layout.spec.label,
    parser: layout.parser,
    exportPlan: (ref, names, readText, eachRecord) => layout.plan(ref, names, readText, eachRecord),
    intake: layout.intake,

    async discover(root, warn, _files, skip = () => {}, own = true) {
      const refs: FileRef<Hint>[] = [];
      const walk = async (dir: string, depth: number) => {
        for (const entry of await listDir(dir, root, warn)) {
          if (entry.isDirectory && depth < MAX_DEPTH) {
            try {
              await walk(entry.path, depth + 1);
            } catch (error) {
              warn(`${entry.path}: skipped: cannot list: ${(error as Error).message}`);
            }
          } else if (entry.isFile) {
            if (layout.accepts(relative(root, entry.path), own)) refs.push(refOf(entry.path));
            else skip(`${entry.path}: skipped: not part of ${layout.spec.label}`);
          }
        }
      };
      await walk(root, 0);
      return refs;
    },

    classify(path, root, _files, own = true) {
      const rel = relative(root, path);
      const ok = isInside(path, root) && rel.split("/").length <= MAX_DEPTH + 1 &&
        layout.accepts(rel, own);
      return Promise.resolve(ok ? refOf(path) : null);
    },
  };
}
