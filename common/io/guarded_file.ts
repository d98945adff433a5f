/**
 * The one way a worker opens source data: {@link ReadScope.open}. Deno checks `--allow-read`
 * (and a narrowed Web Worker's `read` list) against the path it is handed, before symlinks are
 * resolved, and opens FIFOs and devices without complaint; so the permission layer alone does
 * not keep reads inside the data directory. Every read of every source goes through here:
 *
 * 1. the path is resolved (`realpath`) and must lie inside one of the scope's roots;
 * 2. the resolved path is opened without following a final symlink and without blocking (a FIFO
 *    opens at once instead of waiting for a writer);
 * 3. what was actually opened must be a regular file (`fstat`), and it must still be the file at
 *    the resolved path, reached through no symlink (`realpath` again, then `lstat`: same device
 *    and inode), so a link or directory swapped in between resolving and opening is caught;
 * 4. reads are positional on that handle, and whole-file reads have a size limit.
 *
 * Each step is a synchronous system call behind an asynchronous signature: workers read on an
 * engine thread of their own, and a round trip through Deno's I/O pool for each of the seven
 * calls per file kept that thread idle for a sixth of its time in a backfill
 * (docs/performance.md).
 *
 * Limits (Deno offers no `openat`): a hard link inside a root to a file elsewhere is a regular
 * file inside the root; and a directory inside a root that is flipped between a directory and a
 * symlink several times within the microseconds between steps 2 and 3 could still win the race.
 *
 * @module
 */
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { isAbsolute, relative, resolve } from "node:path";

/** What `fstat` says about an opened file. */
export interface FileStat {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
}

/**
 * A file a worker may not read; the message names the file and the reason.
 *
 * @example Tell a refusal from other errors
 * ```ts
 * import { ConfinementError, ReadScope } from "./guarded_file.ts";
 * const root = await Deno.makeTempDir();
 * await Deno.symlink("/etc/hostname", `${root}/link`);
 * try {
 *   await new ReadScope([root]).open(`${root}/link`);
 * } catch (error) {
 *   console.log(error instanceof ConfinementError); // true
 * }
 * ```
 */
export class ConfinementError extends Error {
  override name = "ConfinementError";
}

/**
 * The path resolves to a place outside every root (through a symlink).
 *
 * @example The message names both paths
 * ```ts
 * import { OutsideRootsError } from "./guarded_file.ts";
 * console.log(new OutsideRootsError("/d/x.jsonl", "/etc/passwd", ["/d"]).message);
 * ```
 */
export class OutsideRootsError extends ConfinementError {
  override name = "OutsideRootsError";
  /** Creates the error for `path`, which resolves to `target`. */
  constructor(path: string, target: string, roots: readonly string[]) {
    super(
      `${path}: not read: it resolves to ${target}, outside ${roots.join(", ")} ` +
        `(a worker reads only its own data)`,
    );
  }
}

/**
 * The path is a FIFO, a device, a socket or a directory: only regular files are read.
 *
 * @example Name what the file is
 * ```ts
 * import { NotRegularFileError } from "./guarded_file.ts";
 * console.log(new NotRegularFileError("/d/x.jsonl", "a FIFO").message);
 * ```
 */
export class NotRegularFileError extends ConfinementError {
  override name = "NotRegularFileError";
  /** Creates the error for `path`, which is `kind`. */
  constructor(path: string, kind: string) {
    super(`${path}: not read: it is ${kind}, not a regular file`);
  }
}

/**
 * The file at the path changed between resolving and opening it (a link or folder swapped in).
 *
 * @example The message says what happened
 * ```ts
 * import { FileSwappedError } from "./guarded_file.ts";
 * console.log(new FileSwappedError("/d/x.jsonl").message);
 * ```
 */
export class FileSwappedError extends ConfinementError {
  override name = "FileSwappedError";
  /** Creates the error for `path`. */
  constructor(path: string) {
    super(
      `${path}: not read: it was replaced while being opened (a link or folder swapped in); ` +
        `read again at its next change`,
    );
  }
}

