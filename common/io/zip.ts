/**
 * A zip archive read in place, member by member, as streams: the central directory is read
 * from the end of the file, and each member is inflated as it is read, its size bounded and its
 * CRC-32 checked when it ends. Nothing is ever extracted to disk, so a member's name (`../x`, an
 * absolute path) is only a name.
 *
 * Only what exports use is read: stored and deflated members, zip64 sizes and offsets, no
 * encryption, no multi-disk archives.
 *
 * @module
 */
import { crc32 } from "node:zlib";
import type { GuardedFile } from "./guarded_file.ts";
import { fileChunks, inflated, InflateError } from "./inflate.ts";
import { collectBytes } from "./bytes.ts";

/** The archive cannot be read as a zip, or a member is not what its directory says. */
export class ZipError extends Error {
  override name = "ZipError";
}

/** A member is larger, declared or inflated, than the limit allows (a zip bomb, or too big). */
export class ZipLimitError extends ZipError {
  override name = "ZipLimitError";
}

/** One member as the central directory describes it. */
export interface ZipEntry {
  name: string;
  /** 0 stored, 8 deflated. */
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  /** Where its local header starts. */
  headerOffset: number;
  directory: boolean;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;
const MAX_COMMENT = 0xffff;
/**
 * Far above any export's member count (an export with 10,000 images has about as many members);
 * a directory claiming more is not read: its entries are held in memory while the archive is.
 */
const MAX_ENTRIES = 100_000;
/**
 * The largest central directory read: it is read whole, and 100,000 entries with long names take
 * a few MB. A file that is mostly directory would otherwise be read into memory whole.
 */
const MAX_DIRECTORY_BYTES = 32 << 20;
const utf8 = new TextDecoder();
const latin1 = new TextDecoder("latin1");

/**
 * The members of the zip archive open in `file`.
 *
 * @example Not a zip
 * ```ts
 * import { readZipDirectory, ZipError } from "./zip.ts";
 * import { ReadScope } from "./guarded_file.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/a.zip`, "not a zip");
 * await using file = await new ReadScope([dir]).open(`${dir}/a.zip`);
 * await readZipDirectory(file).catch((e) => console.log(e instanceof ZipError)); // true
 * ```
 */
export async function readZipDirectory(file: GuardedFile): Promise<ZipEntry[]> {
  const size = file.stat.size;
  const tailLength = Math.min(size, 22 + MAX_COMMENT);
  const tail = await file.read(size - tailLength, tailLength);
  const view = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let at = -1;
  for (let i = tail.length - 22; i >= 0; i--) {
    if (view.getUint32(i, true) === EOCD && i + 22 + view.getUint16(i + 20, true) <= tail.length) {
      at = i;
      break;
    }
  }
  if (at < 0) {
    throw new ZipError("no end of central directory: not a zip archive, or cut short");
  }
  let entries = view.getUint16(at + 10, true);
  let directorySize = view.getUint32(at + 12, true);
  let directoryOffset = view.getUint32(at + 16, true);
  if (view.getUint16(at + 4, true) !== 0 || view.getUint16(at + 6, true) !== 0) {
    throw new ZipError("multi-disk archives are not supported");
  }
  if (at >= 20 && view.getUint32(at - 20, true) === ZIP64_LOCATOR) {
    const offset = Number(view.getBigUint64(at - 12, true));
    const record = await file.read(offset, 56);
    const r = new DataView(record.buffer, record.byteOffset, record.byteLength);
    if (record.length < 56 || r.getUint32(0, true) !== ZIP64_EOCD) {
      throw new ZipError("zip64 end of central directory missing where its locator points");
    }
    entries = Number(r.getBigUint64(32, true));
    directorySize = Number(r.getBigUint64(40, true));
    directoryOffset = Number(r.getBigUint64(48, true));
  }
  if (entries > MAX_ENTRIES || directoryOffset + directorySize > size) {
    throw new ZipError(
      `central directory out of bounds (${entries} entries, ${directorySize} bytes at ` +
        `${directoryOffset} in a file of ${size}): cut short or corrupt`,
    );
  }
  if (directorySize > MAX_DIRECTORY_BYTES) {
    throw new ZipError(
      `central directory of ${directorySize} bytes, over the limit of ${MAX_DIRECTORY_BYTES}: ` +
        `not read`,
    );
  }
  const directory = await file.read(directoryOffset, directorySize);
  if (directory.length < directorySize) throw new ZipError("central directory cut short");
  return checkApart(parseDirectory(directory, entries, size), directoryOffset);
}

/**
 * `entries`, refused when two members share bytes: each member's local header and data must end
 * before the next member's header and the central directory begin. A zip whose members overlap
 * (all pointing at one deflate stream, or each one's data holding the next) inflates to its
 * size times the number of members: a 10 MB file to terabytes, each member within every limit.
 * Archives that tools write never overlap.
 */
function checkApart(entries: ZipEntry[], directoryOffset: number): ZipEntry[] {
  const order = [...entries].sort((a, b) => a.headerOffset - b.headerOffset);
  for (let i = 0; i < order.length; i++) {
    const entry = order[i];
    const next = order[i + 1];
    // The least a member takes: its local header's fixed part and its compressed data.
    const end = entry.headerOffset + 30 + entry.compressedSize;
    if (end > (next?.headerOffset ?? directoryOffset)) {
      throw new ZipError(
        `${entry.name}: its data overlaps ${
          next ? `member ${next.name}` : "the central directory"
        }: members that share bytes are a zip bomb; not read`,
      );
    }
  }
  return entries;
}

function parseDirectory(bytes: Uint8Array, count: number, fileSize: number): ZipEntry[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: ZipEntry[] = [];
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + 46 > bytes.length || view.getUint32(p, true) !== CENTRAL) {
      throw new ZipError(`central directory entry ${n + 1} of ${count} is corrupt`);
    }
    const flags = view.getUint16(p + 8, true);
    const method = view.getUint16(p + 10, true);
    const crc = view.getUint32(p + 16, true);
    let compressedSize = view.getUint32(p + 20, true);
    let size = view.getUint32(p + 24, true);
    const nameLength = view.getUint16(p + 28, true);
    const extraLength = view.getUint16(p + 30, true);
    const commentLength = view.getUint16(p + 32, true);
    let headerOffset = view.getUint32(p + 42, true);
    const nameBytes = bytes.subarray(p + 46, p + 46 + nameLength);
    const name = (flags & 0x800 ? utf8 : latin1).decode(nameBytes);
    // Zip64: the sizes and offset that overflowed 32 bits are in extra field 1, in this order.
    let e = p + 46 + nameLength;
    const extraEnd = e + extraLength;
    while (e + 4 <= extraEnd) {
      const id = view.getUint16(e, true);
      const length = view.getUint16(e + 2, true);
      if (id === 1) {
        let q = e + 4;
        const next = () => {
          const v = q + 8 <= e + 4 + length ? Number(view.getBigUint64(q, true)) : -1;
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = next();
        if (compressedSize === 0xffffffff) compressedSize = next();
        if (headerOffset === 0xffffffff) headerOffset = next();
      }
      e += 4 + length;
    }
    if (flags & 1) throw new ZipError(`${name}: encrypted members are not supported`);
    if (size < 0 || compressedSize < 0 || headerOffset < 0 || headerOffset >= fileSize) {
      throw new ZipError(`${name}: sizes or offset out of bounds`);
    }
    out.push({
      name,
      method,
      crc,
      compressedSize,
      size,
      headerOffset,
      directory: name.endsWith("/"),
    });
    p = extraEnd + commentLength;
  }
  return out;
}

