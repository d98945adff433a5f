import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { type GeminiCarry, parseGeminiCli } from "../parsers/gemini_cli.ts";
import type { ParseOutput } from "../common/source.ts";
import { BatchSchema, type Conversation, type Message } from "../common/types.ts";
import { derivedUuid, sha256Hex } from "../common/hash.ts";
import { SHARED_FIXTURES, sharedFixturesPresent } from "./helpers.ts";
import { geminiCliSource } from "../workers/gemini_cli/source.ts";

const DIR = new URL("./fixtures/gemini_cli/", import.meta.url).pathname;
const SESSION = "5e551011-aaaa-4bbb-8ccc-000000000061";
const encoder = new TextEncoder();

function parse(
  bytes: Uint8Array,
  hint: Record<string, string>,
  carry?: GeminiCarry,
  firstLine = 1,
): ParseOutput<GeminiCarry> {
  return parseGeminiCli({ bytes, firstLine, carry, file: { path: "f", hint, host: "h" } });
}

function fixture(name: string): Uint8Array {
  return Deno.readFileSync(`${DIR}${name}`);
}

function texts(messages: Message[]): string[] {
  return messages.map((m) => `${m.role}:${m.content_text.split("\n")[0]}`);
}

function uuidOf(id: string, session = SESSION): string {
  return derivedUuid("gemini_cli", session, id);
}

/** Parses a JSONL file line by line, threading the carry, as the pipeline may. */
function parseByLine(bytes: Uint8Array, hint: Record<string, string>) {
  const lines = new TextDecoder().decode(bytes).split("\n").filter(Boolean);
  let carry: GeminiCarry | undefined;
  const outputs: ParseOutput<GeminiCarry>[] = [];
  lines.forEach((line, i) => {
    const out = parse(encoder.encode(line + "\n"), hint, carry, i + 1);
    carry = out.carry;
    outputs.push(out);
  });
  return outputs;
}

/** The server's view: later versions of a message replace earlier ones. */
function upserted(conversations: Conversation[]): Map<string, Message> {
  const messages = new Map<string, Message>();
  for (const m of conversations.flatMap((c) => c.messages)) messages.set(m.uuid, m);
  return messages;
}

