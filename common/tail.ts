/**
 * Reading append-only files safely (RELIABILITY §2, §3): file identity (device, inode, a hash of
 * the first bytes), the checks that decide whether a checkpoint still applies, and reading only
 * complete lines from an offset. Files are opened per read, so idle files hold no handles.
 *
 * @module
 */
import { sha256Hex } from "./hash.ts";
import type { UnitState } from "./state.ts";

/** How many leading bytes identify a file. */
export const HEAD_BYTES = 1024;
/** How many bytes before the checkpoint must still match. */
export const TAIL_BYTES = 64;

/** What `stat` says about a file. */
export interface FileStat {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
}

/**
 * Stats a file; `null` when it does not exist.
 *
 * @example Stat a file
 * ```ts
 * import { statFile } from "./tail.ts";
 * console.log(await statFile("/nonexistent")); // null
 * ```
 */
export async function statFile(path: string): Promise<FileStat | null> {
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) return null;
    return {
      dev: info.dev ?? 0,
      ino: info.ino ?? 0,
      size: info.size,
      mtimeMs: info.mtime?.getTime() ?? 0,
    };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
}

/**
 * Reads bytes `[from, to)` of a file (fewer if the file is shorter).
 *
 * @example Read the first bytes of a file
 * ```ts
 * import { readRange } from "./tail.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "hello\n");
 * console.log(new TextDecoder().decode(await readRange(path, 0, 5))); // hello
 * ```
 */
export async function readRange(path: string, from: number, to: number): Promise<Uint8Array> {
  using file = await Deno.open(path, { read: true });
  return await readAt(file, from, to - from);
}

/**
 * What the readers below read from: an open file, or a file's decompressed content held in
 * memory (a `.jsonl.zst` rollout), which is then read exactly like the file it was.
 */
type Readable = Deno.FsFile | Uint8Array;

/** Opens `path` unless its content is given; `using` closes what was opened. */
async function open(
  path: string,
  content?: Uint8Array,
): Promise<{ source: Readable } & Disposable> {
  if (content) return { source: content, [Symbol.dispose]() {} };
  const file = await Deno.open(path, { read: true });
  return { source: file, [Symbol.dispose]: () => file.close() };
}

async function readAt(file: Readable, offset: number, length: number): Promise<Uint8Array> {
  if (file instanceof Uint8Array) {
    return file.subarray(
      Math.min(offset, file.length),
      Math.min(offset + Math.max(0, length), file.length),
    );
  }
  const buffer = new Uint8Array(Math.max(0, length));
  await file.seek(offset, Deno.SeekMode.Start);
  let filled = 0;
  while (filled < buffer.length) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled === buffer.length ? buffer : buffer.subarray(0, filled);
}

/** Where reading of a file should resume, and why it starts over if it does. */
export interface ResumePoint {
  /** The unit state to continue from (offset 0 and no carry when starting over). */
  unit: UnitState;
  /** Why the old checkpoint was dropped, when it was. */
  resetReason?: string;
}

/**
 * Decides where to resume a file: the stored checkpoint if the file is still the same file and
 * unchanged before it, else offset 0 (ids are deterministic, so re-reading sends nothing twice
 * to an idempotent server). With `content`, the checks read it instead of the file (a `.zst`
 * file's decompressed bytes; `stat.size` is then their length).
 *
 * @example Resume a new file at 0
 * ```ts
 * import { resumePoint, statFile } from "./tail.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "{}\n");
 * const point = await resumePoint(path, (await statFile(path))!, undefined);
 * console.log(point.unit.offset); // 0
 * ```
 */
export async function resumePoint(
  path: string,
  stat: FileStat,
  known: UnitState | undefined,
  content?: Uint8Array,
): Promise<ResumePoint> {
  using handle = await open(path, content);
  const file = handle.source;
  const headLen = Math.min(stat.size, HEAD_BYTES);
  const head = await readAt(file, 0, headLen);
  const fresh: UnitState = {
    key: path,
    path,
    dev: stat.dev,
    ino: stat.ino,
    headLen: head.length,
    headHash: sha256Hex(head),
    offset: 0,
    line: 0,
    tailHash: "",
    carry: "",
    status: "active",
  };
  if (!known) return { unit: fresh };
  let reason: string | undefined;
  if (known.dev !== stat.dev || known.ino !== stat.ino) {
    reason = "the file was replaced (new inode)";
  } else if (stat.size < known.offset) {
    reason = `the file was truncated (${stat.size} bytes, checkpoint at ${known.offset})`;
  } else if (sha256Hex(head.subarray(0, known.headLen)) !== known.headHash) {
    reason = "the start of the file changed";
  } else if (known.offset > 0) {
    const from = Math.max(0, known.offset - TAIL_BYTES);
    if (sha256Hex(await readAt(file, from, known.offset - from)) !== known.tailHash) {
      reason = "the bytes before the checkpoint changed";
    }
  }
  if (reason) return { unit: fresh, resetReason: reason };
  // The head hash grows with the file until it covers HEAD_BYTES.
  return {
    unit: { ...known, path, status: "active", headLen: fresh.headLen, headHash: fresh.headHash },
  };
}

