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

/** The bytes of a zip archive holding `members`. */
export function zipBytes(members: readonly ZipMember[]): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const m of members) {
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
    parts.push(new Uint8Array(local.buffer), name, body);
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
    entry.setUint32(42, offset, true);
    central.push(new Uint8Array(entry.buffer), name);
    offset += 30 + name.length + body.length;
  }
  const directorySize = central.reduce((n, p) => n + p.length, 0);
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, members.length, true);
  end.setUint16(10, members.length, true);
  end.setUint32(12, directorySize, true);
  end.setUint32(16, offset, true);
  return concatBytes([...parts, ...central, new Uint8Array(end.buffer)]);
}