Deno.test("gemini_cli parser: a 0.61 JSONL session", async (t) => {
  const bytes = fixture("session-2026-11-22T15-00-5e551011.jsonl");
  const hint = { kind: "jsonl" as const, sessionId: "5e551011", projectPath: "/home/dev/todo-app" };
  const out = parse(bytes, hint);
  const [conversation] = out.conversations;
  const m = new Map(conversation.messages.map((x) => [x.metadata?.gemini_id as string, x]));

  await t.step("records become messages in first-seen order, each once", () => {
    assertEquals(conversation.uuid, SESSION);
    assertEquals(conversation.messages.map((x) => x.metadata?.gemini_id), [
      "m-ctx",
      "m-u1",
      "m-g1",
      "m-fr1",
      "m-g2",
      "m-i1",
      "m-u2",
      "m-g3",
      "m-u3",
      "m-g4",
    ]);
    assertEquals(m.get("m-ctx")!.role, "system");
    assertEquals(m.get("m-ctx")!.metadata?.context, true);
    assertEquals(m.get("m-i1")!.role, "system");
    assertEquals(m.get("m-i1")!.metadata?.gemini_type, "info");
    BatchSchema.parse({ source_type: "gemini_cli", conversations: out.conversations });
  });

  await t.step("a record appended again with the same id: last version wins", () => {
    const g1 = m.get("m-g1")!;
    assertEquals(g1.content_type, "multipart");
    const parts = g1.content.parts as { type: string; name?: string; content?: unknown }[];
    assertEquals(parts.map((p) => p.type), ["thinking", "tool_use", "tool_result"]);
    assertEquals(parts[1].name, "search_file_content");
    assertEquals(g1.model, "gemini-3-pro-preview");
    assertEquals(g1.usage?.total, 115);
    // The unchanged second copy of m-g2 is skipped; the checkpoint's edit replaces it.
    assertEquals(out.skipped["unchanged record appended again"], 1);
    assertEquals(m.get("m-g2")!.content_text, "One task: src/a.ts line 3. (edited)");
  });

  await t.step("function responses recorded as user records are tool results", () => {
    const fr = m.get("m-fr1")!;
    assertEquals(fr.role, "tool");
    assertEquals(fr.content_type, "tool_result");
    assertEquals(fr.content.tool_use_id, "grep-1");
  });

  await t.step("thoughts are thinking", () => {
    const parts = m.get("m-g1")!.content.parts as { type: string; thinking?: string }[];
    assertEquals(parts[0].thinking, "Searching: I will grep for task.");
  });

  await t.step("$rewindTo and a shorter checkpoint: rewound messages are listed, not lost", () => {
    assertEquals(conversation.metadata.rewound_message_ids, [
      uuidOf("m-i1"),
      uuidOf("m-u2"),
      uuidOf("m-g3"),
    ]);
    assertEquals(conversation.metadata.message_count, 7);
    // The thread goes on from the message before the rewind point.
    assertEquals(m.get("m-u3")!.parent_uuid, uuidOf("m-g2"));
    assertEquals(m.get("m-u3")!.round_index, 2);
    assertEquals(m.get("m-u2")!.round_index, 2);
  });

  await t.step("rounds, parents, title, summary, usage, model", () => {
    assertEquals(m.get("m-u1")!.round_index, 1);
    assertEquals(m.get("m-u1")!.parent_uuid, uuidOf("m-ctx"));
    assertEquals(m.get("m-g1")!.parent_uuid, uuidOf("m-u1"));
    assertEquals(conversation.title, "Find open tasks in src");
    assertEquals(conversation.metadata.summary, "Find open tasks in src");
    // Tokens of every version delivered, once per message (rewound ones were spent too).
    assertEquals((conversation.metadata.usage as { total: number }).total, 115 + 167 + 225 + 237);
    assertEquals(conversation.metadata.model, "gemini-3-flash-preview");
    assertEquals(conversation.metadata.cwd, "/home/dev/todo-app");
    assertEquals(conversation.metadata.project_name, "todo-app");
    assertEquals(conversation.metadata.kind, "main");
    assertEquals(conversation.created_at, "2026-11-22T15:00:00.000Z");
    // The skipped record of an unknown type does not count as activity.
    assertEquals(conversation.updated_at, "2026-11-22T15:00:21.000Z");
  });

  await t.step("a second header (resume) and unknown kinds are skipped with reasons", () => {
    assertEquals(out.skipped["header appended again (session resumed)"], 1);
    assertEquals(out.skipped["unknown record kind"], 1);
    assertEquals(out.skipped['unknown message type "hologram"'], 1);
    assertEquals(out.warnings?.map((w) => w.line), [20, 21]);
    assertStringIncludes(out.warnings![0].message, "not a known kind");
    assertEquals(out.issues, []);
  });

  await t.step("read line by line, every line counts and the server ends the same", () => {
    const outputs = parseByLine(bytes, hint);
    for (const [i, o] of outputs.entries()) {
      const skipped = Object.values(o.skipped).reduce((a, b) => a + b, 0);
      const changes = o.conversations.length;
      assert(
        o.messages + o.metadata + skipped + o.issues.length + changes > 0,
        `line ${i + 1} is accounted for`,
      );
    }
    // The checkpoint on line 13 re-lists five messages; only the edited one is sent again.
    assertEquals(
      outputs[12].conversations[0].messages.map((m) => m.metadata?.gemini_id),
      ["m-g2"],
    );
    const whole = upserted(out.conversations);
    const pieces = upserted(outputs.flatMap((o) => o.conversations));
    assertEquals([...pieces.values()], [...whole.values()]);
    assertEquals(
      outputs.findLast((o) => o.conversations.length > 0)!.conversations[0].metadata,
      conversation.metadata,
    );
  });
});

Deno.test("gemini_cli parser: message ids that name an object's own properties are only ids", () => {
  const hint = { kind: "jsonl", sessionId: "5e551011" };
  const header = JSON.stringify({ sessionId: SESSION, startTime: "2026-11-22T15:00:00.000Z" });
  const record = (id: string, text: string) =>
    JSON.stringify({ id, timestamp: "2026-11-22T15:00:02.000Z", type: "user", content: text });
  const lines = (...all: string[]) => encoder.encode(all.map((l) => l + "\n").join(""));
  const first = parse(
    lines(header, record("m1", "one"), record("constructor", "two"), record("__proto__", "three")),
    hint,
  );
  const messages = first.conversations[0].messages;
  assertEquals(messages.map((m) => m.round_index), [1, 2, 3]);
  assertEquals(messages.map((m) => m.parent_uuid), ["", messages[0].uuid, messages[1].uuid]);
  BatchSchema.parse({ source_type: "gemini_cli", conversations: first.conversations });
  // Appended again unchanged, after the carry's trip through JSON: nothing to send.
  const carry = JSON.parse(JSON.stringify(first.carry));
  const again = parse(lines(record("__proto__", "three")), hint, carry, 5);
  assertEquals(again.conversations.flatMap((c) => c.messages).length, 0);
});

