import { assert, assertEquals } from "./assert.ts";
import {
  type LineChunk,
  readCompleteLines as readLinesFrom,
  type ResumePoint,
  resumePoint as resumeFrom,
  statFile,
} from "../common/units/lines.ts";
import { ReadScope } from "../common/io/guarded_file.ts";
import type { UnitState } from "../common/state/state.ts";

const enc = new TextEncoder();

async function tempFile(text: string): Promise<string> {
  const path = await Deno.makeTempFile({ suffix: ".jsonl" });
  await Deno.writeTextFile(path, text);
  return path;
}

/** Complete lines of the file at `path`, read through the guarded open. */
async function readCompleteLines(
  path: string,
  offset: number,
  chunkBytes: number,
  maxLineBytes: number,
): Promise<LineChunk | null> {
  await using file = await new ReadScope([path]).open(path);
  return await readLinesFrom(file, offset, chunkBytes, maxLineBytes);
}

/** Where reading of the file at `path` resumes from `known`. */
async function resumePoint(
  path: string,
  _stat: unknown,
  known: UnitState | undefined,
): Promise<ResumePoint> {
  await using file = await new ReadScope([path]).open(path);
  return await resumeFrom(path, file, file.stat, file.stat.size, known);
}

/** The checkpoint a pipeline would store after reading all complete lines of `path`. */
async function checkpoint(path: string): Promise<UnitState> {
  const stat = (await statFile(path))!;
  const { unit } = await resumePoint(path, stat, undefined);
  const chunk = (await readCompleteLines(path, 0, 1 << 20, 1 << 20))!;
  return { ...unit, offset: chunk.end, line: chunk.lines, tailHash: chunk.tail };
}

Deno.test("tail: reading complete lines", async (t) => {
  await t.step("a partial last line is never returned", async () => {
    const path = await tempFile("a\nb\nhalf");
    const chunk = await readCompleteLines(path, 0, 1 << 20, 1 << 20);
    assertEquals(chunk?.end, 4);
    assertEquals(chunk?.lines, 2);
    assertEquals(await readCompleteLines(path, 4, 1 << 20, 1 << 20), null);
  });
  await t.step("an empty file has nothing", async () => {
    assertEquals(await readCompleteLines(await tempFile(""), 0, 1 << 20, 1 << 20), null);
  });
  await t.step("a line longer than a chunk is read whole", async () => {
    const long = "x".repeat(5000);
    const path = await tempFile(`${long}\nnext\n`);
    const chunk = await readCompleteLines(path, 0, 100, 1 << 20);
    // The read grows until a newline; every complete line read so far is returned.
    assertEquals(chunk?.end, 5006);
    assertEquals(chunk?.lines, 2);
  });
  await t.step("a line over the limit is passed over once complete", async () => {
    const path = await tempFile(`${"x".repeat(5000)}`);
    assertEquals(await readCompleteLines(path, 0, 100, 1000), null, "not before it ends");
    await Deno.writeTextFile(path, "\nok\n", { append: true });
    const skip = await readCompleteLines(path, 0, 100, 1000);
    assertEquals(skip?.oversizedLine, 5001);
    assertEquals(skip?.bytes.length, 0);
    const next = await readCompleteLines(path, skip!.end, 100, 1000);
    assertEquals(new TextDecoder().decode(next!.bytes), "ok\n");
  });
  await t.step("an over-long line inside a chunk ends the chunk before it", async () => {
    const path = await tempFile(`a\n${"y".repeat(3000)}\nb\n`);
    const first = await readCompleteLines(path, 0, 1 << 20, 1000);
    assertEquals(new TextDecoder().decode(first!.bytes), "a\n");
    const skip = await readCompleteLines(path, first!.end, 1 << 20, 1000);
    assertEquals(skip?.oversizedLine, 3001);
    const last = await readCompleteLines(path, skip!.end, 1 << 20, 1000);
    assertEquals(new TextDecoder().decode(last!.bytes), "b\n");
  });
});

/** A file in memory that counts the bytes each read returns. */
class CountingSource {
  bytes = new Uint8Array(0);
  returned = 0;
  append(text: string): void {
    const more = enc.encode(text);
    const joined = new Uint8Array(this.bytes.length + more.length);
    joined.set(this.bytes);
    joined.set(more, this.bytes.length);
    this.bytes = joined;
  }
  read(offset: number, length: number): Promise<Uint8Array> {
    const out = this.bytes.slice(offset, offset + length);
    this.returned += out.length;
    return Promise.resolve(out);
  }
}

