import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { type CodexCarry, parseCodex } from "../parsers/codex.ts";
import type { ParseOutput } from "../common/source.ts";
import { BatchSchema, type Message } from "../common/types.ts";
import { SHARED_FIXTURES, sharedFixturesPresent } from "./helpers.ts";
import { rolloutRef } from "../workers/codex/source.ts";

const DIR = new URL("./fixtures/codex/", import.meta.url).pathname;
const V171 = "rollout-2026-11-20T10-00-00-019a0000-0000-7000-8000-000000000171.jsonl";
const V047 = "rollout-2025-10-20T10-00-00-5c0a0047-0000-4000-8000-000000000047.jsonl";
const BARE = "rollout-2025-06-01T14-00-00-7ba2e000-0000-4000-8000-00000000ba2e.jsonl";
const FORK = "rollout-2026-11-21T09-00-00-019b0000-0000-7000-8000-00000000f0a1.jsonl";
const JSON_ROLLOUT = "rollout-2025-04-20-0d0e0f00-aaaa-4bbb-8ccc-000000000001.json";

function parse(
  bytes: Uint8Array,
  name: string,
  carry?: CodexCarry,
  firstLine = 1,
): ParseOutput<CodexCarry> {
  const hint = rolloutRef(`/s/${name}`, "/s")?.hint ?? {};
  return parseCodex({ bytes, firstLine, carry, file: { path: name, hint, host: "h" } });
}

function parseFile(name: string): ParseOutput<CodexCarry> {
  return parse(Deno.readFileSync(`${DIR}${name}`), name);
}

function texts(messages: Message[]): string[] {
  return messages.map((m) => `${m.role}:${m.content_text.split("\n")[0]}`);
}

function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

function lineCount(bytes: Uint8Array): number {
  return new TextDecoder().decode(bytes).split("\n").filter((l, i, all) =>
    i < all.length - 1 || l !== ""
  ).length;
}

