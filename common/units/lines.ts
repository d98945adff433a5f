/**
 * Reading append-only files safely (docs/delivery.md): file identity (device, inode, a hash of
 * the first bytes), the checks that decide whether a checkpoint still applies, and reading only
 * complete lines from an offset. Reads go through a {@link ByteSource}: a file opened by the
 * guarded open ({@link GuardedFile}), or the decompressed content of a `.zst` file as a
 * forward-only stream ({@link StreamSource}), which is then read exactly like the file it was.
 *
 * @module
 */
import { sha256Hex } from "../hash.ts";
import { type FileStat, NotRegularFileError } from "../io/guarded_file.ts";
import { isLineUnit, type LineUnit, type UnitState } from "./cursor.ts";

export type { FileStat } from "../io/guarded_file.ts";

/** How many leading bytes identify a file. */
export const HEAD_BYTES = 1024;
/** How many bytes before the checkpoint must still match. */
export const TAIL_BYTES = 64;

/** What the readers below read from: bytes `[offset, offset + length)`, fewer at the end. */
export interface ByteSource {
  read(offset: number, length: number): Promise<Uint8Array>;
}

/**
 * Stats a file (following links: only its size and times are learnt, nothing is read); `null`
 * when it does not exist. Anything but a regular file is a {@link NotRegularFileError}.
 *
 * @example Stat a file
 * ```ts
 * import { statFile } from "./lines.ts";
 * console.log(await statFile("/nonexistent")); // null
 * ```
 */