Deno.test("gemini_cli parser: a sub-agent session", () => {
  const out = parse(fixture("subagent.jsonl"), {
    kind: "jsonl" as const,
    sessionId: "5ab5e551-0000-4000-8000-000000000001",
    parentSessionId: SESSION,
  });
  const [conversation] = out.conversations;
  assertEquals(conversation.uuid, "5ab5e551-0000-4000-8000-000000000001");
  assertEquals(conversation.metadata.kind, "subagent");
  assertEquals(conversation.metadata.parent_session_id, SESSION);
  // A sub-agent's summary is its result, not its title.
  assertEquals(conversation.title, "Investigate the build");
  assertEquals(conversation.metadata.summary, "build ok");
  assertEquals(texts(conversation.messages), [
    "user:Investigate the build",
    'assistant:complete_task {"result":"build ok"}',
  ]);
});

Deno.test("gemini_cli parser: a legacy JSON session rewritten whole", async (t) => {
  const text = new TextDecoder().decode(fixture("session-2025-12-01T08-00-1e9ac700.json"));
  const hint = { kind: "json" as const, sessionId: "1e9ac700" };
  const first = parse(encoder.encode(text), hint);

  await t.step("the first version sends every message, tool results included", () => {
    const [conversation] = first.conversations;
    assertEquals(conversation.uuid, "1e9ac700-0000-4000-8000-000000000020");
    assertEquals(texts(conversation.messages), [
      "user:Read package.json",
      "assistant:Reading: Open the file.",
      "assistant:The package is named w.",
    ]);
    const parts = conversation.messages[1].content.parts as { type: string }[];
    assertEquals(parts.map((p) => p.type), ["thinking", "tool_use", "tool_result"]);
  });

  const doc = JSON.parse(text);
  await t.step("a rewrite sends only new or changed messages", () => {
    doc.lastUpdated = "2025-12-01T08:05:00.000Z";
    const same = parse(encoder.encode(JSON.stringify(doc, null, 2)), hint, first.carry);
    assertEquals(same.conversations, [], "only lastUpdated moved: nothing to send");
    doc.messages[2].content = "The package is named w (version 1).";
    doc.messages.push({
      id: "l-u2",
      timestamp: "2025-12-01T08:06:00.000Z",
      type: "user",
      content: "Thanks",
    });
    const next = parse(encoder.encode(JSON.stringify(doc, null, 2)), hint, same.carry);
    assertEquals(texts(next.conversations[0].messages), [
      "assistant:The package is named w (version 1).",
      "user:Thanks",
    ]);
    assertEquals(next.conversations[0].messages[1].round_index, 2);
    first.carry = next.carry;
  });

  await t.step("a half-written rewrite is reported and changes nothing", () => {
    const half = parse(encoder.encode(JSON.stringify(doc).slice(0, 300)), hint, first.carry);
    assertEquals(half.conversations, []);
    assertEquals(half.carry, first.carry);
    assertStringIncludes(half.issues[0].message, "invalid JSON");
  });

  await t.step("a message gone from a later version is listed as rewound", () => {
    doc.messages.pop();
    const next = parse(encoder.encode(JSON.stringify(doc)), hint, first.carry);
    const [conversation] = next.conversations;
    assertEquals(conversation.messages, []);
    assertEquals(conversation.metadata.rewound_message_ids, [
      uuidOf("l-u2", "1e9ac700-0000-4000-8000-000000000020"),
    ]);
  });
});

