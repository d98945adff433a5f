/**
 * A Claude Code corpus generator for benchmarks and tests: sessions with the shapes real files
 * have (a prompt, an API response split over thinking/text/tool_use lines
 * sharing `message.id` with growing usage, a tool result with `toolUseResult`, a closing answer,
 * a metadata line now and then), with fresh, deterministic ids from a seed.
 *
 * ```
 * deno run -A bench/corpus.ts OUT_DIR MEGABYTES      # writes <OUT_DIR>/<project>/<session>.jsonl
 * ```
 *
 * @module
 */
import { derivedUuid } from "../common/hash.ts";

/** A small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  "the cart total coupon applies before tax function returns value test fails because rounding " +
  "error in line twelve let me read file and check how discount computed then update code run again"
).split(" ");

/**
 * About `bytes` characters of words drawn from `list`.
 *
 * @example Ten characters
 * ```ts
 * import { rng, words } from "./corpus.ts";
 * words(rng(1), 10).length === 10;
 * ```
 */
export function words(random: () => number, bytes: number, list: string[] = WORDS): string {
  let out = "";
  while (out.length < bytes) out += list[Math.floor(random() * list.length)] + " ";
  return out.slice(0, bytes);
}

/** Options of one generated session. */
export interface SessionOptions {
  sessionId: string;
  turns: number;
  seed?: number;
  cwd?: string;
  /** ms since epoch of the first line. */
  start?: number;
}

/**
 * The lines of one session (without trailing newlines).
 *
 * @example Generate a short session
 * ```ts
 * import { sessionLines } from "./corpus.ts";
 * const lines = sessionLines({ sessionId: "s1", turns: 2 });
 * console.log(lines.length);
 * ```
 */
export function sessionLines(opts: SessionOptions): string[] {
  const random = rng(opts.seed ?? 1);
  const cwd = opts.cwd ?? "/home/dev/project";
  let clock = opts.start ?? Date.UTC(2025, 10, 20, 10, 0, 0);
  const ts = () => new Date(clock += 500 + Math.floor(random() * 4000)).toISOString();
  const base = {
    isSidechain: false,
    userType: "external",
    cwd,
    sessionId: opts.sessionId,
    version: "2.1.197",
    gitBranch: "main",
  };
  const lines: string[] = [];
  const push = (o: unknown) => lines.push(JSON.stringify(o));
  let parent: string | null = null;
  let n = 0;
  const id = () => derivedUuid("corpus", opts.sessionId, n++);
  push({ type: "ai-title", sessionId: opts.sessionId, aiTitle: words(random, 30).trim() });
  for (let turn = 0; turn < opts.turns; turn++) {
    const prompt = id();
    push({
      ...base,
      type: "user",
      uuid: prompt,
      parentUuid: parent,
      timestamp: ts(),
      promptId: id(),
      message: { role: "user", content: words(random, 40 + Math.floor(random() * 400)) },
    });
    const messageId = `msg_${id().replaceAll("-", "").slice(0, 24)}`;
    const requestId = `req_${id().replaceAll("-", "").slice(0, 24)}`;
    // One response's lines share its input and cache counts; only the output grows.
    const cacheWrite = 1000 + Math.floor(random() * 5000);
    const cacheRead = 20000 + Math.floor(random() * 50000);
    const usage = (out: number) => ({
      input_tokens: 4,
      cache_creation_input_tokens: cacheWrite,
      cache_read_input_tokens: cacheRead,
      output_tokens: out,
      service_tier: "standard",
    });
    const apiLine = (content: unknown, out: number, p: string) => ({
      ...base,
      type: "assistant",
      uuid: id(),
      parentUuid: p,
      requestId,
      timestamp: ts(),
      message: {
        id: messageId,
        type: "message",
        role: "assistant",
        model: "claude-sonnet-4-5",
        content: [content],
        stop_reason: null,
        stop_sequence: null,
        usage: usage(out),
      },
    });
    const thinking = apiLine(
      {
        type: "thinking",
        thinking: words(random, 200 + Math.floor(random() * 800)),
        signature: "E".repeat(200),
      },
      10,
      prompt,
    );
    push(thinking);
    const text = apiLine(
      { type: "text", text: words(random, 100 + Math.floor(random() * 600)) },
      80,
      thinking.uuid,
    );
    push(text);
    const toolId = `toolu_${id().replaceAll("-", "").slice(0, 24)}`;
    const toolUse = apiLine(
      {
        type: "tool_use",
        id: toolId,
        name: "Read",
        input: { file_path: `${cwd}/src/file${turn}.ts` },
      },
      150,
      text.uuid,
    );
    push(toolUse);
    const output = words(random, random() < 0.1 ? 20000 : 500 + Math.floor(random() * 3000));
    const result = id();
    push({
      ...base,
      type: "user",
      uuid: result,
      parentUuid: toolUse.uuid,
      timestamp: ts(),
      sourceToolAssistantUUID: toolUse.uuid,
      message: {
        role: "user",
        content: [{ type: "tool_result", tool_use_id: toolId, content: output }],
      },
      toolUseResult: {
        type: "text",
        file: { filePath: `${cwd}/src/file${turn}.ts`, content: output, numLines: 40 },
      },
    });
    const answer = apiLine(
      { type: "text", text: words(random, 200 + Math.floor(random() * 1200)) },
      300,
      result,
    );
    answer.message.stop_reason = "end_turn" as unknown as null;
    push(answer);
    push({
      ...base,
      type: "system",
      subtype: "turn_duration",
      uuid: id(),
      parentUuid: answer.uuid,
      durationMs: 12000,
      messageCount: 6,
      timestamp: ts(),
    });
    parent = answer.uuid;
  }
  return lines;
}

