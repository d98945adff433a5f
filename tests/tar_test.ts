/**
 * The `.tgz` reader against archives GNU tar writes in each of its formats (long names, large
 * members, links), and against archives that are cut short, not tar, or bombs.
 */
import { gzipSync } from "node:zlib";
import { listTar, readTarMember, TarError, TarLimitError } from "../common/io/tar.ts";
import { ReadScope } from "../common/io/guarded_file.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./assert.ts";

const LIMITS = { maxInflatedBytes: 1 << 30, maxMemberBytes: 1 << 30, chunkBytes: 1 << 16 };

/** What `fn` makes of the archive at `path`, opened as the export reader opens it. */
async function withArchive<T>(
  path: string,
  fn: (file: Awaited<ReturnType<ReadScope["open"]>>) => Promise<T>,
): Promise<T> {
  await using file = await new ReadScope([path.slice(0, path.lastIndexOf("/"))]).open(path);
  return await fn(file);
}

/** The error `fn` rejects with, which must be a `kind`. */
async function rejectsWith(fn: () => Promise<unknown>, kind: typeof TarError): Promise<Error> {
  const error = await assertRejects(fn);
  assert(error instanceof kind, `${error.name}: ${error.message}`);
  return error;
}

async function memberText(path: string, name: string, limits = LIMITS): Promise<string> {
  return await withArchive(path, async (file) => {
    const parts: string[] = [];
    const decoder = new TextDecoder();
    for await (const chunk of readTarMember(file, name, limits)) {
      parts.push(decoder.decode(chunk, { stream: true }));
    }
    return parts.join("");
  });
}

