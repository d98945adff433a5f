/**
 * A gzip-compressed tar archive (`.tgz`, `.tar.gz`: the other archive type Google Takeout
 * offers) read in place as a stream. A tar has no directory, so listing its members reads it
 * through, and reading a member reads the archive from its start up to and through that member:
 * nothing is extracted, nothing held but a chunk. Member names are only names (`../x` is never a
 * path written to). Everything the archive inflates to is bounded by a limit, checked as it
 * inflates (a few KB of gzip can inflate to terabytes), and each member by its declared size.
 *
 * ustar and POSIX pax headers (`path`, `size`) and GNU long names are read; links, devices and
 * other special entries are listed as not regular and never read.
 *
 * @module
 */
import type { GuardedFile } from "./guarded_file.ts";
import { fileChunks, inflated, InflateError } from "./inflate.ts";
import { concatBytes } from "./bytes.ts";

/** The archive cannot be read as a gzip-compressed tar, or is cut short. */
export class TarError extends Error {
  override name = "TarError";
}

/** The archive inflates to more than its limit allows, or a member declares more. */
export class TarLimitError extends TarError {
  override name = "TarLimitError";
}

/** One member as its header describes it. */
export interface TarEntry {
  name: string;
  size: number;
  /** A regular file (the only kind read). */
  regular: boolean;
}

/** A member's header, or a piece of its content, in archive order. */
type TarEvent = { type: "entry"; entry: TarEntry } | { type: "data"; bytes: Uint8Array };

const BLOCK = 512;
const utf8 = new TextDecoder();

/**
 * The limits of a read: all the archive may inflate to (`worker.max_decompressed_bytes`) and
 * the most one member may hold (`worker.max_export_member_bytes`).
 */
export interface TarLimits {
  maxInflatedBytes: number;
  maxMemberBytes: number;
  chunkBytes: number;
}

/**
 * The members of the archive open in `file`, read through to its end (which a cut archive
 * fails: gzip checks its own end).
 *
 * @example Not gzip
 * ```ts
 * import { listTar, TarError } from "./tar.ts";
 * import { ReadScope } from "./guarded_file.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.tgz`, "not gzip");
 * await using file = await new ReadScope([dir]).open(`${dir}/a.tgz`);
 * const limits = { maxInflatedBytes: 1 << 20, maxMemberBytes: 1 << 20, chunkBytes: 1 << 16 };
 * await listTar(file, limits).catch((e) => console.log(e instanceof TarError)); // true
 * ```
 */
export async function listTar(file: GuardedFile, limits: TarLimits): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  for await (const event of tarEvents(file, limits)) {
    if (event.type !== "entry") continue;
    if (entries.length === MAX_ENTRIES) {
      throw new TarLimitError(`more than ${MAX_ENTRIES} members: not an export`);
    }
    entries.push(event.entry);
  }
  return entries;
}

/** As for a zip: far above any export's members; the list is held while the archive is read. */
const MAX_ENTRIES = 100_000;

/**
 * The content of the regular member `name`, in chunks (each valid until the next is asked
 * for); refused before it is read when it declares more than `limits.maxMemberBytes`.
 *
 * @example A member of a `.tgz`
 * ```ts
 * import { readTarMember } from "./tar.ts";
 * import { ReadScope } from "./guarded_file.ts";
 * import { gzipSync } from "node:zlib";
 * // A tar holding "a.txt" = "hi": a header block, a data block, two zero blocks.
 * const tar = new Uint8Array(2048);
 * const put = (text: string, at: number) => tar.set(new TextEncoder().encode(text), at);
 * put("a.txt", 0);
 * put("0000644\0", 100);
 * put("00000000002\0", 124);
 * put("0", 156);
 * put("ustar\u000000", 257);
 * put("        ", 148);
 * const sum = tar.subarray(0, 512).reduce((n, b) => n + b, 0);
 * put(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
 * put("hi", 512);
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/a.tgz`, gzipSync(tar));
 * await using file = await new ReadScope([dir]).open(`${dir}/a.tgz`);
 * const limits = { maxInflatedBytes: 1 << 20, maxMemberBytes: 1 << 20, chunkBytes: 1 << 16 };
 * for await (const chunk of readTarMember(file, "a.txt", limits)) {
 *   console.log(new TextDecoder().decode(chunk)); // hi
 * }
 * ```
 */
export async function* readTarMember(
  file: GuardedFile,
  name: string,
  limits: TarLimits,
): AsyncGenerator<Uint8Array> {
  let reading = false;
  for await (const event of tarEvents(file, limits)) {
    if (event.type === "data") {
      if (reading) yield event.bytes;
    } else if (reading) return;
    else if (event.entry.name === name && event.entry.regular) {
      if (event.entry.size > limits.maxMemberBytes) {
        throw new TarLimitError(
          `${name}: declares ${event.entry.size} bytes, over the limit of ` +
            `${limits.maxMemberBytes} (worker.max_export_member_bytes); not read`,
        );
      }
      reading = true;
    }
  }
  if (!reading) throw new TarError(`${name}: not in the archive`);
}