// deno-lint-ignore require-await
export async function statFile(path: string): Promise<FileStat | null> {
  let info: Deno.FileInfo;
  try {
    // Synchronous, as every read of source data (see guarded_file.ts): the engine has a thread
    // of its own, and a round trip through the I/O pool per file left it idle.
    info = Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  if (!info.isFile) {
    throw new NotRegularFileError(path, info.isDirectory ? "a directory" : "not a file");
  }
  return {
    dev: info.dev ?? 0,
    ino: info.ino ?? 0,
    size: info.size,
    mtimeMs: info.mtime?.getTime() ?? 0,
  };
}

/**
 * The decompressed content of a file as a {@link ByteSource} that only moves forward: chunks
 * are pulled as reads need them and dropped once behind the read position (the last
 * {@link TAIL_BYTES} are kept for the checkpoint's tail hash), so memory stays at about one read.
 *
 * @example Read a stream like a file
 * ```ts
 * import { StreamSource } from "./lines.ts";
 * async function* chunks() {
 *   yield new TextEncoder().encode("a\nb");
 *   yield new TextEncoder().encode("c\n");
 * }
 * const source = new StreamSource(chunks());
 * console.log(new TextDecoder().decode(await source.read(2, 3))); // "bc\n"
 * ```
 */
export class StreamSource implements ByteSource {
  #iterator: AsyncIterator<Uint8Array>;
  /** Chunks held, in order; the first starts at `#start`. */
  #chunks: Uint8Array[] = [];
  #start = 0;
  #held = 0;
  #ended = false;

  /** Reads `chunks` lazily. */
  constructor(chunks: AsyncIterable<Uint8Array>) {
    this.#iterator = chunks[Symbol.asyncIterator]();
  }

  /** Bytes `[offset, offset + length)`; `offset` may not go back more than TAIL_BYTES. */
  async read(offset: number, length: number): Promise<Uint8Array> {
    if (offset < this.#start) {
      throw new Error(`stream read at ${offset}, behind the bytes held from ${this.#start}`);
    }
    this.#drop(Math.max(0, offset - TAIL_BYTES));
    while (this.#start + this.#held < offset + length && !this.#ended) {
      const next = await this.#iterator.next();
      if (next.done) this.#ended = true;
      else if (next.value.length > 0) {
        this.#chunks.push(next.value);
        this.#held += next.value.length;
      }
    }
    const from = offset - this.#start;
    const to = Math.min(this.#held, from + Math.max(0, length));
    if (to <= from) return new Uint8Array(0);
    // Within one chunk: a view; across chunks: one copy of exactly the bytes asked for.
    let at = 0;
    for (const chunk of this.#chunks) {
      if (from >= at && to <= at + chunk.length) return chunk.subarray(from - at, to - at);
      if (from < at + chunk.length) break;
      at += chunk.length;
    }
    const out = new Uint8Array(to - from);
    let position = 0;
    for (const chunk of this.#chunks) {
      const lo = Math.max(from, position);
      const hi = Math.min(to, position + chunk.length);
      if (hi > lo) out.set(chunk.subarray(lo - position, hi - position), lo - from);
      position += chunk.length;
      if (position >= to) break;
    }
    return out;
  }

  /** Stops pulling (the producer's `finally` runs: a decoder is released). */
  async close(): Promise<void> {
    this.#ended = true;
    this.#chunks = [];
    await this.#iterator.return?.();
  }

  #drop(before: number): void {
    while (this.#chunks.length > 0 && this.#start + this.#chunks[0].length <= before) {
      this.#start += this.#chunks[0].length;
      this.#held -= this.#chunks[0].length;
      this.#chunks.shift();
    }
  }
}

/** Where reading of a file should resume, and why it starts over if it does. */
export interface ResumePoint {
  /** The unit state to continue from (offset 0 and no carry when starting over). */
  unit: LineUnit;
  /** Why the old checkpoint was dropped, when it was. */
  resetReason?: string;
}

/**
 * Decides where to resume a file: the stored checkpoint if the file is still the same file and
 * unchanged before it, else offset 0 (ids are deterministic, so re-reading sends nothing twice
 * to an idempotent server). `size` is the content's length when known (a stream's is not: the
 * tail read then tells whether the content reaches the checkpoint). `kind` is the kind of unit
 * read: an appended file, or the content of a compressed one.
 *
 * @example Resume a new file at 0
 * ```ts
 * import { ReadScope } from "../io/guarded_file.ts";
 * import { resumePoint } from "./lines.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "{}\n");
 * await using file = await new ReadScope([path]).open(path);
 * const point = await resumePoint(path, file, file.stat, file.stat.size, undefined);
 * console.log(point.unit.offset); // 0
 * ```
 */
export async function resumePoint(
  path: string,
  source: ByteSource,
  identity: { dev: number; ino: number },
  size: number | undefined,
  known: UnitState | undefined,
  kind: LineUnit["kind"] = "appended",
): Promise<ResumePoint> {
  const head = await source.read(0, size === undefined ? HEAD_BYTES : Math.min(size, HEAD_BYTES));
  const fresh: LineUnit = {
    key: path,
    path,
    kind,
    dev: identity.dev,
    ino: identity.ino,
    headLen: head.length,
    headHash: sha256Hex(head),
    offset: 0,
    line: 0,
    tailHash: "",
    carry: "",
    status: "active",
  };
  if (!known) return { unit: fresh };
  if (!isLineUnit(known)) {
    return { unit: fresh, resetReason: "it was read as a whole document before" };
  }
  let reason: string | undefined;
  if (known.dev !== identity.dev || known.ino !== identity.ino) {
    reason = "the file was replaced (new inode)";
  } else if (size !== undefined && size < known.offset) {
    reason = `the file was truncated (${size} bytes, checkpoint at ${known.offset})`;
  } else if (sha256Hex(head.subarray(0, known.headLen)) !== known.headHash) {
    reason = "the start of the file changed";
  } else if (known.offset > 0) {
    const from = Math.max(0, known.offset - TAIL_BYTES);
    const tail = await source.read(from, known.offset - from);
    if (tail.length < known.offset - from) {
      reason = `the content ends before the checkpoint at ${known.offset}`;
    } else if (sha256Hex(tail) !== known.tailHash) {
      reason = "the bytes before the checkpoint changed";
    }
  }
  if (reason) return { unit: fresh, resetReason: reason };
  // The head hash grows with the file until it covers HEAD_BYTES.
  return {
    unit: {
      ...known,
      kind,
      path,
      status: "active",
      headLen: fresh.headLen,
      headHash: fresh.headHash,
    },
  };
}

/**
 * The hash of the bytes just before `endInBytes`, stored with a checkpoint.
 *
 * @example Hash the bytes before an offset
 * ```ts
 * import { tailHash } from "./lines.ts";
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
 * How far the line that starts at a read's offset is known to hold no newline: a read with no
 * complete line yet leaves in `scanned` where it stopped looking, and a later read handed it
 * looks on from there. A line still being written (or never ended) is then read once in all,
 * not again at every check: 512 MB without a newline, growing by a byte every 100 ms, kept a
 * worker busy 9.5 s of every 15.
 */
export interface LineScan {
  scanned: number;
}

/**
 * Reads complete lines from `offset`: about `chunkBytes`, more if one line is longer, up to
 * `maxLineBytes` for a single line; a longer line is passed over (reported in
 * `oversizedLine`) once its end is written. A partial last line is never returned. `null` when
 * there is no complete line yet; `scan` then says how far the line was read (see
 * {@link LineScan}).
 *
 * @example Read the complete lines of a file
 * ```ts
 * import { ReadScope } from "../io/guarded_file.ts";
 * import { readCompleteLines } from "./lines.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "a\nb\npartial");
 * await using file = await new ReadScope([path]).open(path);
 * const chunk = await readCompleteLines(file, 0, 1 << 20, 1 << 20);
 * console.log(chunk?.end, chunk?.lines); // 4 2
 * ```
 */
export async function readCompleteLines(
  file: ByteSource,
  offset: number,
  chunkBytes: number,
  maxLineBytes: number,
  scan: LineScan = { scanned: offset },
): Promise<LineChunk | null> {
  if (scan.scanned > offset) {
    // The line was read up to `scanned` before: look for its end from there.
    const end = await newlineFrom(file, scan.scanned, scan);
    if (end === -1) return null;
    if (end + 1 - offset > maxLineBytes) return await passOver(file, offset, end + 1);
  }
  let bytes = await file.read(offset, chunkBytes);
  let last = bytes.lastIndexOf(10);
  // One line longer than a chunk: read on until it ends, within the limit.
  while (last === -1 && bytes.length > 0 && bytes.length < maxLineBytes + 1) {
    const more = await file.read(
      offset + bytes.length,
      Math.min(bytes.length, maxLineBytes + 1 - bytes.length),
    );
    if (more.length === 0) {
      scan.scanned = offset + bytes.length;
      return null;
    }
    const joined = new Uint8Array(bytes.length + more.length);
    joined.set(bytes);
    joined.set(more, bytes.length);
    bytes = joined;
    last = bytes.lastIndexOf(10);
  }
  if (last === -1 && bytes.length === 0) return null;
  if (last === -1) {
    // Over the limit: skip to the line's end without holding it in memory.
    scan.scanned = offset + bytes.length;
    const end = await newlineFrom(file, scan.scanned, scan);
    return end === -1 ? null : await passOver(file, offset, end + 1);
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

/**
 * The number of newlines in `bytes` (the complete lines of a chunk).
 *
 * @example Two complete lines
 * ```ts
 * import { countLines } from "./lines.ts";
 * countLines(new TextEncoder().encode("a\nb\n")); // 2
 * ```
 */
export function countLines(bytes: Uint8Array): number {
  let lines = 0;
  for (let i = bytes.indexOf(10); i !== -1; i = bytes.indexOf(10, i + 1)) lines++;
  return lines;
}

/**
 * The position of the first newline at or after `position`, read a window at a time; -1 when
 * there is none yet, with `scan.scanned` (if given) moved to where the content ends.
 */
async function newlineFrom(file: ByteSource, position: number, scan?: LineScan): Promise<number> {
  const window = 1 << 20;
  while (true) {
    const more = await file.read(position, window);
    const nl = more.indexOf(10);
    if (nl !== -1) return position + nl;
    position += more.length;
    if (scan) scan.scanned = position;
    if (more.length === 0) return -1;
  }
}

/** The chunk that passes over the over-long line `[offset, end)`. */
async function passOver(file: ByteSource, offset: number, end: number): Promise<LineChunk> {
  return {
    bytes: new Uint8Array(0),
    end,
    lines: 1,
    oversizedLine: end - offset,
    tail: await tailHashAt(file, end),
  };
}

/**
 * The checkpoint's tail hash at `end`, read from the source.
 *
 * @example Hash the bytes before an offset of an open file
 * ```ts
 * import { ReadScope } from "../io/guarded_file.ts";
 * import { tailHashAt } from "./lines.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "a\nb\n");
 * await using file = await new ReadScope([path]).open(path);
 * console.log((await tailHashAt(file, 4)).length); // 64
 * ```
 */
export async function tailHashAt(file: ByteSource, end: number): Promise<string> {
  const from = Math.max(0, end - TAIL_BYTES);
  return sha256Hex(await file.read(from, end - from));
}