Deno.test("codex parser: a 0.171 envelope rollout", async (t) => {
  const bytes = Deno.readFileSync(`${DIR}${V171}`);
  const out = parse(bytes, V171);
  const [conversation] = out.conversations;
  const messages = conversation.messages;

  await t.step("every line is accounted for, unknown kinds with a warning", () => {
    assertEquals(
      out.messages + out.metadata + total(out.skipped) + out.issues.length,
      lineCount(bytes),
    );
    assertEquals(out.issues, []);
    assertEquals(out.skipped['line type "future_item"'], 1);
    assertEquals(out.warnings?.length, 1);
    assertEquals(out.warnings![0].line, lineCount(bytes));
    assertStringIncludes(out.warnings![0].message, "not known to this version");
    BatchSchema.parse({ source_type: "codex", conversations: out.conversations });
  });

  await t.step("context messages are system; the prompt and answer come once", () => {
    assertEquals(texts(messages).slice(0, 6), [
      "system:<permissions instructions>Sandbox: workspace-write</permissions instructions>",
      "system:<environment_context>",
      "system:# AGENTS.md instructions for /home/dev/shop",
      "system:<skills_instructions>none</skills_instructions>",
      "user:Why does the cart total round wrong?",
      "assistant:**Looking at rounding** in cart.py",
    ]);
    assertEquals(
      messages.filter((m) => m.content_text === "Why does the cart total round wrong?").length,
      1,
    );
    assertEquals(
      messages.filter((m) => m.content_text === "Line 12 rounds to one decimal; use two.").length,
      1,
    );
    assertEquals(out.skipped["prompt or answer mirrored from a response_item (delivered once)"], 2);
  });

  await t.step("rounds count genuine prompts; parents chain the messages", () => {
    assertEquals(messages.filter((m) => m.role === "user").map((m) => m.round_index), [1, 2]);
    assertEquals(messages[0].parent_uuid, "");
    for (let i = 1; i < messages.length; i++) {
      assertEquals(messages[i].parent_uuid, messages[i - 1].uuid);
    }
  });

  await t.step("reasoning summaries are thinking", () => {
    const thinking = messages.find((m) => m.content.type === "thinking")!;
    assertEquals(thinking.content.thinking, "**Looking at rounding** in cart.py");
    assertEquals(thinking.role, "assistant");
  });

  await t.step("tool calls and outputs are paired by call_id", () => {
    const calls = messages.filter((m) => m.content_type === "tool_use");
    assertEquals(calls.map((m) => m.content.name), [
      "exec_command",
      "apply_patch",
      "local_shell",
      "web_search",
    ]);
    assertEquals(calls[0].content.input, { cmd: "grep -n round cart.py", yield_time_ms: 1000 });
    const results = messages.filter((m) => m.content_type === "tool_result");
    assertEquals(results.length, 3);
    for (const result of results) {
      const call = calls.find((c) => c.content.id === result.content.tool_use_id)!;
      assertEquals(result.role, "tool");
      assertEquals(result.metadata?.tool_use_uuid, call.uuid);
      assertEquals(result.metadata?.tool_name, call.content.name);
    }
    assertStringIncludes(results[0].content_text, "total = round(total, 1)");
  });

  await t.step("the model comes from each turn's turn_context", () => {
    const answers = messages.filter((m) => m.role === "assistant");
    assertEquals(answers[0].model, "gpt-5.1-codex");
    assertEquals(answers.at(-1)!.model, "gpt-5.2-codex");
    assertEquals(conversation.metadata.model, "gpt-5.2-codex");
  });

  await t.step("cumulative token counts become session and per-round usage once", () => {
    // OpenAI's input_tokens include the cached part: input 5000 - 2000 cached.
    assertEquals(conversation.metadata.usage, {
      input: 3000,
      output: 300,
      cache_read: 2000,
      cache_write: 0,
      reasoning: 60,
      total: 5300,
    });
    const byRound = conversation.metadata.usage_by_round as Record<string, { total: number }>;
    // The repeated first report is not counted twice: round 1 is 2100 + 120, not 3270.
    assertEquals(byRound["1"].total, 2220);
    assertEquals(byRound["2"].total, 3080);
  });

  await t.step("compaction is a system message; images are kept as references", () => {
    const compacted = messages.find((m) => m.metadata?.compacted === true)!;
    assertEquals(compacted.role, "system");
    assertEquals(compacted.content_text, "Summary: fixed cart rounding.");
    assertEquals(compacted.metadata?.replacement_items, 1);
    const prompt = messages.find((m) => m.content_text.startsWith("Fix it"))!;
    assertEquals(prompt.content_type, "multipart");
    const parts = prompt.content.parts as { type: string; source?: { sha256: string } }[];
    assertEquals(parts[1].type, "image");
    assertEquals(parts[1].source?.sha256.length, 64);
  });

  await t.step("conversation fields", () => {
    assertEquals(conversation.uuid, "019a0000-0000-7000-8000-000000000171");
    assertEquals(conversation.title, "Cart rounding fix");
    assertEquals(conversation.created_at, "2026-11-20T10:00:00.000Z");
    assertEquals(conversation.updated_at, "2026-11-20T10:00:22.000Z");
    assertEquals(conversation.metadata.cwd, "/home/dev/shop");
    assertEquals(conversation.metadata.project_name, "shop");
    assertEquals(conversation.metadata.git_branch, "main");
    assertEquals(conversation.metadata.cli_version, "0.171.0");
    assertEquals(conversation.metadata.originator, "codex_exec");
    assertEquals(conversation.metadata.rollout_format, "envelope");
    assertEquals(conversation.metadata.message_count, messages.length);
  });

  await t.step("ids are the same when the file is read in pieces", () => {
    const text = new TextDecoder().decode(bytes);
    const lines = text.split("\n").filter(Boolean);
    for (const cut of [1, 9, 14, 20, lines.length - 1]) {
      const first = new TextEncoder().encode(lines.slice(0, cut).join("\n") + "\n");
      const rest = new TextEncoder().encode(lines.slice(cut).join("\n") + "\n");
      const a = parse(first, V171);
      const b = parse(rest, V171, a.carry, cut + 1);
      const pieces = [...a.conversations, ...b.conversations].flatMap((c) => c.messages);
      assertEquals(pieces, messages, `cut after line ${cut}`);
      const last = [...a.conversations, ...b.conversations].at(-1);
      assertEquals(last?.metadata.usage, conversation.metadata.usage);
    }
  });
});

