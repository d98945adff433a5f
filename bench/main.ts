/**
 * One table for one corpus, every figure measured in the same run: the bare scan (read, split,
 * `JSON.parse`, as a process of its own), each parser against a bare scan of its own files, a cold
 * `--once` backfill by the Claude Code worker (run as its binary runs under `start` and the
 * services, with their environment) into the embedded store and
 * into the reference server over loopback HTTP, the floor of any durable SQLite store under both
 * (bench/store_floor.ts), the worker's peak RSS and its RSS once idle and watching, and, with
 * `--ccusage`, ccusage's native build on the same files.
 *
 * ```
 * deno task bench [--mb 200] [--shape realistic|large] [--idle 30] [--ccusage]
 * ```
 *
 * Shapes ({@link CORPUS_SHAPES}): `realistic` (default), sessions of about 100 KB; `large`, about
 * 560 KB.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { CORPUS_SHAPES, writeCorpus } from "./corpus.ts";
import { bareScan } from "./bare_scan.ts";
import { writeCodexCorpus, writeGeminiCorpus } from "./sources_corpus.ts";
import { ensureCcusage } from "./ccusage.ts";
import { parseClaudeCode } from "../parsers/claude_code.ts";
import { parseCodex } from "../parsers/codex.ts";
import { parseGeminiCli } from "../parsers/gemini_cli.ts";
import {
  delay,
  median,
  processUsage,
  procStatusBytes,
  REPO,
  spawnWorker,
  startServer,
  workerArgs,
} from "../tests/helpers.ts";
import { PROCESS_ENV } from "../common/permissions.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    mb: { type: "string", default: "200" },
    shape: { type: "string", default: "realistic" },
    idle: { type: "string", default: "30" },
    ccusage: { type: "boolean", default: false },
  },
});
if (!(values.shape in CORPUS_SHAPES)) {
  console.error(
    `--shape: expected one of ${Object.keys(CORPUS_SHAPES).join(", ")}, got ${values.shape}`,
  );
  Deno.exit(2);
}

/** What one process cost: wall time, CPU time, peak RSS, and what it printed. */
interface ProcessFigures {
  seconds: number;
  /** utime + stime, as last read from `/proc` before the exit (within 50 ms of it). */
  cpu: number;
  peak: number;
  stdout: string;
}

/** Runs a command to its end, sampling its CPU time and peak RSS every 50 ms. */
async function measure(
  command: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<ProcessFigures> {
  const t0 = performance.now();
  const child = new Deno.Command(command, { args, env, stdout: "piped", stderr: "piped" }).spawn();
  const stdout = new Response(child.stdout).text();
  const stderr = new Response(child.stderr).text();
  const { peak, cpu } = await processUsage(child);
  const { code } = await child.status;
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`${command} ${args.join(" ")} exited ${code}: ${await stderr}`);
  return { seconds, cpu, peak, stdout: await stdout };
}

/** The time of one run of `fn` in this process, from a collected heap. */
function timed(fn: () => void): number {
  (globalThis as { gc?: () => void }).gc?.();
  const t0 = performance.now();
  fn();
  return (performance.now() - t0) / 1000;
}

const root = await Deno.makeTempDir({ prefix: "ai-sync-bench-" });
const projects = `${root}/projects`;
const corpus = await writeCorpus(projects, Number(values.mb) * 1e6, {
  turnsPerSession: CORPUS_SHAPES[values.shape],
  projects: 20,
  seed: 11,
});
const mb = corpus.bytes / 1e6;
console.log(
  `corpus (${values.shape}): ${corpus.files.length} sessions, ${corpus.lines} lines, ${
    mb.toFixed(1)
  } MB, ${Math.round(corpus.bytes / corpus.files.length / 1000)} KB per session`,
);

interface Row {
  run: string;
  seconds?: number;
  cpu?: number;
  mbps?: number;
  messagesPerSecond?: number;
  peak?: number;
  /** The bare scan's time for the same files. */
  base?: number;
  note?: string;
}
const rows: Row[] = [];