/** A ustar archive written here, for what GNU tar will not write: hostile names and sizes. */
function ustar(entries: { name: string; data: string; declared?: number }[]): Uint8Array {
  const blocks: Uint8Array[] = [];
  const encoder = new TextEncoder();
  for (const entry of entries) {
    const header = new Uint8Array(512);
    const put = (text: string, at: number) => header.set(encoder.encode(text), at);
    put(entry.name, 0);
    put("0000644\0", 100);
    put(`${(entry.declared ?? entry.data.length).toString(8).padStart(11, "0")}\0`, 124);
    put("0", 156);
    put("ustar\u000000", 257);
    put("        ", 148);
    const sum = header.reduce((n, b) => n + b, 0);
    put(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
    blocks.push(header);
    const data = encoder.encode(entry.data);
    const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
    padded.set(data);
    blocks.push(padded);
  }
  blocks.push(new Uint8Array(1024));
  const out = new Uint8Array(blocks.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const block of blocks) {
    out.set(block, at);
    at += block.length;
  }
  return out;
}

Deno.test("tar: every format GNU tar writes, as Takeout's .tgz may come", async (t) => {
  const dir = await Deno.makeTempDir();
  const src = `${dir}/src`;
  // A path of 150 bytes, past ustar's 100-byte name (and its prefix, with this last part).
  const deep = `Takeout/My Activity/${"Gemini Apps ".repeat(8).trim()}/${"é".repeat(20)}.json`;
  await Deno.mkdir(`${src}/${deep.slice(0, deep.lastIndexOf("/"))}`, { recursive: true });
  await Deno.writeTextFile(`${src}/${deep}`, '[{"title":"long"}]');
  const big = "0123456789abcdef".repeat(200_000); // 3.2 MB: members span many chunks
  await Deno.writeTextFile(`${src}/Takeout/big.json`, big);
  await Deno.writeTextFile(`${src}/Takeout/empty.json`, "");
  await Deno.symlink("big.json", `${src}/Takeout/link.json`);
  for (const format of ["gnu", "posix", "ustar", "oldgnu"]) {
    await t.step(format, async () => {
      const path = `${dir}/${format}.tgz`;
      // ustar cannot hold the long name: it gets only what it can.
      const names = format === "ustar" ? ["Takeout/big.json", "Takeout/empty.json"] : ["."];
      const made = await new Deno.Command("tar", {
        args: [`--format=${format}`, "-czf", path, "-C", src, ...names],
        stderr: "piped",
      }).output();
      assert(made.success, new TextDecoder().decode(made.stderr));
      const entries = await withArchive(path, (file) => listTar(file, LIMITS));
      const regular = entries.filter((e) => e.regular).map((e) => e.name).sort();
      assertEquals(
        regular,
        format === "ustar"
          ? ["Takeout/big.json", "Takeout/empty.json"]
          : [deep, "Takeout/big.json", "Takeout/empty.json"].sort(),
      );
      if (format !== "ustar") {
        assert(entries.some((e) => e.name === "Takeout/link.json" && !e.regular), "the link");
        assertEquals(await memberText(path, deep), '[{"title":"long"}]');
      }
      assertEquals(await memberText(path, "Takeout/big.json"), big);
      assertEquals(await memberText(path, "Takeout/empty.json"), "");
    });
  }
});

Deno.test("tar: cut short, not gzip, not tar, and bombs are refused, naming why", async (t) => {
  const dir = await Deno.makeTempDir();
  const whole = gzipSync(ustar([{ name: "a.json", data: "x".repeat(100_000) }]));
  await t.step("an archive cut short (a download that stopped)", async () => {
    await Deno.writeFile(`${dir}/cut.tgz`, whole.subarray(0, whole.length / 2));
    const error = await rejectsWith(
      () => withArchive(`${dir}/cut.tgz`, (file) => listTar(file, LIMITS)),
      TarError,
    );
    assertStringIncludes(error.message, "cut short");
  });
  await t.step("not gzip, and gzip of something that is not tar", async () => {
    await Deno.writeTextFile(`${dir}/text.tgz`, "not gzip at all");
    await rejectsWith(() => withArchive(`${dir}/text.tgz`, (f) => listTar(f, LIMITS)), TarError);
    await Deno.writeFile(`${dir}/notar.tgz`, gzipSync("a line of text\n".repeat(100)));
    const error = await rejectsWith(
      () => withArchive(`${dir}/notar.tgz`, (file) => listTar(file, LIMITS)),
      TarError,
    );
    assertStringIncludes(error.message, "not a tar header at byte 0");
  });
  await t.step("a gzip bomb stops at the limit on what the archive inflates to", async () => {
    // 64 MiB of zeros in about 64 KB.
    const bomb = gzipSync(ustar([{ name: "zeros", data: "\0".repeat(64 << 20) }]));
    assert(bomb.length < 200_000, `${bomb.length} bytes`);
    await Deno.writeFile(`${dir}/bomb.tgz`, bomb);
    const limits = { ...LIMITS, maxInflatedBytes: 8 << 20 };
    const error = await rejectsWith(
      () => withArchive(`${dir}/bomb.tgz`, (file) => listTar(file, limits)),
      TarLimitError,
    );
    assertStringIncludes(error.message, "worker.max_decompressed_bytes");
  });
  await t.step("a member declaring more than the member limit is not read", async () => {
    await Deno.writeFile(
      `${dir}/declared.tgz`,
      gzipSync(ustar([{ name: "huge.json", data: "[]" }, { name: "ok.json", data: "[1]" }])),
    );
    const limits = { ...LIMITS, maxMemberBytes: 2 };
    assertEquals(await memberText(`${dir}/declared.tgz`, "huge.json", limits), "[]");
    const error = await rejectsWith(
      () => memberText(`${dir}/declared.tgz`, "ok.json", limits),
      TarLimitError,
    );
    assertStringIncludes(error.message, "worker.max_export_member_bytes");
  });
  await t.step("an archive of more members than any export lists is refused", async () => {
    const many = Array.from({ length: 100_001 }, (_, i) => ({ name: `m${i}`, data: "" }));
    await Deno.writeFile(`${dir}/many.tgz`, gzipSync(ustar(many)));
    const error = await rejectsWith(
      () => withArchive(`${dir}/many.tgz`, (file) => listTar(file, LIMITS)),
      TarLimitError,
    );
    assertStringIncludes(error.message, "more than 100000 members");
  });
  await t.step("a name that climbs out is only a name", async () => {
    await Deno.writeFile(
      `${dir}/climb.tgz`,
      gzipSync(ustar([{ name: "../../climbed.json", data: "[]" }])),
    );
    const entries = await withArchive(`${dir}/climb.tgz`, (file) => listTar(file, LIMITS));
    assertEquals(entries.map((e) => e.name), ["../../climbed.json"]);
    assertEquals(await memberText(`${dir}/climb.tgz`, "../../climbed.json"), "[]");
    assert(!(await Deno.stat(`${dir}/../climbed.json`).catch(() => null)), "nothing written");
  });
});