Deno.test("codex parser: a 0.47 rollout with user_message and agent_message events", () => {
  const out = parseFile(V047);
  const messages = out.conversations[0].messages;
  assertEquals(texts(messages), [
    "system:<environment_context>",
    "user:List the files",
    "assistant:**Listing files**",
    'assistant:shell {"command":["bash","-lc","ls"],"workdir":"/srv/app"}',
    'tool:{"output":"a.py\\nb.py\\n","metadata":{"exit_code":0,"duration_seconds":0.1}}',
    "assistant:Two files: a.py and b.py.",
  ]);
  assertEquals(out.skipped["prompt or answer mirrored from a response_item (delivered once)"], 3);
  assertEquals(out.skipped["reasoning without a readable summary (encrypted)"], 1);
  assertEquals(out.skipped["token_count without usage (rate limits only)"], 1);
  assertEquals(messages.at(-1)!.model, "gpt-5-codex");
  assertEquals(out.conversations[0].metadata.git_branch, "dev");
});

Deno.test("codex parser: the bare pre-envelope form is detected from its first line", () => {
  const out = parseFile(BARE);
  const [conversation] = out.conversations;
  assertEquals(conversation.uuid, "7ba2e000-0000-4000-8000-00000000ba2e");
  assertEquals(conversation.metadata.rollout_format, "bare");
  assertEquals(texts(conversation.messages), [
    "system:<user_instructions>",
    "user:Count the lines of main.rs",
    'assistant:local_shell {"type":"exec","command":["wc","-l","main.rs"],"timeout_ms":10000}',
    'tool:{"output":"42 main.rs\\n","metadata":{"exit_code":0}}',
    "assistant:42 lines.",
  ]);
  assertEquals(out.skipped["state record"], 2);
  // Bare lines have no time of their own: they take the header's.
  for (const m of conversation.messages) assertEquals(m.created_at, "2025-06-01T12:00:00.000Z");
  assertEquals(conversation.messages[3].metadata?.tool_use_uuid, conversation.messages[2].uuid);
});

Deno.test("codex parser: a fork keeps its own id and lists the parent's header", () => {
  const out = parseFile(FORK);
  const [conversation] = out.conversations;
  assertEquals(conversation.uuid, "019b0000-0000-7000-8000-00000000f0a1");
  assertEquals(conversation.metadata.forked_from_id, "019a0000-0000-7000-8000-000000000171");
  assertEquals(conversation.metadata.other_session_ids, ["019a0000-0000-7000-8000-000000000171"]);
  assertEquals(conversation.messages.length, 4);
  assertEquals(out.metadata, 3);
  // The copied history is this thread's: its ids differ from the parent's.
  const parent = parseFile(V171).conversations[0].messages.map((m) => m.uuid);
  for (const m of conversation.messages) assert(!parent.includes(m.uuid));
});