// The median of three: one run of half a second is at the mercy of the machine's moment.
const scans: ProcessFigures[] = [];
for (let i = 0; i < 3; i++) {
  scans.push(
    await measure(Deno.execPath(), ["run", "--allow-read", `${REPO}/bench/bare_scan.ts`, projects]),
  );
}
const scan = scans.sort((a, b) => a.seconds - b.seconds)[1];
rows.push({
  run: "bare scan: read + split + `JSON.parse` (its own process, the median of 3)",
  seconds: scan.seconds,
  cpu: scan.cpu,
  mbps: mb / scan.seconds,
  messagesPerSecond: corpus.lines / scan.seconds,
  peak: scan.peak,
  base: scan.seconds,
});

// Each parser against a bare scan of its own files, in this process (best of three each).
const codex = await writeCodexCorpus(`${root}/codex`, Math.min(100, mb / 2) * 1e6, {
  turns: 30,
  seed: 1,
});
const gemini = await writeGeminiCorpus(`${root}/gemini`, Math.min(100, mb / 2) * 1e6, {
  turns: 30,
  seed: 2,
});
const geminiJsonl = gemini.files.filter((f) => f.endsWith(".jsonl"));
const parsers: [string, string[], (path: string) => number][] = [
  ["Claude Code", corpus.files, (path) =>
    parseClaudeCode({
      bytes: Deno.readFileSync(path),
      firstLine: 1,
      carry: undefined,
      file: {
        path,
        hint: { kind: "session", sessionId: path.split("/").pop()!.slice(0, -6) },
        host: "bench",
      },
    }).messages],
  ["Codex", codex.files, (path) =>
    parseCodex({
      bytes: Deno.readFileSync(path),
      firstLine: 1,
      carry: undefined,
      file: { path, hint: {}, host: "bench" },
    }).messages],
  ["Gemini CLI (JSONL)", geminiJsonl, (path) =>
    parseGeminiCli({
      bytes: Deno.readFileSync(path),
      firstLine: 1,
      carry: undefined,
      file: { path, hint: { kind: "jsonl" }, host: "bench" },
    }).messages],
];
// Pairs of a bare scan and a parse, one after the other, the ratio of each pair; the median of
// seven: this machine's speed drifts by a third within minutes, which a ratio of two separate
// series would take for the parser's.
for (const [name, files, parse] of parsers) {
  const bytes = files.reduce((n, f) => n + Deno.statSync(f).size, 0);
  const pairs: { base: number; seconds: number }[] = [];
  let messages = 0;
  for (let i = 0; i < 7; i++) {
    const base = timed(() => bareScan(files));
    const seconds = timed(() => {
      messages = 0;
      for (const path of files) messages += parse(path);
    });
    pairs.push({ base, seconds });
  }
  const ratio = median(pairs.map((p) => p.base / p.seconds));
  const seconds = median(pairs.map((p) => p.seconds));
  rows.push({
    run: `${name} parser (in this process, ${(bytes / 1e6).toFixed(0)} MB of its own files)`,
    seconds,
    mbps: bytes / 1e6 / seconds,
    messagesPerSecond: messages / seconds,
    base: seconds * ratio,
    note: `the median of 7 pairs of a bare scan of the same files and a parse; throughput ` +
      `ratios ${pairs.map((p) => (p.base / p.seconds).toFixed(2)).join(", ")}`,
  });
}

/** A cold backfill, the worker started as `start` and the services start it. */
async function backfill(run: string, env: Record<string, string> = {}): Promise<void> {
  const state = await Deno.makeTempDir({ dir: root });
  const f = await measure(
    Deno.execPath(),
    workerArgs(["--projects-dir", projects, "--state-dir", state, "--once"]),
    { ...PROCESS_ENV, ...env },
  );
  const messages = JSON.parse(f.stdout).messages as number;
  rows.push({
    run,
    seconds: f.seconds,
    cpu: f.cpu,
    mbps: mb / f.seconds,
    messagesPerSecond: messages / f.seconds,
    peak: f.peak,
    base: scan.seconds,
  });
}
await backfill("cold `--once` backfill into the embedded store (worker process)");
const server = await startServer({ db: `${root}/server.db` });
await backfill("cold `--once` backfill into the reference server over loopback HTTP", {
  SYNC_SERVER_URL: server.url,
  SYNC_WORKER_TOKEN: server.token,
});
await server.stop();

