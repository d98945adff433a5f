/**
 * Codex and Gemini CLI corpus generators for benchmarks and tests, with the shapes current CLIs
 * write and deterministic ids from a seed:
 *
 * - a Codex 0.171 rollout: `session_meta`, `turn_context` per turn, the context messages, then
 *   per turn a prompt (and its `item_completed` mirror), a reasoning summary, a command call
 *   and its output, a cumulative `token_count`, an answer (and its mirror);
 * - a Gemini CLI session: message records (a prompt; an answer written twice with the same id,
 *   first without and then with its tool call and result; a function response; a final
 *   answer), as JSONL with `$set` patches or as one legacy JSON document.
 *
 * @module
 */
import { derivedUuid } from "../common/hash.ts";
import { rng, words as corpusWords } from "./corpus.ts";

const WORDS = (
  "the build fails because the parser reads a stale cache so clear it and run the tests again " +
  "then check which module imports the config before the logger starts and fix the order"
).split(" ");

function words(random: () => number, bytes: number): string {
  return corpusWords(random, bytes, WORDS);
}

function time(start: number, seconds: number): string {
  return new Date(start + seconds * 1000).toISOString();
}

/** About how many bytes one generated Gemini CLI turn takes in a `.json` document. */
export const GEMINI_TURN_BYTES = 20_000;

/** Options of one generated session. */
export interface GeneratedSession {
  sessionId: string;
  turns: number;
  seed: number;
}

/**
 * The lines of one Codex rollout (envelope form, as Codex 0.171 writes it).
 *
 * @example Two turns
 * ```ts
 * import { rolloutLines } from "./sources_corpus.ts";
 * const lines = rolloutLines({ sessionId: "019a0000-0000-7000-8000-000000000001", turns: 2, seed: 1 });
 * console.log(JSON.parse(lines[0]).type); // session_meta
 * ```
 */
export function rolloutLines(opts: GeneratedSession): string[] {
  const random = rng(opts.seed);
  const start = Date.UTC(2026, 10, 20, 9) + opts.seed * 60_000;
  let clock = 0;
  const line = (type: string, payload: unknown) =>
    JSON.stringify({ timestamp: time(start, clock++), type, payload });
  const lines = [
    line("session_meta", {
      id: opts.sessionId,
      session_id: opts.sessionId,
      timestamp: time(start, 0),
      cwd: "/home/dev/shop",
      originator: "codex_exec",
      cli_version: "0.171.0",
      source: "exec",
      base_instructions: { text: words(random, 400) },
      git: { branch: "main" },
    }),
    line("response_item", {
      type: "message",
      role: "developer",
      content: [{ type: "input_text", text: `<permissions instructions>${words(random, 300)}` }],
    }),
    line("response_item", {
      type: "message",
      role: "user",
      content: [{
        type: "input_text",
        text: "<environment_context>\n  <cwd>/home/dev/shop</cwd>\n</environment_context>",
      }],
    }),
  ];
  const usage = { input: 0, cached: 0, output: 0, reasoning: 0 };
  for (let turn = 1; turn <= opts.turns; turn++) {
    const prompt = words(random, 60 + Math.floor(random() * 200));
    const answer = words(random, 200 + Math.floor(random() * 800));
    const callId = `call_${opts.seed}_${turn}`;
    lines.push(
      line("turn_context", { turn_id: `t${turn}`, cwd: "/home/dev/shop", model: "gpt-5.1-codex" }),
      line("response_item", {
        type: "message",
        role: "user",
        content: [{ type: "input_text", text: prompt }],
      }),
      line("event_msg", {
        type: "item_completed",
        turn_id: `t${turn}`,
        item: { type: "UserMessage", content: [{ type: "text", text: prompt }] },
      }),
      line("response_item", {
        type: "reasoning",
        summary: [{ type: "summary_text", text: words(random, 120) }],
        encrypted_content: "gAAAA",
      }),
      line("response_item", {
        type: "function_call",
        name: "exec_command",
        arguments: JSON.stringify({ cmd: `rg ${words(random, 20)}`, yield_time_ms: 1000 }),
        call_id: callId,
      }),
      line("response_item", {
        type: "function_call_output",
        call_id: callId,
        output: `Process exited with code 0\nOutput:\n${
          words(random, 400 + Math.floor(random() * 2000))
        }`,
      }),
    );
    usage.input += 3000;
    usage.cached += 2000;
    usage.output += 300;
    usage.reasoning += 100;
    lines.push(
      line("event_msg", {
        type: "token_count",
        info: {
          total_token_usage: {
            input_tokens: usage.input,
            cached_input_tokens: usage.cached,
            output_tokens: usage.output,
            reasoning_output_tokens: usage.reasoning,
            total_tokens: usage.input + usage.output,
          },
        },
      }),
      line("response_item", {
        type: "message",
        role: "assistant",
        content: [{ type: "output_text", text: answer }],
      }),
      line("event_msg", {
        type: "item_completed",
        turn_id: `t${turn}`,
        item: { type: "AgentMessage", content: [{ type: "Text", text: answer }] },
      }),
    );
  }
  return lines;
}