Deno.test("codex parser: the whole-JSON rollout sends only what changed", async (t) => {
  const text = Deno.readTextFileSync(`${DIR}${JSON_ROLLOUT}`);
  const first = parse(new TextEncoder().encode(text), JSON_ROLLOUT);

  await t.step("the first version sends every item", () => {
    const [conversation] = first.conversations;
    // The file name's id: the TypeScript CLI drew a new session id at every save.
    assertEquals(conversation.uuid, "0d0e0f00-aaaa-4bbb-8ccc-000000000001");
    assertEquals(texts(conversation.messages), [
      "user:What does make build do?",
      'assistant:shell {"command":["cat","Makefile"]}',
      'tool:{"output":"build:\\n\\tcc main.c\\n","metadata":{"exit_code":0}}',
      "assistant:It compiles main.c with cc.",
    ]);
    assertEquals(conversation.metadata.rollout_format, "json");
  });

  await t.step("a rewrite with one more item sends that item only", () => {
    const doc = JSON.parse(text);
    doc.session.id = crypto.randomUUID();
    doc.items.push({
      type: "message",
      role: "user",
      content: [{ type: "input_text", text: "And make clean?" }],
    });
    const second = parse(
      new TextEncoder().encode(JSON.stringify(doc, null, 2)),
      JSON_ROLLOUT,
      first.carry,
    );
    assertEquals(texts(second.conversations[0].messages), ["user:And make clean?"]);
    assertEquals(second.conversations[0].messages[0].round_index, 2);
    const again = parse(new TextEncoder().encode(JSON.stringify(doc)), JSON_ROLLOUT, second.carry);
    assertEquals(again.conversations, []);
  });

  await t.step("a half-written version is an issue and changes nothing", () => {
    const half = parse(new TextEncoder().encode(text.slice(0, 200)), JSON_ROLLOUT, first.carry);
    assertEquals(half.conversations, []);
    assertEquals(half.carry, first.carry);
    assertStringIncludes(half.issues[0].message, "invalid JSON");
    assertStringIncludes(half.issues[0].message, "read again when it changes");
  });
});

Deno.test("codex parser: a rollout with only events still delivers its prompt", () => {
  const lines = [
    { timestamp: "2026-02-01T00:00:00.000Z", type: "session_meta", payload: { id: "s-1" } },
    {
      timestamp: "2026-02-01T00:00:01.000Z",
      type: "event_msg",
      payload: { type: "user_message", message: "only here" },
    },
  ].map((l) => JSON.stringify(l) + "\n").join("");
  const out = parse(new TextEncoder().encode(lines), "rollout-x.jsonl");
  assertEquals(texts(out.conversations[0].messages), ["user:only here"]);
  assertEquals(out.conversations[0].messages[0].metadata?.from_event, "user_message");
});

Deno.test("codex parser: tool calls are paired by any call id, and the oldest of too many forgotten", async (t) => {
  const line = (payload: Record<string, unknown>) =>
    JSON.stringify({ timestamp: "2026-02-01T00:00:01.000Z", type: "response_item", payload }) +
    "\n";
  const call = (id: string) => line({ type: "function_call", name: `t_${id}`, call_id: id });
  const output = (id: string) => line({ type: "function_call_output", call_id: id, output: "ok" });
  const encode = (lines: string[]) => new TextEncoder().encode(lines.join(""));
  const header = JSON.stringify({ type: "session_meta", payload: { id: "s-calls" } }) + "\n";
  const toolNames = (out: ParseOutput<CodexCarry>) =>
    out.conversations[0].messages.filter((m) => m.role === "tool").map((m) =>
      m.metadata?.tool_name ?? null
    );

  await t.step("ids that name an object's own properties are only keys", () => {
    const first = parse(encode([header, call("__proto__"), output("constructor")]), "r.jsonl");
    assertEquals(toolNames(first), [null]);
    // The carry is kept as JSON between reads.
    const carry = JSON.parse(JSON.stringify(first.carry));
    const second = parse(encode([output("__proto__"), output("toString")]), "r.jsonl", carry, 4);
    assertEquals(toolNames(second), ["t___proto__", null]);
  });

  await t.step("257 calls forget the first, read whole or in two parts", () => {
    const calls = Array.from({ length: 257 }, (_, i) => call(`c${i}`));
    const outputs = [output("c0"), output("c1"), output("c256")];
    const whole = parse(encode([header, ...calls, ...outputs]), "r.jsonl");
    assertEquals(toolNames(whole), [null, "t_c1", "t_c256"]);
    const head = parse(encode([header, ...calls.slice(0, 200)]), "r.jsonl");
    const carry = JSON.parse(JSON.stringify(head.carry));
    const rest = parse(encode([...calls.slice(200), ...outputs]), "r.jsonl", carry, 202);
    assertEquals(toolNames(rest), [null, "t_c1", "t_c256"]);
  });
});

