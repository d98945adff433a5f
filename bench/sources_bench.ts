/**
 * Codex and Gemini CLI parser throughput, each against a baseline measured in the same run:
 * reading every file, splitting it into lines and `JSON.parse`-ing each line (the least any
 * parser must do); and one update of a rewritten 10 MB Gemini CLI JSON session against a plain
 * `JSON.parse` of that document.
 *
 * ```
 * deno task bench:sources                 # 100 MB per corpus
 * BENCH_MB=20 deno task bench:sources     # smaller corpora
 * ```
 *
 * @module
 */
import { type CodexCarry, parseCodex } from "../parsers/codex.ts";
import { type GeminiCarry, parseGeminiCli } from "../parsers/gemini_cli.ts";
import type { ParseOutput } from "../common/source.ts";
import {
  GEMINI_TURN_BYTES,
  geminiDocument,
  writeCodexCorpus,
  writeGeminiCorpus,
} from "./sources_corpus.ts";

const MB = Number(Deno.env.get("BENCH_MB") ?? "100");
const root = await Deno.makeTempDir({ prefix: "ai-sync-sources-bench-" });
const codex = await writeCodexCorpus(`${root}/codex`, MB * 1e6, { turns: 30, seed: 1 });
const gemini = await writeGeminiCorpus(`${root}/gemini`, MB * 1e6, { turns: 30, seed: 2 });
const geminiJsonl = gemini.files.filter((f) => f.endsWith(".jsonl"));
const jsonlBytes = geminiJsonl.reduce((n, f) => n + Deno.statSync(f).size, 0);

/** A 10 MB legacy session and 100 later versions, each one turn longer with a new last answer. */
const UPDATES = 100;
const TURNS = Math.round(10e6 / GEMINI_TURN_BYTES);
// Kept as one string: the session's objects would be live through every timing, for each
// collection of the parsers' heaps to trace.
const fullText = JSON.stringify(geminiDocument({
  sessionId: "be5c0000-0000-4000-8000-000000000001",
  turns: TURNS + UPDATES,
  seed: 3,
}));
/**
 * Version `i` of the session, made when asked for (outside the timed part): the 101 versions held
 * at once were 1 GB outside the heap, which slowed the parsers measured beside them (the Codex
 * parser measured 0.41 of its baseline here against 0.6 in `deno task bench`).
 */
function version(i: number): Uint8Array {
  const full = JSON.parse(fullText);
  const messages = full.messages.slice(0, (TURNS + i) * 4);
  return new TextEncoder().encode(JSON.stringify({ ...full, messages }, null, 2));
}
const hint = { kind: "json" as const };
const firstVersion = version(0);
const first = parseGeminiCli({
  bytes: firstVersion,
  firstLine: 1,
  carry: undefined,
  file: { path: "s.json", hint, host: "bench" },
});
console.log(
  `corpora: codex ${(codex.bytes / 1e6).toFixed(1)} MB in ${codex.files.length} rollouts, ` +
    `gemini_cli ${(jsonlBytes / 1e6).toFixed(1)} MB in ${geminiJsonl.length} JSONL sessions, ` +
    `a ${(firstVersion.length / 1e6).toFixed(1)} MB JSON session with ${UPDATES} updates`,
);

const figures: { group: string; name: string; seconds: number[]; calls: number }[] = [];
function record(group: string, name: string, seconds: number): void {
  let f = figures.find((x) => x.name === name && x.group === group);
  if (!f) figures.push(f = { group, name, seconds: [], calls: 0 });
  if (f.calls++ > 0) f.seconds.push(seconds);
}

const decoder = new TextDecoder();
function jsonLines(files: string[]): number {
  let n = 0;
  for (const path of files) {
    for (const line of decoder.decode(Deno.readFileSync(path)).split("\n")) {
      if (line) {
        JSON.parse(line);
        n++;
      }
    }
  }
  return n;
}

const options = { n: 10, warmup: 2 };
const collect = (globalThis as { gc?: () => void }).gc ?? (() => {});

/** Benchmarks `fn`; `prepare` runs before each timing, outside it. */
function timed(
  group: string,
  name: string,
  baseline: boolean,
  fn: () => void,
  prepare = () => {},
): void {
  Deno.bench({
    name,
    group,
    baseline,
    ...options,
    fn: (b) => {
      prepare();
      collect();
      b.start();
      const t0 = performance.now();
      fn();
      b.end();
      record(group, name, (performance.now() - t0) / 1000);
    },
  });
}

timed("codex", "baseline: read + split + JSON.parse", true, () => jsonLines(codex.files));
timed("codex", "codex parser", false, () => {
  for (const path of codex.files) {
    parseCodex({
      bytes: Deno.readFileSync(path),
      firstLine: 1,
      carry: undefined as CodexCarry | undefined,
      file: { path, hint: {}, host: "bench" },
    });
  }
});

timed("gemini_cli", "baseline: read + split + JSON.parse", true, () => jsonLines(geminiJsonl));
timed("gemini_cli", "gemini_cli parser (JSONL)", false, () => {
  for (const path of geminiJsonl) {
    parseGeminiCli({
      bytes: Deno.readFileSync(path),
      firstLine: 1,
      carry: undefined as GeminiCarry | undefined,
      file: { path, hint: { kind: "jsonl" as const }, host: "bench" },
    });
  }
});

let next = 1;
let carry = first.carry;
let bytes = firstVersion;
/** The version the next timing reads; one is held at a time. */
const prepareNext = () => bytes = version(next);
timed("json update", "baseline: JSON.parse of the document", true, () => {
  JSON.parse(decoder.decode(bytes));
}, prepareNext);
timed("json update", "one update: parse the whole document, send what changed", false, () => {
  const out: ParseOutput<GeminiCarry> = parseGeminiCli({
    bytes,
    firstLine: 1,
    carry,
    file: { path: "s.json", hint, host: "bench" },
  });
  carry = out.carry;
  next = Math.min(next + 1, UPDATES);
}, prepareNext);

globalThis.addEventListener("unload", () => {
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  console.log("\n| group | run | s (mean) | MB/s | ratio to the group's baseline |");
  console.log("|---|---|---|---|---|");
  const sizes: Record<string, number> = {
    codex: codex.bytes,
    gemini_cli: jsonlBytes,
    "json update": version(Math.floor(UPDATES / 2)).length,
  };
  for (const f of figures) {
    const base = figures.find((b) => b.group === f.group && b.name.startsWith("baseline"))!;
    const s = mean(f.seconds);
    console.log(
      `| ${f.group} | ${f.name} | ${s.toFixed(3)} | ${(sizes[f.group] / 1e6 / s).toFixed(1)} | ${
        (mean(base.seconds) / s).toFixed(2)
      } |`,
    );
  }
  Deno.removeSync(root, { recursive: true });
});
