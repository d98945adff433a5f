/**
 * A ChatGPT export imported whole, as a user's first import would be, against a baseline measured
 * in the same run: a bare `JSON.parse` of the same conversations files (read from disk, one shard
 * at a time), the least any importer must do.
 *
 * 1. cold import: the openai worker's `--once` into the embedded store, its binary's permission
 *    flags, started as `start` and the services start it (their environment) and again as the
 *    binary run by hand; wall time and peak RSS (VmHWM) of the whole process; the throughput ratio
 *    is the baseline's time over the import's (≥ 0.5: at least half the speed of a bare parse);
 * 2. the same export again (nothing new): its time against the first import's; then a newer
 *    export (every twentieth conversation grown by two turns, one shard of new ones), whose
 *    unchanged conversations are passed over unparsed;
 * 3. for scale, inflating the zip's members and checking their CRC-32 as the import reads them,
 *    with nothing parsed: what reading a zip costs before any of the import's work, here about as
 *    long as the baseline itself (the import inflates each member twice: a check pass first).
 *
 * ```
 * deno task bench:exports [--mb 1000] [--shard 100]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { gptConversation } from "./export_corpus.ts";
import { ZipWriter } from "./zip_writer.ts";
import { peakRss, workerArgs } from "../tests/helpers.ts";
import { PROCESS_ENV } from "../common/permissions.ts";
import { readZipDirectory, readZipMember } from "../common/io/zip.ts";
import { ReadScope } from "../common/io/guarded_file.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { mb: { type: "string", default: "1000" }, shard: { type: "string", default: "100" } },
});
const targetBytes = Number(values.mb) * 1e6;
const shardSize = Number(values.shard);

const root = await Deno.makeTempDir({ prefix: "ai-sync-exports-bench-" });
const drop = `${root}/drop`;
const shards = `${root}/shards`;
await Deno.mkdir(drop);
await Deno.mkdir(shards);

/**
 * Writes the export: shards of `shardSize` conversations, in a zip and beside it for the baseline.
 * A `newer` one, as the same user's next export: every twentieth conversation has grown by two
 * turns, and one shard of new ones follows (it is not written beside).
 */
async function writeExport(
  newer?: { shards: number },
): Promise<{ bytes: number; conversations: number; messages: number; shards: number }> {
  const zipPath = `${drop}/${"b".repeat(64)}-2026-${newer ? "12-06" : "11-29"}-10-00-00.zip`;
  const file = await Deno.open(zipPath, { write: true, create: true, truncate: true });
  const zip = new ZipWriter(async (bytes) => {
    for (let at = 0; at < bytes.length;) at += await file.write(bytes.subarray(at));
  });
  let bytes = 0;
  let conversations = 0;
  let messages = 0;
  const files: { path: string }[] = [];
  let shard = 0;
  for (; newer ? shard < newer.shards + 1 : bytes < targetBytes; shard++) {
    const list = [];
    for (let i = 0; i < shardSize; i++, conversations++) {
      // Realistic shapes: most conversations short, some long, a third with a regenerated answer.
      const grown = newer && conversations % 20 === 0 ? 2 : 0;
      const turns = 4 + (conversations * 7919) % 37 + grown;
      messages += turns + (conversations % 3 === 0 ? 1 : 0);
      list.push(gptConversation(
        `6925e174-${String(conversations).padStart(4, "0").slice(-4)}-8000-8000-${
          String(conversations).padStart(12, "0")
        }`,
        {
          turns,
          sharded: true,
          regenerated: conversations % 3 === 0,
          words: 60,
          seed: conversations,
        },
      ));
    }
    const name = `conversations-${String(shard).padStart(3, "0")}.json`;
    const text = new TextEncoder().encode(JSON.stringify(list, null, 2));
    bytes += text.length;
    files.push({ path: name });
    if (!newer) await Deno.writeFile(`${shards}/${name}`, text);
    await zip.add({ name, data: text });
  }
  await zip.add({
    name: "export_manifest.json",
    data: JSON.stringify({ version: 1, export_files: files }),
  });
  await zip.close();
  file.close();
  const past = new Date(Date.now() - 60_000);
  await Deno.utime(zipPath, past, past);
  return { bytes, conversations, messages, shards: shard };
}