/** The same lines with their keys in another order than Codex writes them: each is parsed. */
function reordered(bytes: Uint8Array): Uint8Array {
  const lines = new TextDecoder().decode(bytes).split("\n").map((line) => {
    try {
      const { timestamp, type, payload, ...rest } = JSON.parse(line);
      return JSON.stringify({ payload, type, ...rest, timestamp });
    } catch {
      return line;
    }
  });
  return new TextEncoder().encode(lines.join("\n"));
}

/** `parse`, and how many times it called `JSON.parse`. */
function countingParses(bytes: Uint8Array, name: string): [ParseOutput<CodexCarry>, number] {
  const jsonParse = JSON.parse;
  let calls = 0;
  JSON.parse = (text, reviver) => {
    calls++;
    return jsonParse(text, reviver);
  };
  try {
    return [parse(bytes, name), calls];
  } finally {
    JSON.parse = jsonParse;
  }
}

Deno.test("codex parser: lines told from their first bytes give what parsing them gives", async (t) => {
  const at = (s: number) => `2026-02-01T00:00:${String(s).padStart(2, "0")}.000Z`;
  const event = (s: number, payload: Record<string, unknown>, ordinal?: number) =>
    JSON.stringify({
      timestamp: at(s),
      ...(ordinal === undefined ? {} : { ordinal }),
      type: "event_msg",
      payload,
    });
  const completed = (s: number, type: string, text: string) =>
    event(s, {
      type: "item_completed",
      turn_id: "t1",
      item: { type, content: [{ type: "text", text }] },
    });
  const reasoning = (s: number, payload: Record<string, unknown>, ordinal?: number) =>
    JSON.stringify({
      timestamp: at(s),
      ...(ordinal === undefined ? {} : { ordinal }),
      type: "response_item",
      payload: { type: "reasoning", ...payload },
    });
  const lines = [
    JSON.stringify({ timestamp: at(0), type: "session_meta", payload: { id: "s-events" } }),
    // Before any response item the mirrors are the only record of their messages.
    event(1, { type: "user_message", message: "first, from an event" }),
    event(2, { type: "agent_reasoning", text: "thinking, mirrored" }),
    completed(3, "UserMessage", "second, from a completed item"),
    event(4, { type: "exec_command_end", aggregated_output: "x".repeat(500) }, 7),
    JSON.stringify({
      timestamp: at(5),
      type: "response_item",
      payload: {
        type: "message",
        role: "user",
        content: [{ type: "input_text", text: "an item" }],
      },
    }),
    completed(6, "AgentMessage", "a mirror now"),
    completed(7, "Plan", "a plan"),
    event(8, { type: "agent_message", message: "a mirror now" }),
    // An escaped type and a time of another length are left to the parse.
    `{"timestamp":"${at(9)}","type":"event_msg","payload":{"type":"exec\\u005fcommand_end"}}`,
    JSON.stringify({
      timestamp: "2026-02-01T00:00:10Z",
      type: "event_msg",
      payload: { type: "task_started" },
    }),
    // A time no calendar has is not seen, parsed or not.
    JSON.stringify({
      timestamp: "2026-02-30T00:00:11.000Z",
      type: "event_msg",
      payload: { type: "task_started" },
    }),
    event(12, {
      type: "token_count",
      info: { total_token_usage: { input_tokens: 5, total_tokens: 9 } },
    }),
    event(13, { type: "thread_name_updated", thread_name: "Named" }),
    // Reasoning whose text is only encrypted, with an id or an ordinal; then reasoning with
    // text in its summary or its content, which is delivered.
    reasoning(15, { summary: [], content: null, encrypted_content: "e".repeat(900) }),
    reasoning(15, { id: "rs_1", summary: [], content: [], encrypted_content: null }, 3),
    reasoning(16, { summary: [{ type: "summary_text", text: "a summary" }], content: null }),
    reasoning(16, { summary: [], content: [{ type: "reasoning_text", text: "in the content" }] }),
    event(17, { type: "task_complete" }),
  ];
  const bytes = new TextEncoder().encode(lines.join("\n") + "\n");

  await t.step("the same output as the same lines parsed whole", () => {
    const [out, parses] = countingParses(bytes, "rollout-e.jsonl");
    const [whole, wholeParses] = countingParses(reordered(bytes), "rollout-e.jsonl");
    assertEquals(out, whole);
    assertEquals(texts(out.conversations[0].messages), [
      "user:first, from an event",
      "user:second, from a completed item",
      "user:an item",
      "assistant:a summary",
      "assistant:in the content",
    ]);
    assertEquals(out.conversations[0].updated_at, at(17));
    assertEquals(out.skipped, {
      "prompt or answer mirrored from a response_item (delivered once)": 3,
      "event_msg exec_command_end": 2,
      "item_completed Plan": 1,
      "event_msg task_started": 2,
      "event_msg task_complete": 1,
      "reasoning without a readable summary (encrypted)": 2,
    });
    // Passed over unparsed: the mirrored reasoning, the command's end, the two mirrors, the plan,
    // the task start at a time that is no date, the task's end and the encrypted reasoning.
    assertEquals(wholeParses - parses, 9);
  });

  const fixtures = [V171, V047, FORK].map((name) => [name, `${DIR}${name}`]);
  if (sharedFixturesPresent("codex")) {
    for (const entry of Deno.readDirSync(`${SHARED_FIXTURES}/codex`)) {
      if (entry.name.endsWith(".jsonl")) {
        fixtures.push([entry.name, `${SHARED_FIXTURES}/codex/${entry.name}`]);
      }
    }
  }
  for (const [name, path] of fixtures) {
    await t.step(`${name}: the same output as its lines parsed whole`, () => {
      const bytes = Deno.readFileSync(path);
      assertEquals(parse(bytes, name), parse(reordered(bytes), name));
    });
  }
});

