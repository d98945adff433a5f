/**
 * Directory listing that stays inside a root: a symlink is followed only when its target is
 * inside the root too, because Deno checks permissions on the link's path, not its target, so
 * following an outside link would read outside the worker's data directory.
 *
 * @module
 */
import { isAbsolute, join, relative } from "node:path";

/** One entry of {@link listDir}, with links resolved. */
export interface DirEntry {
  name: string;
  path: string;
  isFile: boolean;
  isDirectory: boolean;
}

/**
 * Whether `path` lies inside `root` (or is it).
 *
 * @example Check containment
 * ```ts
 * import { isInside } from "./walk.ts";
 * isInside("/a/b/c", "/a/b") && !isInside("/a/x", "/a/b");
 * ```
 */
export function isInside(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

/**
 * Lists a directory; links to targets outside `root` are left out and reported to `warn`.
 *
 * @example List a directory
 * ```ts
 * import { listDir } from "./walk.ts";
 * const dir = await Deno.makeTempDir();
 * console.log(await listDir(dir, dir, () => {}));
 * ```
 */
export async function listDir(
  dir: string,
  root: string,
  warn: (m: string) => void,
): Promise<DirEntry[]> {
  const entries: DirEntry[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (!entry.isSymlink) {
      entries.push({
        name: entry.name,
        path,
        isFile: entry.isFile,
        isDirectory: entry.isDirectory,
      });
      continue;
    }
    try {
      const target = await Deno.realPath(path);
      if (!isInside(target, await Deno.realPath(root))) {
        warn(
          `${path}: skipped: it links to ${target}, outside ${root} (the worker may only read its data directory)`,
        );
        continue;
      }
      const info = await Deno.stat(path);
      entries.push({ name: entry.name, path, isFile: info.isFile, isDirectory: info.isDirectory });
    } catch (error) {
      warn(`${path}: skipped: cannot resolve link: ${(error as Error).message}`);
    }
  }
  return entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}