Deno.test("gemini_cli parser: logs.json only for sessions with no chat recording", () => {
  const out = parse(fixture("logs.json"), { kind: "logs" as const, recorded: "5e551011" });
  assertEquals(out.conversations.length, 1);
  const [conversation] = out.conversations;
  assertEquals(conversation.uuid, "10600000-0000-4000-8000-000000000001");
  assertEquals(texts(conversation.messages), [
    "user:hello from before chat recording",
    "user:/quit",
  ]);
  assertEquals(conversation.metadata.prompts_only, true);
  assertEquals(conversation.title, "hello from before chat recording");
  assertEquals(out.skipped["prompt of a session with a chat recording (delivered from it)"], 1);
  const again = parse(
    fixture("logs.json"),
    { kind: "logs" as const, recorded: "5e551011" },
    out.carry,
  );
  assertEquals(again.conversations, []);
});

Deno.test("gemini_cli parser: checkpoints in both forms", async (t) => {
  await t.step("before 0.16: a bare history array", () => {
    const hint = {
      kind: "checkpoint" as const,
      tag: "release",
      project: "p",
      mtime: "2025-10-01T00:00:00.000Z",
    };
    const out = parse(fixture("checkpoint-release.json"), hint);
    const [conversation] = out.conversations;
    assertEquals(conversation.uuid, derivedUuid("gemini_cli", "checkpoint", "p", "release"));
    assertEquals(conversation.title, "release");
    assertEquals(conversation.metadata.checkpoint_tag, "release");
    assertEquals(texts(conversation.messages), [
      "user:Plan the release",
      "assistant:Step 1: tag.",
      "tool:v1.0",
      "assistant:Latest tag is v1.0.",
    ]);
    for (const m of conversation.messages) assertEquals(m.created_at, "2025-10-01T00:00:00.000Z");
    const again = parse(fixture("checkpoint-release.json"), {
      ...hint,
      mtime: "2026-01-01T00:00:00.000Z",
    }, out.carry);
    assertEquals(again.conversations, [], "a touched checkpoint sends nothing");
  });

  await t.step("from 0.16: {history, authType}", () => {
    const out = parse(fixture("checkpoint-my%20tag.json"), {
      kind: "checkpoint" as const,
      tag: "my tag",
      project: "p",
    });
    assertEquals(texts(out.conversations[0].messages), [
      "user:Summarise the diff",
      "assistant:Two files changed.",
    ]);
    assertEquals(out.conversations[0].title, "my tag");
  });

  await t.step("neither form is a clear issue", () => {
    const out = parse(encoder.encode('{"nope": 1}'), { kind: "checkpoint" as const, tag: "x" });
    assertEquals(out.issues[0].message, "expected a history array or {history: [...], authType}");
  });
});

Deno.test("gemini_cli worker: project folders by hash or slug, every file kind", async () => {
  const home = await Deno.makeTempDir();
  const root = `${home}/.gemini/tmp`;
  const slugDir = `${root}/todo-app`;
  const hashDir = `${root}/${sha256Hex("/home/dev/legacy")}`;
  const markerDir = `${root}/other`;
  for (const d of [`${slugDir}/chats/${SESSION}`, `${hashDir}/chats`, `${markerDir}/chats`]) {
    await Deno.mkdir(d, { recursive: true });
  }
  await Deno.writeTextFile(
    `${home}/.gemini/projects.json`,
    JSON.stringify({
      projects: { "/home/dev/todo-app": "todo-app", "/home/dev/legacy": "legacy" },
    }),
  );
  await Deno.writeTextFile(`${markerDir}/.project_root`, "/home/dev/other\n");
  const copy = (name: string, to: string) => Deno.copyFile(`${DIR}${name}`, to);
  await copy(
    "session-2026-11-22T15-00-5e551011.jsonl",
    `${slugDir}/chats/session-2026-11-22T15-00-5e551011.jsonl`,
  );
  await copy(
    "subagent.jsonl",
    `${slugDir}/chats/${SESSION}/5ab5e551-0000-4000-8000-000000000001.jsonl`,
  );
  await copy("logs.json", `${slugDir}/logs.json`);
  await copy("checkpoint-my%20tag.json", `${slugDir}/checkpoint-my%20tag.json`);
  await copy(
    "session-2025-12-01T08-00-1e9ac700.json",
    `${hashDir}/chats/session-2025-12-01T08-00-1e9ac700.json`,
  );
  await copy("checkpoint-release.json", `${markerDir}/checkpoint-release.json`);
  await Deno.writeTextFile(`${slugDir}/chats/notes.txt`, "not a session");

  const refs = await geminiCliSource.discover(root, () => {});
  const byName = new Map(refs.map((r) => [r.path.slice(root.length + 1), r]));
  assertEquals(
    [...byName.keys()].sort(),
    [
      `${hashDir.slice(root.length + 1)}/chats/session-2025-12-01T08-00-1e9ac700.json`,
      "other/checkpoint-release.json",
      "todo-app/checkpoint-my%20tag.json",
      `todo-app/chats/${SESSION}/5ab5e551-0000-4000-8000-000000000001.jsonl`,
      "todo-app/chats/session-2026-11-22T15-00-5e551011.jsonl",
      "todo-app/logs.json",
    ].sort(),
  );
  const jsonl = byName.get("todo-app/chats/session-2026-11-22T15-00-5e551011.jsonl")!;
  assertEquals(jsonl.form, "lines");
  assertEquals(jsonl.hint.projectPath, "/home/dev/todo-app");
  const legacy = [...byName.values()].find((r) => r.hint.kind === "json")!;
  assertEquals(legacy.form, "whole");
  assertEquals(
    legacy.hint.projectPath,
    "/home/dev/legacy",
    "a hash folder maps through projects.json",
  );
  assertEquals(byName.get("other/checkpoint-release.json")!.hint.projectPath, "/home/dev/other");
  assertEquals(byName.get("todo-app/checkpoint-my%20tag.json")!.hint.tag, "my tag");
  assertEquals(byName.get("todo-app/logs.json")!.hint.recorded, "5e551011");
  const sub = byName.get(`todo-app/chats/${SESSION}/5ab5e551-0000-4000-8000-000000000001.jsonl`)!;
  assertEquals(sub.hint.parentSessionId, SESSION);
  assertEquals(
    (await geminiCliSource.classify(jsonl.path, root))?.hint,
    jsonl.hint,
    "an event's path is classified as discovery would",
  );
});