/**
 * The bytes of `entry`, inflated, in chunks: refused before reading when its declared size is
 * over `limit`, stopped as soon as it inflates beyond its declared size or `limit`, and checked
 * against its CRC-32 and size at its end. Chunks may share a buffer: each is valid until the
 * next one is asked for.
 *
 * @example Read a member
 * ```ts
 * import { readZipDirectory, readZipMember } from "./zip.ts";
 * import { ReadScope } from "./guarded_file.ts";
 * // A stored member "a.txt" holding "hi".
 * const zip = Uint8Array.from(atob(
 *   "UEsDBBQAAAAAAAAAIQCsKpPYAgAAAAIAAAAFAAAAYS50eHRoaVBLAQIUAxQAAAAAAAAAIQCsKpPYAgAAAAIAAAAFAAAAAAAAAAAAAACAAQAAAABhLnR4dFBLBQYAAAAAAQABADMAAAAlAAAAAAA=",
 * ), (c) => c.charCodeAt(0));
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/a.zip`, zip);
 * await using file = await new ReadScope([dir]).open(`${dir}/a.zip`);
 * const [entry] = await readZipDirectory(file);
 * for await (const chunk of readZipMember(file, entry, 1024)) console.log(new TextDecoder().decode(chunk)); // hi
 * ```
 */
export async function* readZipMember(
  file: GuardedFile,
  entry: ZipEntry,
  limit: number,
  chunkBytes = 1 << 20,
): AsyncGenerator<Uint8Array> {
  if (entry.size > limit) {
    throw new ZipLimitError(
      `${entry.name}: declares ${entry.size} bytes, over the limit of ${limit} ` +
        `(worker.max_export_member_bytes); not read`,
    );
  }
  if (entry.method !== 0 && entry.method !== 8) {
    throw new ZipError(`${entry.name}: compression method ${entry.method} is not supported`);
  }
  const header = await file.read(entry.headerOffset, 30);
  const h = new DataView(header.buffer, header.byteOffset, header.byteLength);
  if (header.length < 30 || h.getUint32(0, true) !== LOCAL) {
    throw new ZipError(`${entry.name}: local header missing: the archive is corrupt`);
  }
  const start = entry.headerOffset + 30 + h.getUint16(26, true) + h.getUint16(28, true);
  if (start + entry.compressedSize > file.stat.size) {
    throw new ZipError(`${entry.name}: its data runs past the end of the archive (cut short)`);
  }
  const raw = fileChunks(file, start, entry.compressedSize, chunkBytes);
  let crc = 0;
  let total = 0;
  try {
    for await (const chunk of entry.method === 0 ? raw : inflated(raw, "raw")) {
      total += chunk.length;
      if (total > entry.size) {
        throw new (entry.size >= limit ? ZipLimitError : ZipError)(
          `${entry.name}: inflates beyond its declared ${entry.size} bytes: corrupt or a zip bomb`,
        );
      }
      crc = crc32(chunk, crc);
      yield chunk;
    }
  } catch (error) {
    if (error instanceof InflateError) throw new ZipError(error.message);
    throw error;
  }
  if (total !== entry.size) {
    throw new ZipError(`${entry.name}: ${total} bytes where its directory says ${entry.size}`);
  }
  if ((crc >>> 0) !== entry.crc) {
    throw new ZipError(`${entry.name}: CRC-32 mismatch: the archive is corrupt`);
  }
}

/**
 * A small member whole, as text (side files: a manifest, a list of names).
 *
 * @example See {@link readZipMember}
 * ```ts
 * import { readZipText } from "./zip.ts";
 * console.log(typeof readZipText);
 * ```
 */
export async function readZipText(
  file: GuardedFile,
  entry: ZipEntry,
  limit: number,
): Promise<string> {
  return utf8.decode(await collectBytes(readZipMember(file, entry, limit)));
}