// The floor under both backfills: the bare scan plus the least a durable SQLite store must do
// with each message (bench/store_floor.ts), with and without keeping each message once by its id.
// The median of three, each into a new database.
async function floor(run: string, args: string[]): Promise<void> {
  const runs: ProcessFigures[] = [];
  for (let i = 0; i < 3; i++) {
    const db = `${await Deno.makeTempDir({ dir: root })}/floor.db`;
    runs.push(
      await measure(Deno.execPath(), [
        "run",
        "--allow-read",
        "--allow-write",
        `${REPO}/bench/store_floor.ts`,
        projects,
        db,
        ...args,
      ]),
    );
  }
  const f = runs.sort((a, b) => a.seconds - b.seconds)[1];
  rows.push({
    run,
    seconds: f.seconds,
    cpu: f.cpu,
    mbps: mb / f.seconds,
    messagesPerSecond: JSON.parse(f.stdout).messages / f.seconds,
    peak: f.peak,
    base: scan.seconds,
  });
}
await floor(
  "floor: the bare scan + each message inserted into `node:sqlite` by its id (WAL, " +
    "`synchronous=FULL`, a commit per 2 MB; one thread, its own process, the median of 3)",
  [],
);
await floor("the same floor without the key on message ids (nothing keeps a message once)", [
  "--no-key",
]);

// Idle: the worker backfills while watching, then sits; its RSS after `--idle` seconds, started
// as `start` and the services start it (with PROCESS_ENV) and as a binary run by hand.
async function idle(run: string, env: Record<string, string>): Promise<void> {
  const state = await Deno.makeTempDir({ dir: root });
  const worker = spawnWorker(["--projects-dir", projects, "--state-dir", state], env);
  await worker.waitFor("backfill done", 3_600_000);
  await delay(Number(values.idle) * 1000);
  rows.push({ run, peak: procStatusBytes(worker.child.pid, "VmRSS") });
  await worker.stop();
}
const idleFor = `idle ${values.idle} s after its backfill (RSS then, in the peak RSS column)`;
await idle(`the worker watching these sessions, started by \`start\` or a service, ${idleFor}`, {
  ...PROCESS_ENV,
});
await idle(`the same, the binary run by hand (no \`PROCESS_ENV\`), ${idleFor}`, {});

if (values.ccusage) {
  const bin = await ensureCcusage();
  const f = await measure(bin, ["daily", "--json", "--offline"], { CLAUDE_CONFIG_DIR: root });
  rows.push({
    run: "ccusage (native build) `daily --json --offline`",
    seconds: f.seconds,
    cpu: f.cpu,
    mbps: mb / f.seconds,
    peak: f.peak,
    base: scan.seconds,
  });
}

const cell = (x: number | undefined, digits: number) => x === undefined ? "" : x.toFixed(digits);
console.log(
  `\n${mb.toFixed(1)} MB, ${corpus.files.length} sessions (${values.shape}). Parsers are ` +
    "compared with a bare scan of their own files; everything else with the bare scan process.\n",
);
console.log(
  "| run | wall s | CPU s | MB/s | messages/s | peak RSS MB | time ÷ bare scan | throughput ratio |",
);
console.log("|---|---|---|---|---|---|---|---|");
for (const r of rows) {
  console.log(
    `| ${r.run} | ${cell(r.seconds, 2)} | ${cell(r.cpu, 1)} | ${cell(r.mbps, 1)} | ${
      r.messagesPerSecond === undefined
        ? ""
        : Math.round(r.messagesPerSecond).toLocaleString("en-US")
    } | ${r.peak === undefined ? "" : (r.peak / 1e6).toFixed(0)} | ${
      r.base && r.seconds ? (r.seconds / r.base).toFixed(2) : ""
    } | ${r.base && r.seconds ? (r.base / r.seconds).toFixed(2) : ""} |`,
  );
}
const notes = rows.filter((r) => r.note).map((r) => `- ${r.run.split(" (")[0]}: ${r.note}`);
if (notes.length) console.log(`\n${notes.join("\n")}`);
await Deno.remove(root, { recursive: true });
