/**
 * Throughput benchmarks, each reported against a baseline measured in the same run: reading
 * every file, splitting it into lines and `JSON.parse`-ing each line (the least any parser must
 * do).
 *
 * ```
 * deno task bench                      # 200 MB corpus
 * BENCH_MB=50 deno task bench          # smaller corpus
 * ```
 *
 * Groups: `parse` (the Claude Code parser alone), `backfill` (a cold `--once` backfill by the
 * worker process, started as its binary runs, into the embedded store, and into the reference
 * server as a separate process over loopback HTTP). MB/s and messages/s are printed at the end.
 *
 * @module
 */
import { writeCorpus } from "./corpus.ts";
import { parseClaudeCode } from "../parsers/claude_code.ts";
import { startServer, workerArgs } from "../tests/helpers.ts";

const MB = Number(Deno.env.get("BENCH_MB") ?? "200");
const root = await Deno.makeTempDir({ prefix: "ai-sync-bench-" });
const corpus = await writeCorpus(root, MB * 1e6, { turnsPerSession: 40, projects: 20, seed: 11 });
const files = corpus.files.map((path) => ({
  path,
  sessionId: path.split("/").pop()!.replace(".jsonl", ""),
}));
console.log(
  `corpus: ${files.length} sessions, ${corpus.lines} lines, ${
    (corpus.bytes / 1e6).toFixed(1)
  } MB in ${root}`,
);

const figures: { name: string; seconds: number[]; messages: number; calls: number }[] = [];
/** Records a timed iteration; the first call of each bench is its warmup and is left out. */
function record(name: string, seconds: number, messages: number): void {
  let f = figures.find((x) => x.name === name);
  if (!f) figures.push(f = { name, seconds: [], messages, calls: 0 });
  if (f.calls++ > 0) f.seconds.push(seconds);
}

function baseline(): number {
  let n = 0;
  const decoder = new TextDecoder();
  for (const { path } of files) {
    const text = decoder.decode(Deno.readFileSync(path));
    for (const line of text.split("\n")) {
      if (line) {
        JSON.parse(line);
        n++;
      }
    }
  }
  return n;
}

/** The production defaults, as an empty config file gives them. */
/** Runs the worker as its binary runs, `--once` over the corpus; returns the messages it sent. */
async function backfill(stateDir: string, env: Record<string, string> = {}): Promise<number> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: workerArgs(["--projects-dir", root, "--state-dir", stateDir, "--once"]),
    env,
    stdout: "piped",
    stderr: "null",
  }).output();
  if (out.code !== 0) throw new Error(`worker exited ${out.code}`);
  return JSON.parse(new TextDecoder().decode(out.stdout)).messages;
}

const options = { n: 5, warmup: 1 };
/** With `--v8-flags=--expose-gc`: each timed iteration starts from a collected heap, so one
 * benchmark's garbage does not slow the next. */
const collect = (globalThis as { gc?: () => void }).gc ?? (() => {});

Deno.bench({
  name: "baseline: read + split + JSON.parse",
  group: "parse",
  baseline: true,
  ...options,
  fn: (b) => {
    collect();
    b.start();
    const t0 = performance.now();
    const n = baseline();
    b.end();
    record("baseline: read + split + JSON.parse", (performance.now() - t0) / 1000, n);
  },
});

Deno.bench({
  name: "claude_code parser",
  group: "parse",
  ...options,
  fn: (b) => {
    collect();
    b.start();
    const t0 = performance.now();
    let n = 0;
    for (const { path, sessionId } of files) {
      const out = parseClaudeCode({
        bytes: Deno.readFileSync(path),
        firstLine: 1,
        carry: undefined,
        file: { path, hint: { kind: "session" as const, sessionId }, host: "bench" },
      });
      n += out.messages;
    }
    record("claude_code parser", (performance.now() - t0) / 1000, n);
    b.end();
  },
});

Deno.bench({
  name: "baseline: read + split + JSON.parse ",
  group: "backfill",
  baseline: true,
  ...options,
  fn: (b) => {
    collect();
    b.start();
    baseline();
    b.end();
  },
});

Deno.bench({
  name: "cold backfill into the embedded store (worker process)",
  group: "backfill",
  ...options,
  async fn(b) {
    const dir = await Deno.makeTempDir();
    b.start();
    const t0 = performance.now();
    const n = await backfill(dir);
    record(
      "cold backfill into the embedded store (worker process)",
      (performance.now() - t0) / 1000,
      n,
    );
    b.end();
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.bench({
  name: "cold backfill into the reference server over loopback HTTP (worker and server processes)",
  group: "backfill",
  ...options,
  async fn(b) {
    const dir = await Deno.makeTempDir();
    const server = await startServer({ db: `${dir}/server.db` });
    b.start();
    const t0 = performance.now();
    const n = await backfill(dir, { SYNC_SERVER_URL: server.url, SYNC_WORKER_TOKEN: server.token });
    record(
      "cold backfill into the reference server over loopback HTTP (worker and server processes)",
      (performance.now() - t0) / 1000,
      n,
    );
    b.end();
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  },
});

globalThis.addEventListener("unload", () => {
  const base = figures.find((f) => f.name.startsWith("baseline"));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log(`\n${(corpus.bytes / 1e6).toFixed(1)} MB corpus, ${files.length} sessions`);
  console.log("| run | s (mean) | MB/s | messages/s | throughput ratio to baseline |");
  console.log("|---|---|---|---|---|");
  for (const f of figures) {
    const s = mean(f.seconds);
    const ratio = base ? (mean(base.seconds) / s).toFixed(2) : "-";
    console.log(
      `| ${f.name} | ${s.toFixed(2)} | ${(corpus.bytes / 1e6 / s).toFixed(1)} | ${
        Math.round(f.messages / s)
      } | ${ratio} |`,
    );
  }
  Deno.removeSync(root, { recursive: true });
});