Deno.test({
  name: "gemini_cli parser: conformance over ../shared/fixtures/gemini_cli",
  ignore: !sharedFixturesPresent("gemini_cli"),
  fn: async (t) => {
    const root = `${SHARED_FIXTURES}/gemini_cli`;
    const files = [...Deno.readDirSync(root)].map((e) => e.name)
      .filter((n) => n.endsWith(".json") || n.endsWith(".jsonl")).sort();
    assert(files.length >= 3, `expected the shared fixtures, found ${files.length}`);
    for (const name of files) {
      await t.step(name, () => {
        const bytes = Deno.readFileSync(`${root}/${name}`);
        if (name.endsWith(".json")) {
          const out = parse(bytes, { kind: "json" as const });
          const doc = JSON.parse(new TextDecoder().decode(bytes));
          assertEquals(out.issues, []);
          assertEquals(out.messages, doc.messages.length, "every message record is delivered");
          BatchSchema.parse({ source_type: "gemini_cli", conversations: out.conversations });
          return;
        }
        const outputs = parseByLine(bytes, { kind: "jsonl" as const });
        for (const [i, o] of outputs.entries()) {
          const skipped = Object.values(o.skipped).reduce((a, b) => a + b, 0);
          assert(
            o.messages + o.metadata + skipped + o.issues.length > 0,
            `line ${i + 1} of ${name} is a message, metadata, skipped with a reason or reported`,
          );
          assertEquals(o.issues, []);
          assertEquals(o.warnings ?? [], []);
        }
        const whole = parse(bytes, { kind: "jsonl" as const });
        BatchSchema.parse({ source_type: "gemini_cli", conversations: whole.conversations });
        const records = new TextDecoder().decode(bytes).split("\n").filter(Boolean)
          .map((l) => JSON.parse(l)).filter((r) => r.id && r.type);
        assertEquals(
          whole.messages,
          new Set(records.map((r) => r.id)).size,
          "each message id is delivered once",
        );
      });
    }
  },
});

Deno.test("gemini_cli source: a file named unlike a session is passed over with a word", async () => {
  const root = await Deno.makeTempDir();
  await Deno.mkdir(`${root}/proj/chats`, { recursive: true });
  await Deno.writeTextFile(`${root}/proj/chats/session-notes.jsonl`, "{}\n");
  const skipped: string[] = [];
  const refs = await geminiCliSource.discover(root, () => {}, undefined, (m) => skipped.push(m));
  assertEquals(refs, []);
  assertEquals(skipped, [
    `${root}/proj/chats/session-notes.jsonl: skipped: not named like a Gemini CLI session, log or checkpoint`,
  ]);
});
