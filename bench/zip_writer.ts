/**
 * Zip archives for tests, written byte by byte so that they can also lie: a member may declare
 * a size or CRC that is not its own, or carry any name.
 */
import { crc32, deflateRawSync } from "node:zlib";
import { concatBytes } from "../common/io/bytes.ts";

/** One member to write. */
export interface ZipMember {
  name: string;
  data: Uint8Array | string;
  /** Stored instead of deflated. */
  store?: boolean;
  /** The uncompressed size to declare instead of the real one. */
  declaredSize?: number;
  /** The CRC-32 to declare instead of the real one. */
  crc?: number;
}

const encoder = new TextEncoder();

/**
 * Writes a zip archive member by member through `write` (a file, or memory): each member's
 * local header and data at once, the central directory at the end. Members are 32-bit (the
 * archive may be larger than 4 GiB only in its count of bytes, not per member).
 */
export class ZipWriter {
  #central: Uint8Array[] = [];
  #offset = 0;
  #count = 0;

  /** Creates a writer that hands its bytes to `write`, in order. */
  constructor(readonly write: (bytes: Uint8Array) => Promise<void> | void) {}

  /** Adds a member. */
  async add(m: ZipMember): Promise<void> {
    for (const bytes of this.member(m)) await this.write(bytes);
  }

  /** Writes the central directory. */
  async close(): Promise<void> {
    for (const bytes of this.end()) await this.write(bytes);
  }

  /** A member's local header and data, its directory entry kept for {@link end}. */
  member(m: ZipMember): Uint8Array[] {
    const data = typeof m.data === "string" ? encoder.encode(m.data) : m.data;
    const body = m.store ? data : new Uint8Array(deflateRawSync(data));
    const name = encoder.encode(m.name);
    const crc = m.crc ?? crc32(data);
    const size = m.declaredSize ?? data.length;
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 20, true);
    local.setUint16(6, 0x800, true);
    local.setUint16(8, m.store ? 0 : 8, true);
    local.setUint32(14, crc, true);
    local.setUint32(18, body.length, true);
    local.setUint32(22, size, true);
    local.setUint16(26, name.length, true);
    const entry = new DataView(new ArrayBuffer(46));
    entry.setUint32(0, 0x02014b50, true);
    entry.setUint16(4, 20, true);
    entry.setUint16(6, 20, true);
    entry.setUint16(8, 0x800, true);
    entry.setUint16(10, m.store ? 0 : 8, true);
    entry.setUint32(16, crc, true);
    entry.setUint32(20, body.length, true);
    entry.setUint32(24, size, true);
    entry.setUint16(28, name.length, true);
    entry.setUint32(42, this.#offset, true);
    this.#central.push(new Uint8Array(entry.buffer), name);
    this.#offset += 30 + name.length + body.length;
    this.#count++;
    return [new Uint8Array(local.buffer), name, body];
  }

  /** The central directory and its end record. */
  end(): Uint8Array[] {
    const directorySize = this.#central.reduce((n, p) => n + p.length, 0);
    const end = new DataView(new ArrayBuffer(22));
    end.setUint32(0, 0x06054b50, true);
    end.setUint16(8, this.#count, true);
    end.setUint16(10, this.#count, true);
    end.setUint32(12, directorySize, true);
    end.setUint32(16, this.#offset, true);
    return [...this.#central, new Uint8Array(end.buffer)];
  }
}

/** The bytes of a zip archive holding `members`. */
export function zipBytes(members: readonly ZipMember[]): Uint8Array {
  const writer = new ZipWriter(() => {});
  return concatBytes([...members.flatMap((m) => writer.member(m)), ...writer.end()]);
}