/** The baseline: read each shard and `JSON.parse` it, in a process of its own. */
async function baseline(): Promise<number> {
  const code = `
    const t = performance.now();
    for (const e of [...Deno.readDirSync(${JSON.stringify(shards)})]) {
      JSON.parse(Deno.readTextFileSync(${JSON.stringify(shards)} + "/" + e.name));
    }
    console.log((performance.now() - t) / 1000);`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
  }).output();
  return Number(new TextDecoder().decode(out.stdout).trim());
}

/** Inflating the export's members with their CRC check (the zip reader the import uses), in process. */
async function inflateOnly(): Promise<number> {
  const zipPath = `${drop}/${[...Deno.readDirSync(drop)][0].name}`;
  const started = performance.now();
  await using file = await new ReadScope([drop]).open(zipPath);
  for (const entry of await readZipDirectory(file)) {
    for await (const _ of readZipMember(file, entry, Infinity));
  }
  return (performance.now() - started) / 1000;
}

/**
 * One `--once` import into the state (and embedded store) under `state`, started as `start` and
 * the services start it (their environment, `PROCESS_ENV`), or `byHand` without it.
 */
async function importOnce(
  state = `${root}/state`,
  byHand = false,
): Promise<{ seconds: number; peak: number; summary: string }> {
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: workerArgs(["--data-dir", drop, "--state-dir", state, "--once", "--json"], "openai"),
    env: byHand ? {} : { ...PROCESS_ENV },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const peak = await peakRss(child);
  const out = await child.output();
  const seconds = (performance.now() - started) / 1000;
  if (!out.success) throw new Error(`the import failed: ${new TextDecoder().decode(out.stdout)}`);
  return { seconds, peak, summary: new TextDecoder().decode(out.stdout).trim() };
}

const corpus = await writeExport();
const zipBytes = [...Deno.readDirSync(drop)].reduce(
  (n, e) => n + Deno.statSync(`${drop}/${e.name}`).size,
  0,
);
console.log(
  `export: ${(corpus.bytes / 1e6).toFixed(0)} MB of conversations JSON in ` +
    `${Math.ceil(corpus.conversations / shardSize)} shards (zip ${
      (zipBytes / 1e6).toFixed(0)
    } MB), ` +
    `${corpus.conversations} conversations, ${corpus.messages} messages`,
);
const bare = await baseline();
const inflated = await inflateOnly();
const first = await importOnce();
const byHand = await importOnce(`${root}/state-by-hand`, true);
const second = await importOnce();
const sent = JSON.parse(first.summary.split("\n").at(-1)!).messages;
if (sent !== corpus.messages) throw new Error(`sent ${sent} messages, expected ${corpus.messages}`);
const v2 = await writeExport({ shards: corpus.shards });
const newer = await importOnce();
const newerSent = JSON.parse(newer.summary.split("\n").at(-1)!).messages;
const expectedNew = v2.messages - corpus.messages;
if (newerSent !== expectedNew) {
  throw new Error(`the newer export sent ${newerSent} messages, expected ${expectedNew}`);
}
const ratio = bare / first.seconds;
console.log(`| run | time | peak RSS | messages/s | ratio to the bare parse |
|---|---|---|---|---|
| bare read + JSON.parse of the shards | ${bare.toFixed(2)} s | | | 1 |
| inflating the zip's members with their CRC-32, nothing parsed (in process) | ${
  inflated.toFixed(2)
} s | | | ${(bare / inflated).toFixed(2)} |
| first import (--once, embedded store, started as \`start\` and the services start it) | ${
  first.seconds.toFixed(2)
} s | ${(first.peak / 1e6).toFixed(0)} MB | ${(corpus.messages / first.seconds).toFixed(0)} | ${
  ratio.toFixed(2)
} (goal ≥ 0.5) |
| the same first import, the binary run by hand (no \`PROCESS_ENV\`) | ${
  byHand.seconds.toFixed(2)
} s | ${(byHand.peak / 1e6).toFixed(0)} MB | ${(corpus.messages / byHand.seconds).toFixed(0)} | ${
  (bare / byHand.seconds).toFixed(2)
} |
| the same export again | ${second.seconds.toFixed(2)} s | ${
  (second.peak / 1e6).toFixed(0)
} MB | | ${(second.seconds / first.seconds).toFixed(2)} of the first (goal < 0.25) |
| a newer export: every 20th conversation grown, ${shardSize} new (${newerSent} messages sent) | ${
  newer.seconds.toFixed(2)
} s | ${(newer.peak / 1e6).toFixed(0)} MB | | ${
  (newer.seconds / first.seconds).toFixed(2)
} of the first |`);
await Deno.remove(root, { recursive: true });