/**
 * A file read whole is larger than its limit.
 *
 * @example Name the limit
 * ```ts
 * import { FileTooLargeError } from "./guarded_file.ts";
 * console.log(new FileTooLargeError("/d/a.meta.json", 5_000_000, 1_048_576).message);
 * ```
 */
export class FileTooLargeError extends ConfinementError {
  override name = "FileTooLargeError";
  /** Creates the error for `path` of `size` bytes against `limit`. */
  constructor(path: string, size: number, limit: number, what = "") {
    super(`${path}: not read: ${size} bytes is more than the limit of ${limit}${what}`);
  }
}

/** The largest side file (a `.meta.json`, `.project_root`, `projects.json`) read whole. */
export const SIDE_FILE_MAX_BYTES = 1024 * 1024;

/** `open(2)` flags: read only, never block (FIFOs), never follow a final symlink. */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;

function inside(path: string, root: string): boolean {
  const rel = relative(root, path);
  return rel === "" || (!rel.startsWith("..") && !isAbsolute(rel));
}

function kindOf(stat: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean }) {
  if (stat.isDirectory()) return "a directory";
  if (stat.isFIFO()) return "a FIFO";
  if (stat.isSocket()) return "a socket";
  return "a device";
}

/**
 * A regular file opened by {@link ReadScope.open}: its identity as opened, and positional reads.
 * Close it (or use `await using`) when done; idle files hold no handles.
 *
 * @example Read the first bytes
 * ```ts
 * import { ReadScope } from "./guarded_file.ts";
 * const root = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${root}/a.jsonl`, "{}\n");
 * await using file = await new ReadScope([root]).open(`${root}/a.jsonl`);
 * console.log(file.stat.size, await file.read(0, 2)); // 3 Uint8Array [123, 125]
 * ```
 */
export class GuardedFile implements AsyncDisposable {
  #fd: number | undefined;

  /** Wraps an opened file descriptor; use {@link ReadScope.open}. */
  constructor(
    readonly path: string,
    readonly realPath: string,
    readonly stat: FileStat,
    fd: number,
  ) {
    this.#fd = fd;
  }

  /** Reads up to `length` bytes at `offset` (fewer at the end of the file). */
  async read(offset: number, length: number): Promise<Uint8Array> {
    return await this.readInto(new Uint8Array(Math.max(0, length)), offset);
  }