/** What a generated corpus holds. */
export interface SourceCorpus {
  files: string[];
  bytes: number;
  lines: number;
}

/**
 * Writes Codex rollouts of about `bytes` in total under `root/YYYY/MM/DD/`.
 *
 * @example A small corpus
 * ```ts
 * import { writeCodexCorpus } from "./sources_corpus.ts";
 * const root = await Deno.makeTempDir();
 * const corpus = await writeCodexCorpus(root, 100_000, { turns: 5, seed: 1 });
 * console.log(corpus.files.length > 0);
 * ```
 */
export function writeCodexCorpus(
  root: string,
  bytes: number,
  opts: { turns: number; seed: number },
): Promise<SourceCorpus> {
  return writeUntil(bytes, (i) => {
    const day = String(1 + (i % 28)).padStart(2, "0");
    const sessionId = derivedUuid("codex-corpus", opts.seed, i);
    const lines = rolloutLines({ sessionId, turns: opts.turns, seed: opts.seed * 100_000 + i });
    return {
      path: `${root}/2026/11/${day}/rollout-2026-11-${day}T09-00-00-${sessionId}.jsonl`,
      text: lines.join("\n") + "\n",
    };
  });
}

/** Writes the files `file(0)`, `file(1)`, … until they hold `bytes` in total. */
async function writeUntil(
  bytes: number,
  file: (i: number) => { path: string; text: string },
): Promise<SourceCorpus> {
  const corpus: SourceCorpus = { files: [], bytes: 0, lines: 0 };
  for (let i = 0; corpus.bytes < bytes; i++) {
    const { path, text } = file(i);
    await Deno.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    await Deno.writeTextFile(path, text);
    corpus.files.push(path);
    corpus.bytes += new TextEncoder().encode(text).length;
    corpus.lines += text.split("\n").length - 1;
  }
  return corpus;
}

/**
 * The message records of one Gemini CLI session, in the order the CLI appends them (an answer
 * that calls a tool is written twice with the same id).
 *
 * @example Records of one turn
 * ```ts
 * import { geminiRecords } from "./sources_corpus.ts";
 * const records = geminiRecords({ sessionId: "s", turns: 1, seed: 1 });
 * console.log(records.map((r) => r.type)); // ["user", "gemini", "gemini", "user", "gemini"]
 * ```
 */
export function geminiRecords(opts: GeneratedSession): Record<string, unknown>[] {
  const random = rng(opts.seed);
  const start = Date.UTC(2026, 10, 22, 15) + opts.seed * 60_000;
  const records: Record<string, unknown>[] = [];
  let clock = 0;
  for (let turn = 1; turn <= opts.turns; turn++) {
    const id = (kind: string) => derivedUuid("gemini-corpus", opts.sessionId, turn, kind);
    const tokens = { input: 3000, output: 200, cached: 1000, thoughts: 50, tool: 0, total: 3250 };
    const thinking = {
      id: id("think"),
      timestamp: time(start, clock++),
      type: "gemini",
      content: "",
      thoughts: [{
        subject: "Looking",
        description: words(random, 150),
        timestamp: time(start, clock),
      }],
      tokens,
      model: "gemini-3-pro-preview",
    };
    // Tool outputs (file reads, command output) of 2-14 KB: the records of the public Gemini
    // CLI session fixture average 7.5 KB.
    const output = words(random, 2000 + Math.floor(random() * 12000));
    const call = {
      id: `read-${turn}`,
      name: "read_file",
      args: { absolute_path: "/home/dev/app/src/main.ts" },
      result: [{
        functionResponse: { id: `read-${turn}`, name: "read_file", response: { output } },
      }],
      status: "success",
      timestamp: time(start, clock),
      resultDisplay: "",
    };
    records.push(
      {
        id: id("prompt"),
        timestamp: time(start, clock++),
        type: "user",
        content: [{ text: words(random, 60 + Math.floor(random() * 200)) }],
      },
      thinking,
      { ...thinking, toolCalls: [call] },
      {
        id: id("response"),
        timestamp: time(start, clock++),
        type: "user",
        content: [{
          functionResponse: { id: `read-${turn}`, name: "read_file", response: { output } },
        }],
      },
      {
        id: id("answer"),
        timestamp: time(start, clock++),
        type: "gemini",
        content: words(random, 200 + Math.floor(random() * 800)),
        thoughts: [],
        tokens,
        model: "gemini-3-pro-preview",
      },
    );
  }
  return records;
}