/**
 * The hash of the bytes just before `offset`, stored with a checkpoint.
 *
 * @example Hash the bytes before an offset
 * ```ts
 * import { tailHash } from "./tail.ts";
 * const hash = tailHash(new TextEncoder().encode("a\nb\n"), 4);
 * ```
 */
export function tailHash(bytes: Uint8Array, endInBytes: number): string {
  return sha256Hex(bytes.subarray(Math.max(0, endInBytes - TAIL_BYTES), endInBytes));
}

/** Complete lines read from a file. */
export interface LineChunk {
  /** Complete lines, each ending in `\n` (empty when only an over-long line was passed). */
  bytes: Uint8Array;
  /** Offset just after the last complete line read. */
  end: number;
  /** Number of lines covered, including a passed over-long one. */
  lines: number;
  /** Length of a line that exceeded the limit and was passed over, if any. */
  oversizedLine?: number;
  /** The 64 bytes before `end`, for the checkpoint's tail hash. */
  tail: string;
}

/**
 * Reads complete lines from `offset`: about `chunkBytes`, more if one line is longer, up to
 * `maxLineBytes` for a single line; a longer line is passed over (reported in
 * `oversizedLine`) once its end is written. A partial last line is never returned. `null` when
 * there is no complete line yet. With `content`, lines are read from it instead of the file.
 *
 * @example Read the complete lines of a file
 * ```ts
 * import { readCompleteLines } from "./tail.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "a\nb\npartial");
 * const chunk = await readCompleteLines(path, 0, 1 << 20, 1 << 20);
 * console.log(chunk?.end, chunk?.lines); // 4 2
 * ```
 */
export async function readCompleteLines(
  path: string,
  offset: number,
  chunkBytes: number,
  maxLineBytes: number,
  content?: Uint8Array,
): Promise<LineChunk | null> {
  using handle = await open(path, content);
  const file = handle.source;
  let bytes = await readAt(file, offset, chunkBytes);
  let last = bytes.lastIndexOf(10);
  // One line longer than a chunk: read on until it ends, within the limit.
  while (last === -1 && bytes.length > 0 && bytes.length < maxLineBytes + 1) {
    const more = await readAt(
      file,
      offset + bytes.length,
      Math.min(bytes.length, maxLineBytes + 1 - bytes.length),
    );
    if (more.length === 0) return null;
    const joined = new Uint8Array(bytes.length + more.length);
    joined.set(bytes);
    joined.set(more, bytes.length);
    bytes = joined;
    last = bytes.lastIndexOf(10);
  }
  if (last === -1 && bytes.length === 0) return null;
  if (last === -1) {
    // Over the limit: skip to the line's end without holding it in memory.
    let position = offset + bytes.length;
    const window = 1 << 20;
    while (true) {
      const more = await readAt(file, position, window);
      if (more.length === 0) return null;
      const nl = more.indexOf(10);
      if (nl !== -1) return await passOver(file, offset, position + nl + 1);
      position += more.length;
    }
  }
  let complete = bytes.subarray(0, last + 1);
  let lines = 0;
  let lineStart = 0;
  for (let i = complete.indexOf(10); i !== -1; i = complete.indexOf(10, i + 1)) {
    if (i + 1 - lineStart > maxLineBytes) {
      if (lineStart > 0) {
        // Stop before the over-long line; the next read passes it over on its own.
        complete = complete.subarray(0, lineStart);
        break;
      }
      return await passOver(file, offset, offset + i + 1);
    }
    lines++;
    lineStart = i + 1;
  }
  const end = offset + complete.length;
  const tail = complete.length >= TAIL_BYTES || offset === 0
    ? tailHash(complete, complete.length)
    : await tailHashAt(file, end);
  return { bytes: complete, end, lines, tail };
}

/** The chunk that passes over the over-long line `[offset, end)`. */
async function passOver(file: Readable, offset: number, end: number): Promise<LineChunk> {
  return {
    bytes: new Uint8Array(0),
    end,
    lines: 1,
    oversizedLine: end - offset,
    tail: await tailHashAt(file, end),
  };
}

async function tailHashAt(file: Readable, end: number): Promise<string> {
  const from = Math.max(0, end - TAIL_BYTES);
  return sha256Hex(await readAt(file, from, end - from));
}