Deno.test("lines: a line not ended is read once, however often it is checked", async (t) => {
  await t.step("over the limit: each check reads only what was added", async () => {
    const file = new CountingSource();
    file.append("x".repeat(50_000));
    const scan = { scanned: 0 };
    assertEquals(await readLinesFrom(file, 0, 100, 1000, scan), null);
    assertEquals(scan.scanned, 50_000);
    for (let i = 0; i < 5; i++) {
      file.append("x".repeat(10));
      file.returned = 0;
      assertEquals(await readLinesFrom(file, 0, 100, 1000, scan), null);
      assertEquals(file.returned, 10, "the check read only the 10 bytes added");
      assertEquals(scan.scanned, 50_000 + 10 * (i + 1));
    }
    file.append("\nok\n");
    file.returned = 0;
    const skip = await readLinesFrom(file, 0, 100, 1000, scan);
    assertEquals(skip?.oversizedLine, 50_051);
    assert(file.returned < 1000, `${file.returned} bytes read to pass it over`);
    const next = await readLinesFrom(file, skip!.end, 100, 1000);
    assertEquals(new TextDecoder().decode(next!.bytes), "ok\n");
  });
  await t.step("within the limit: the line is read whole once it ends", async () => {
    const file = new CountingSource();
    file.append('{"a":');
    const scan = { scanned: 0 };
    assertEquals(await readLinesFrom(file, 0, 100, 1000, scan), null);
    assertEquals(scan.scanned, 5);
    file.append("1}\n");
    const chunk = await readLinesFrom(file, 0, 100, 1000, scan);
    assertEquals(new TextDecoder().decode(chunk!.bytes), '{"a":1}\n');
    assertEquals(chunk?.lines, 1);
  });
});

Deno.test("tail: a checkpoint applies only to the same, unchanged file", async (t) => {
  await t.step("appended file: resume at the checkpoint", async () => {
    const path = await tempFile('{"a":1}\n{"b":2}\n');
    const known = await checkpoint(path);
    await Deno.writeTextFile(path, '{"c":3}\n', { append: true });
    const point = await resumePoint(path, (await statFile(path))!, known);
    assertEquals(point.resetReason, undefined);
    assertEquals(point.unit.offset, known.offset);
  });
  await t.step("truncated", async () => {
    const path = await tempFile('{"a":1}\n{"b":2}\n');
    const known = await checkpoint(path);
    await Deno.writeTextFile(path, "{}\n");
    const point = await resumePoint(path, (await statFile(path))!, known);
    assert(point.resetReason?.includes("truncated"));
    assertEquals(point.unit.offset, 0);
  });
  await t.step("replaced by another file (new inode)", async () => {
    const path = await tempFile('{"a":1}\n');
    const known = await checkpoint(path);
    const other = await tempFile('{"a":1}\n{"z":9}\n');
    await Deno.rename(other, path);
    const point = await resumePoint(path, (await statFile(path))!, known);
    assert(point.resetReason?.includes("new inode"));
  });
  await t.step("rewritten in place before the checkpoint (past the head)", async () => {
    const path = await tempFile(`"${"x".repeat(1500)}"\n{"b":2}\n`);
    const known = await checkpoint(path);
    const file = await Deno.open(path, { write: true });
    await file.seek(1505, Deno.SeekMode.Start);
    await file.write(enc.encode("X"));
    file.close();
    const point = await resumePoint(path, (await statFile(path))!, known);
    assert(point.resetReason?.includes("before the checkpoint"));
  });
  await t.step("rewritten at the start", async () => {
    const path = await tempFile('{"a":1}\n{"b":2}\n');
    const known = await checkpoint(path);
    const file = await Deno.open(path, { write: true });
    await file.write(enc.encode("["));
    file.close();
    const point = await resumePoint(path, (await statFile(path))!, known);
    assert(point.resetReason?.includes("start of the file"));
  });
  await t.step("a vanished file stats as null", async () => {
    const path = await tempFile("x\n");
    await Deno.remove(path);
    assertEquals(await statFile(path), null);
  });
});