  /**
   * Fills `buffer` from `offset` (less of it at the end of the file) and returns the part
   * filled: a reader that goes through a file chunk by chunk reuses one buffer.
   */
  // deno-lint-ignore require-await
  async readInto(buffer: Uint8Array, offset: number): Promise<Uint8Array> {
    const fd = this.#fd;
    if (fd === undefined) throw new Error(`${this.path}: read after close`);
    let filled = 0;
    while (filled < buffer.length) {
      const bytesRead = readSync(fd, buffer, filled, buffer.length - filled, offset + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return filled === buffer.length ? buffer : buffer.subarray(0, filled);
  }

  /**
   * The whole file, if it holds at most `maxBytes` (checked on the size as opened and again
   * while reading, since the file may grow); else {@link FileTooLargeError}.
   */
  async readAll(maxBytes: number, what = ""): Promise<Uint8Array> {
    if (this.stat.size > maxBytes) {
      throw new FileTooLargeError(this.path, this.stat.size, maxBytes, what);
    }
    // Sized by the file as opened (a limit of a gigabyte is not a buffer of one); a byte more
    // tells that it grew since, and then the buffer doubles, up to a byte past the limit.
    let buffer = new Uint8Array(this.stat.size + 1);
    let filled = (await this.readInto(buffer, 0)).length;
    while (filled === buffer.length && buffer.length <= maxBytes) {
      const larger = new Uint8Array(Math.min(maxBytes + 1, buffer.length * 2));
      larger.set(buffer);
      buffer = larger;
      filled += (await this.readInto(buffer.subarray(filled), filled)).length;
    }
    const bytes = buffer.subarray(0, filled);
    if (bytes.length > maxBytes) {
      throw new FileTooLargeError(this.path, bytes.length, maxBytes, what);
    }
    return bytes;
  }

  /** Closes the handle (again is harmless). */
  // deno-lint-ignore require-await
  async close(): Promise<void> {
    const fd = this.#fd;
    this.#fd = undefined;
    if (fd !== undefined) closeSync(fd);
  }

  /** Closes the handle. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * The places a worker may read: directories (its data directory and the folders beside it that
 * its source names) and single files (Gemini CLI's `projects.json`). Roots may be symlinks
 * themselves (a user's `~/.claude` on another disk): they are resolved, and re-resolved when a
 * path does not fit, since a root may appear after the worker started.
 *
 * @example Refuse a FIFO without blocking
 * ```ts
 * import { NotRegularFileError, ReadScope } from "./guarded_file.ts";
 * const root = await Deno.makeTempDir();
 * await new Deno.Command("mkfifo", { args: [`${root}/pipe`] }).output();
 * const error = await new ReadScope([root]).open(`${root}/pipe`).catch((e) => e);
 * console.log(error instanceof NotRegularFileError); // true
 * ```
 */
export class ReadScope {
  readonly roots: readonly string[];
  #resolved: string[] | undefined;

  /** A scope over `roots` (absolute paths; relative ones are resolved against the cwd). */
  constructor(roots: readonly string[]) {
    this.roots = roots.map((r) => resolve(r));
  }

  /** Whether `realPath` (already resolved) lies in a root; re-resolves the roots once if not. */
  #contains(realPath: string): boolean {
    if (this.#resolved && this.#resolved.some((r) => inside(realPath, r))) return true;
    const resolved: string[] = [];
    for (const root of this.roots) {
      try {
        resolved.push(Deno.realPathSync(root));
      } catch {
        resolved.push(root); // Not there (yet): only the path itself can be inside it.
      }
    }
    this.#resolved = resolved;
    return resolved.some((r) => inside(realPath, r));
  }

  /**
   * Where `path` really is, if inside a root; throws {@link OutsideRootsError} otherwise and
   * `Deno.errors.NotFound` when it does not exist.
   */
  // deno-lint-ignore require-await
  async resolve(path: string): Promise<string> {
    const real = Deno.realPathSync(path);
    if (!this.#contains(real)) throw new OutsideRootsError(path, real, this.roots);
    return real;
  }

  /**
   * Opens a regular file inside the roots (see the module doc for the checks). Throws a
   * {@link ConfinementError} for a file it may not read, `Deno.errors.NotFound` when it is gone.
   */
  async open(path: string): Promise<GuardedFile> {
    const real = await this.resolve(path);
    let fd: number;
    try {
      fd = openSync(real, OPEN_FLAGS);
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "ENOENT") throw new Deno.errors.NotFound(`${path}: gone before it was opened`);
      if (code === "ELOOP") throw new FileSwappedError(path);
      throw error;
    }
    try {
      const opened = fstatSync(fd);
      if (!opened.isFile()) throw new NotRegularFileError(path, kindOf(opened));
      // Still the file at the resolved path, reached through no link: what was opened is inside.
      let now: Deno.FileInfo | undefined;
      try {
        if (Deno.realPathSync(real) === real) now = Deno.lstatSync(real);
      } catch {
        now = undefined;
      }
      if (!now || now.ino !== opened.ino || now.dev !== opened.dev) {
        throw new FileSwappedError(path);
      }
      const stat: FileStat = {
        dev: opened.dev,
        ino: opened.ino,
        size: opened.size,
        mtimeMs: opened.mtimeMs,
      };
      return new GuardedFile(path, real, stat, fd);
    } catch (error) {
      closeSync(fd);
      throw error;
    }
  }

  /** A small file read whole, at most `maxBytes` ({@link SIDE_FILE_MAX_BYTES} by default). */
  async readFile(path: string, maxBytes: number = SIDE_FILE_MAX_BYTES): Promise<Uint8Array> {
    await using file = await this.open(path);
    return await file.readAll(maxBytes);
  }

  /** A small text file read whole (UTF-8), at most `maxBytes`. */
  async readTextFile(path: string, maxBytes: number = SIDE_FILE_MAX_BYTES): Promise<string> {
    return new TextDecoder().decode(await this.readFile(path, maxBytes));
  }
}