/** What {@link writeCorpus} wrote. */
/**
 * Turns per session of the bench corpora: `realistic` sessions of about 100 KB, as real projects
 * have (2,000 per 200 MB); `large`, the earlier corpus of about 560 KB sessions, which hides
 * per-session costs.
 *
 * @example A realistic corpus
 * ```ts
 * import { CORPUS_SHAPES, writeCorpus } from "./corpus.ts";
 * const info = await writeCorpus(await Deno.makeTempDir(), 300_000, {
 *   turnsPerSession: CORPUS_SHAPES.realistic,
 * });
 * console.log(info.bytes >= 300_000); // true
 * ```
 */
export const CORPUS_SHAPES: Readonly<Record<string, number>> = { realistic: 7, large: 40 };

/** What {@link writeCorpus} wrote. */
export interface CorpusInfo {
  files: string[];
  bytes: number;
  lines: number;
}

/**
 * Writes sessions under `dir/<project>/` until about `targetBytes`.
 *
 * @example Write a small corpus
 * ```ts
 * import { writeCorpus } from "./corpus.ts";
 * const info = await writeCorpus(await Deno.makeTempDir(), 100_000);
 * console.log(info.files.length);
 * ```
 */
export async function writeCorpus(
  dir: string,
  targetBytes: number,
  opts: { turnsPerSession?: number; projects?: number; seed?: number } = {},
): Promise<CorpusInfo> {
  const info: CorpusInfo = { files: [], bytes: 0, lines: 0 };
  const projects = opts.projects ?? 20;
  let i = 0;
  while (info.bytes < targetBytes) {
    const project = `${dir}/-home-dev-project${i % projects}`;
    await Deno.mkdir(project, { recursive: true });
    const sessionId = derivedUuid("corpus-session", opts.seed ?? 1, i);
    const lines = sessionLines({
      sessionId,
      turns: opts.turnsPerSession ?? 30,
      seed: (opts.seed ?? 1) * 100_003 + i,
    });
    const text = lines.join("\n") + "\n";
    const path = `${project}/${sessionId}.jsonl`;
    await Deno.writeTextFile(path, text);
    info.files.push(path);
    info.bytes += new TextEncoder().encode(text).length;
    info.lines += lines.length;
    i++;
  }
  return info;
}

if (import.meta.main) {
  const [out, mb] = Deno.args;
  if (!out || !Number(mb)) {
    console.error("usage: deno run -A bench/corpus.ts OUT_DIR MEGABYTES");
    Deno.exit(2);
  }
  const info = await writeCorpus(out, Number(mb) * 1e6);
  console.log(
    `wrote ${info.files.length} sessions, ${info.lines} lines, ${
      (info.bytes / 1e6).toFixed(1)
    } MB to ${out}`,
  );
}