Deno.test("codex worker: file names", () => {
  const id = "01996135-afde-7911-97f0-d863511eca56";
  assertEquals(rolloutRef(`/s/2025/09/19/rollout-2025-09-19T11-02-12-${id}.jsonl`, "/s"), {
    path: `/s/2025/09/19/rollout-2025-09-19T11-02-12-${id}.jsonl`,
    hint: { sessionId: id },
    form: "lines",
  });
  assertEquals(rolloutRef(`/a/rollout-x-${id}.jsonl.zst`, "/a")?.form, "zstd");
  assertEquals(
    rolloutRef(`/c/archived_sessions/rollout-x-${id}.jsonl`, "/c/archived_sessions")?.hint,
    {
      sessionId: id,
      archived: "true",
    },
  );
  assertEquals(rolloutRef(`/s/rollout-2025-04-20-${id}.json`, "/s")?.form, "whole");
  assertEquals(rolloutRef("/s/history.jsonl", "/s"), null);
  assertEquals(rolloutRef("/s/rollout-notes.txt", "/s"), null);
});

Deno.test({
  name: "codex parser: conformance over ../shared/fixtures/codex",
  ignore: !sharedFixturesPresent("codex"),
  fn: async (t) => {
    const root = `${SHARED_FIXTURES}/codex`;
    const files = [...Deno.readDirSync(root)].filter((e) => e.name.endsWith(".jsonl"))
      .map((e) => e.name).sort();
    assert(files.length >= 5, `expected the shared fixtures, found ${files.length}`);
    for (const name of files) {
      await t.step(name, () => {
        const bytes = Deno.readFileSync(`${root}/${name}`);
        const out = parse(bytes, name);
        const malformed = out.issues.filter((i) => i.message.startsWith("invalid JSON")).length;
        assertEquals(
          out.messages + out.metadata + total(out.skipped) + malformed,
          lineCount(bytes),
          `every line of ${name} is a message, metadata, skipped with a reason or reported`,
        );
        assertEquals(out.issues.length, malformed, JSON.stringify(out.issues));
        assertEquals(out.warnings ?? [], [], "no line of a kind this version does not know");
        if (out.conversations.length > 0) {
          BatchSchema.parse({ source_type: "codex", conversations: out.conversations });
        }
        const uuids = out.conversations.flatMap((c) => c.messages.map((m) => m.uuid));
        assertEquals(new Set(uuids).size, uuids.length, "message ids are unique");
      });
    }
  },
});
