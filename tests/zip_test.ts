/**
 * The zip reader: members streamed and checked, and archives that lie (a bomb, a wrong CRC, a
 * cut-short file, names that climb out) refused with what is wrong.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./assert.ts";
import { zipBytes, type ZipMember } from "../bench/zip_writer.ts";
import { ReadScope } from "../common/io/guarded_file.ts";
import {
  readZipDirectory,
  readZipMember,
  type ZipEntry,
  ZipError,
  ZipLimitError,
} from "../common/io/zip.ts";

const decoder = new TextDecoder();

async function withZip<T>(
  bytes: Uint8Array,
  fn: (file: Awaited<ReturnType<ReadScope["open"]>>) => Promise<T>,
): Promise<T> {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/a.zip`, bytes);
    await using file = await new ReadScope([dir]).open(`${dir}/a.zip`);
    return await fn(file);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function readAll(
  file: Awaited<ReturnType<ReadScope["open"]>>,
  entry: ZipEntry,
  limit = 1 << 30,
): Promise<string> {
  let out = "";
  for await (const chunk of readZipMember(file, entry, limit, 1024)) out += decoder.decode(chunk);
  return out;
}

Deno.test("zip: members are listed and read as streams, stored or deflated", async () => {
  const big = "x".repeat(300_000) + "end";
  const members: ZipMember[] = [
    { name: "a.json", data: "[1,2]", store: true },
    { name: "dir/b.json", data: big },
    { name: "../../etc/evil", data: "only a name" },
  ];
  await withZip(zipBytes(members), async (file) => {
    const entries = await readZipDirectory(file);
    assertEquals(entries.map((e) => e.name), ["a.json", "dir/b.json", "../../etc/evil"]);
    assertEquals(await readAll(file, entries[0]), "[1,2]");
    assertEquals(await readAll(file, entries[1]), big);
    // A name that climbs out of a folder is only a name: nothing is ever extracted.
    assertEquals(await readAll(file, entries[2]), "only a name");
  });
});

Deno.test("zip: a member that compresses 1,000 times comes out in chunks of at most a MiB", async () => {
  // 256 MiB of zeros deflate to about 256 KB: read in pieces of a MiB, each came back as one
  // chunk of 256 MiB (of a gigabyte for a 1 MiB piece), held whole.
  const zeros = new Uint8Array(256 * 1024 * 1024);
  await withZip(zipBytes([{ name: "zeros.json", data: zeros }]), async (file) => {
    const [entry] = await readZipDirectory(file);
    assert(entry.compressedSize < 1_000_000, `${entry.compressedSize} bytes compressed`);
    let total = 0;
    let largest = 0;
    for await (const chunk of readZipMember(file, entry, 2 ** 40, 1 << 20)) {
      total += chunk.length;
      largest = Math.max(largest, chunk.length);
    }
    assertEquals(total, zeros.length);
    assert(largest <= 1024 * 1024, `a chunk of ${largest} bytes`);
  });
});

Deno.test("zip: archives that lie are refused with what is wrong", async (t) => {
  await t.step("a wrong CRC-32 is found when the member ends", async () => {
    await withZip(zipBytes([{ name: "a.json", data: "[1,2,3]", crc: 1234 }]), async (file) => {
      const [entry] = await readZipDirectory(file);
      const error = await assertRejects(() => readAll(file, entry));
      assert(error instanceof ZipError);
      assertStringIncludes(error.message, "CRC-32 mismatch");
    });
  });
  await t.step("a member declaring more than the limit is not read at all", async () => {
    const bytes = zipBytes([{ name: "bomb.json", data: "[]", declaredSize: 5_000_000_000 }]);
    await withZip(bytes, async (file) => {
      const [entry] = await readZipDirectory(file);
      const error = await assertRejects(() => readAll(file, entry, 1 << 20));
      assert(error instanceof ZipLimitError, error.message);
      assertStringIncludes(error.message, "worker.max_export_member_bytes");
    });
  });
  await t.step("a member inflating beyond what it declares is stopped there", async () => {
    // 50 MB of zeros in a few KB, declaring 1 KB: a zip bomb that lies about its size.
    const bomb = new Uint8Array(50_000_000);
    await withZip(
      zipBytes([{ name: "bomb.json", data: bomb, declaredSize: 1024 }]),
      async (file) => {
        const [entry] = await readZipDirectory(file);
        assert(file.stat.size < 100_000, `${file.stat.size}`);
        const error = await assertRejects(() => readAll(file, entry, 1 << 20));
        assertStringIncludes(error.message, "inflates beyond its declared 1024 bytes");
      },
    );
  });
  await t.step("members that share bytes (an overlapping zip bomb) are refused", async () => {
    // Where each central directory entry is: the end record gives the directory's offset.
    const entriesOf = (bytes: Uint8Array) => {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const at: number[] = [];
      let p = view.getUint32(bytes.length - 6, true);
      for (let n = view.getUint16(bytes.length - 12, true); n > 0; n--) {
        at.push(p);
        p += 46 + view.getUint16(p + 28, true) + view.getUint16(p + 30, true) +
          view.getUint16(p + 32, true);
      }
      return { view, at };
    };
    const members = [
      { name: "conversations-000.json", data: " ".repeat(100_000) + "[]" },
      { name: "conversations-001.json", data: "[]" },
    ];
    const cases: [string, (view: DataView, at: number[]) => void, string][] = [
      [
        "two names for one member's bytes",
        (view, at) => view.setUint32(at[1] + 42, view.getUint32(at[0] + 42, true), true),
        "conversations-00",
      ],
      [
        "one member's data holding the next (the bomb that quotes each next header)",
        (view, at) => view.setUint32(at[0] + 20, view.getUint32(at[1] + 42, true) + 100, true),
        "conversations-000.json: its data overlaps member conversations-001.json",
      ],
      [
        "the last member's data running into the directory",
        (view, at) => view.setUint32(at[1] + 20, 1_000, true),
        "conversations-001.json: its data overlaps the central directory",
      ],
    ];
    for (const [what, patch, message] of cases) {
      const bytes = zipBytes(members);
      const { view, at } = entriesOf(bytes);
      patch(view, at);
      await withZip(bytes, async (file) => {
        const error = await assertRejects(() => readZipDirectory(file));
        assert(error instanceof ZipError, `${what}: ${error.message}`);
        assertStringIncludes(error.message, message);
        assertStringIncludes(error.message, "zip bomb");
      });
    }
    // The same archive untouched is read.
    await withZip(zipBytes(members), async (file) => {
      assertEquals((await readZipDirectory(file)).length, 2);
    });
  });
  await t.step("a cut-short archive has no directory", async () => {
    const whole = zipBytes([{ name: "a.json", data: "x".repeat(10_000) }]);
    await withZip(whole.subarray(0, whole.length - 30), async (file) => {
      const error = await assertRejects(() => readZipDirectory(file));
      assertStringIncludes(error.message, "no end of central directory");
    });
  });
  await t.step("a directory pointing past the end of the file is refused", async () => {
    const bytes = zipBytes([{ name: "a.json", data: "[]" }]);
    const view = new DataView(bytes.buffer);
    view.setUint32(bytes.length - 6, 0x7fffffff, true);
    await withZip(bytes, async (file) => {
      const error = await assertRejects(() => readZipDirectory(file));
      assertStringIncludes(error.message, "out of bounds");
    });
  });
  await t.step("a directory too large or too many entries is not read", async () => {
    // The end record after 40 MiB of nothing (a sparse file), claiming all of it as directory.
    const end = (entries: number, size: number) => {
      const record = new Uint8Array(22);
      const view = new DataView(record.buffer);
      view.setUint32(0, 0x06054b50, true);
      view.setUint16(8, Math.min(entries, 0xffff), true);
      view.setUint16(10, Math.min(entries, 0xffff), true);
      view.setUint32(12, size, true);
      return record;
    };
    const dir = await Deno.makeTempDir();
    try {
      const path = `${dir}/a.zip`;
      const big = 40 << 20;
      await Deno.writeFile(path, new Uint8Array(0));
      await Deno.truncate(path, big);
      await Deno.writeFile(path, end(1, big), { append: true });
      await using file = await new ReadScope([dir]).open(path);
      const error = await assertRejects(() => readZipDirectory(file));
      assertStringIncludes(error.message, `central directory of ${big} bytes, over the limit`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
    // A zip64 end record claiming 200,000 members (a 32-bit one holds at most 65,535).
    const many = new Uint8Array(56 + 20 + 22);
    const view = new DataView(many.buffer);
    view.setUint32(0, 0x06064b50, true);
    view.setBigUint64(32, 200_000n, true);
    view.setUint32(56, 0x07064b50, true);
    view.setUint32(76, 0x06054b50, true);
    await withZip(many, async (file) => {
      const error = await assertRejects(() => readZipDirectory(file));
      assertStringIncludes(error.message, "out of bounds (200000 entries");
    });
  });
  await t.step("not a zip at all", async () => {
    await withZip(new TextEncoder().encode("just text, no archive"), async (file) => {
      assert((await assertRejects(() => readZipDirectory(file))) instanceof ZipError);
    });
  });
});