/**
 * A Gemini CLI JSONL session: the header, the records, a `$set` after each turn.
 *
 * @example A session file's lines
 * ```ts
 * import { geminiJsonlLines } from "./sources_corpus.ts";
 * const lines = geminiJsonlLines({ sessionId: "s", turns: 2, seed: 1 });
 * console.log(JSON.parse(lines[0]).sessionId); // s
 * ```
 */
export function geminiJsonlLines(opts: GeneratedSession): string[] {
  const lines = [JSON.stringify({
    sessionId: opts.sessionId,
    projectHash: "a".repeat(64),
    startTime: "2026-11-22T15:00:00.000Z",
    lastUpdated: "2026-11-22T15:00:00.000Z",
    kind: "main",
  })];
  for (const record of geminiRecords(opts)) {
    lines.push(JSON.stringify(record));
    if (record.type === "gemini" && !("toolCalls" in record) && record.content) {
      lines.push(JSON.stringify({ $set: { lastUpdated: record.timestamp } }));
    }
  }
  return lines;
}

/**
 * A legacy (≤ 0.38) Gemini CLI session document, as the CLI rewrites it: the last version of
 * each record, in first-seen order.
 *
 * @example A document of three turns
 * ```ts
 * import { geminiDocument } from "./sources_corpus.ts";
 * const doc = geminiDocument({ sessionId: "s", turns: 3, seed: 1 });
 * console.log(doc.messages.length); // 12
 * ```
 */
export function geminiDocument(
  opts: GeneratedSession,
): {
  sessionId: string;
  projectHash: string;
  startTime: string;
  lastUpdated: string;
  messages: Record<string, unknown>[];
} {
  const byId = new Map<unknown, Record<string, unknown>>();
  for (const record of geminiRecords(opts)) byId.set(record.id, record);
  const messages = [...byId.values()];
  return {
    sessionId: opts.sessionId,
    projectHash: "b".repeat(64),
    startTime: "2026-11-22T15:00:00.000Z",
    lastUpdated: String(messages.at(-1)?.timestamp ?? "2026-11-22T15:00:00.000Z"),
    messages,
  };
}

/**
 * Writes Gemini CLI sessions of about `bytes` in total under `root/<project>/chats/`: JSONL
 * sessions, and every third one a legacy JSON document.
 *
 * @example A small corpus
 * ```ts
 * import { writeGeminiCorpus } from "./sources_corpus.ts";
 * const root = await Deno.makeTempDir();
 * const corpus = await writeGeminiCorpus(root, 100_000, { turns: 5, seed: 1 });
 * console.log(corpus.files.length > 0);
 * ```
 */
export function writeGeminiCorpus(
  root: string,
  bytes: number,
  opts: { turns: number; seed: number },
): Promise<SourceCorpus> {
  return writeUntil(bytes, (i) => {
    const sessionId = derivedUuid("gemini-corpus", opts.seed, i);
    const session = { sessionId, turns: opts.turns, seed: opts.seed * 100_000 + i };
    const legacy = i % 3 === 2;
    const minute = String(i % 60).padStart(2, "0");
    return {
      path: `${root}/project-${i % 4}/chats/session-2026-11-22T15-${minute}-${
        sessionId.slice(0, 8)
      }.${legacy ? "json" : "jsonl"}`,
      text: legacy
        ? JSON.stringify(geminiDocument(session), null, 2)
        : geminiJsonlLines(session).join("\n") + "\n",
    };
  });
}