/** The archive's entries and their content, in order, within `limits.maxInflatedBytes`. */
async function* tarEvents(file: GuardedFile, limits: TarLimits): AsyncGenerator<TarEvent> {
  const raw = fileChunks(file, 0, file.stat.size, limits.chunkBytes);
  const header = new Uint8Array(BLOCK);
  let filled = 0;
  let remaining = 0;
  let padding = 0;
  let total = 0;
  let ended = false;
  /** A pax header's or a GNU long name's content, gathered for the entry after it. */
  let meta: { kind: number; parts: Uint8Array[] } | undefined;
  let next: { name?: string; size?: number } = {};
  try {
    for await (const chunk of inflated(raw, "gzip")) {
      total += chunk.length;
      if (total > limits.maxInflatedBytes) {
        throw new TarLimitError(
          `inflates to more than ${limits.maxInflatedBytes} bytes ` +
            `(worker.max_decompressed_bytes): a gzip bomb, or an archive larger than allowed`,
        );
      }
      for (let i = 0; i < chunk.length;) {
        if (remaining > 0) {
          const piece = chunk.subarray(i, i + Math.min(remaining, chunk.length - i));
          remaining -= piece.length;
          i += piece.length;
          if (meta) meta.parts.push(piece.slice());
          else yield { type: "data", bytes: piece };
          if (remaining === 0 && meta) {
            next = { ...next, ...metaOf(meta) };
            meta = undefined;
          }
        } else if (padding > 0 || ended) {
          // After the end marker comes only padding to the record size.
          const skip = ended ? chunk.length - i : Math.min(padding, chunk.length - i);
          if (!ended) padding -= skip;
          i += skip;
        } else {
          const n = Math.min(BLOCK - filled, chunk.length - i);
          header.set(chunk.subarray(i, i + n), filled);
          filled += n;
          i += n;
          if (filled < BLOCK) continue;
          filled = 0;
          if (header.every((b) => b === 0)) {
            ended = true;
            continue;
          }
          const h = parseHeader(header, total - chunk.length + i - BLOCK);
          remaining = h.size;
          padding = (BLOCK - h.size % BLOCK) % BLOCK;
          if (h.kind === PAX || h.kind === GNU_LONG_NAME || h.kind === PAX_GLOBAL) {
            if (h.size > MAX_META_BYTES) throw new TarError(`a header of ${h.size} bytes`);
            if (remaining > 0) meta = { kind: h.kind, parts: [] };
            continue;
          }
          const name = (next.name ?? h.name).replace(/^(\.\/)+/, "");
          const size = next.size ?? h.size;
          if (next.size !== undefined) {
            remaining = size;
            padding = (BLOCK - size % BLOCK) % BLOCK;
          }
          next = {};
          yield { type: "entry", entry: { name, size, regular: h.kind === 0x30 || h.kind === 0 } };
        }
      }
    }
  } catch (error) {
    if (error instanceof InflateError) throw new TarError(error.message);
    throw error;
  }
  if (remaining > 0 || filled > 0 || meta) {
    throw new TarError("the archive ends inside a member: cut short");
  }
}

const PAX = 0x78; // 'x'
const PAX_GLOBAL = 0x67; // 'g'
const GNU_LONG_NAME = 0x4c; // 'L'
/** The largest pax header or long name read (a path of this size is no export's). */
const MAX_META_BYTES = 1 << 20;

/** A header block: its name, size and type; throws when its checksum is wrong. */
function parseHeader(block: Uint8Array, at: number): { name: string; size: number; kind: number } {
  const stored = octal(block.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
  if (stored !== sum) throw new TarError(`not a tar header at byte ${at} (checksum)`);
  // base-256 (the high bit of its first byte set) for sizes of 8 GiB and over.
  let size = 0;
  if (block[124] & 0x80) {
    for (let i = 125; i < 136; i++) size = size * 256 + block[i];
  } else size = octal(block.subarray(124, 136));
  if (size < 0) throw new TarError(`a tar header at byte ${at} with no readable size`);
  const name = text(block.subarray(0, 100));
  // POSIX ustar keeps a path's start in `prefix` (GNU's own format has other fields there).
  const posix = text(block.subarray(257, 263)) === "ustar";
  const prefix = posix ? text(block.subarray(345, 500)) : "";
  return { name: prefix ? `${prefix}/${name}` : name, size, kind: block[156] };
}

function octal(field: Uint8Array): number {
  const digits = text(field).trim();
  return /^[0-7]+$/.test(digits) ? parseInt(digits, 8) : -1;
}

function text(field: Uint8Array): string {
  const end = field.indexOf(0);
  return utf8.decode(end < 0 ? field : field.subarray(0, end));
}

/** What a pax header (`path`, `size`) or a GNU long name says of the entry after it. */
function metaOf(meta: { kind: number; parts: Uint8Array[] }): { name?: string; size?: number } {
  const all = concatBytes(meta.parts);
  if (meta.kind === GNU_LONG_NAME) return { name: text(all) };
  if (meta.kind === PAX_GLOBAL) return {};
  const out: { name?: string; size?: number } = {};
  // Records: "<length> <key>=<value>\n", the length counting the whole record.
  for (let i = 0; i < all.length;) {
    const space = all.indexOf(0x20, i);
    const length = space < 0 ? NaN : Number(utf8.decode(all.subarray(i, space)));
    if (!(length > 0) || i + length > all.length) throw new TarError("a malformed pax header");
    const record = utf8.decode(all.subarray(space + 1, i + length - 1));
    const eq = record.indexOf("=");
    const [key, value] = [record.slice(0, eq), record.slice(eq + 1)];
    if (key === "path") out.name = value;
    if (key === "size" && /^\d+$/.test(value)) out.size = Number(value);
    i += length;
  }
  return out;
}
