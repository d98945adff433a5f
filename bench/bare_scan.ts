/**
 * The bare scan the benchmarks compare with, as a process of its own: read every `.jsonl` file
 * under a folder, split it into lines and `JSON.parse` each line (the least any parser of these
 * files must do). Prints `{"files", "lines", "bytes"}`.
 *
 * ```
 * deno run --allow-read bench/bare_scan.ts DIR
 * ```
 *
 * @module
 */

/**
 * Every `.jsonl` file under `dir`, depth first.
 *
 * @example The sessions of a corpus
 * ```ts
 * import { jsonlFiles } from "./bare_scan.ts";
 * console.log(jsonlFiles(await Deno.makeTempDir()).length); // 0
 * ```
 */
export function jsonlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...jsonlFiles(path));
    else if (entry.isFile && entry.name.endsWith(".jsonl")) out.push(path);
  }
  return out;
}

/**
 * Reads, splits and parses every line of `files`; returns the lines and bytes.
 *
 * @example Scan nothing
 * ```ts
 * import { bareScan } from "./bare_scan.ts";
 * console.log(bareScan([])); // { lines: 0, bytes: 0 }
 * ```
 */
export function bareScan(files: readonly string[]): { lines: number; bytes: number } {
  const decoder = new TextDecoder();
  let lines = 0;
  let bytes = 0;
  for (const path of files) {
    const data = Deno.readFileSync(path);
    bytes += data.length;
    for (const line of decoder.decode(data).split("\n")) {
      if (line) {
        JSON.parse(line);
        lines++;
      }
    }
  }
  return { lines, bytes };
}

if (import.meta.main) {
  const files = jsonlFiles(Deno.args[0] ?? ".");
  console.log(JSON.stringify({ files: files.length, ...bareScan(files) }));
}
