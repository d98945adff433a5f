import { assert, assertEquals } from "./assert.ts";
import {
  type ClaudeCodeCarry,
  type ClaudeCodeHint,
  parseClaudeCode,
} from "../parsers/claude_code.ts";
import type { FileContext, ParseOutput } from "../common/source.ts";
import { BatchSchema, type Message } from "../common/types.ts";
import { SHARED_FIXTURES, sharedFixturesPresent } from "./helpers.ts";

const SESSION = "11111111-1111-4111-8111-111111111111";
const DIR = new URL("./fixtures/claude_code/-home-dev-shop/", import.meta.url);
const sessionBytes = Deno.readFileSync(new URL(`${SESSION}.jsonl`, DIR));
const sessionFile: FileContext<ClaudeCodeHint> = {
  path: `${SESSION}.jsonl`,
  hint: { kind: "session" as const, sessionId: SESSION },
  host: "laptop",
};

function parseAll(bytes: Uint8Array, file = sessionFile): ParseOutput<ClaudeCodeCarry> {
  return parseClaudeCode({ bytes, firstLine: 1, carry: undefined, file });
}

function byUuid(messages: Message[]): Map<string, Message> {
  return new Map(messages.map((m) => [m.uuid, m]));
}

/** Byte offsets of the starts of every line after the first. */
function lineStarts(bytes: Uint8Array): number[] {
  const starts: number[] = [];
  for (let i = 0; i < bytes.length - 1; i++) if (bytes[i] === 10) starts.push(i + 1);
  return starts;
}

Deno.test("claude_code parser: our session fixture", async (t) => {
  const out = parseAll(sessionBytes);
  const conversation = out.conversations[0];
  const m = byUuid(conversation.messages);

  await t.step("every line is accounted for", () => {
    const skipped = Object.values(out.skipped).reduce((a, b) => a + b, 0);
    assertEquals(out.messages, 18);
    assertEquals(out.metadata, 3);
    assertEquals(skipped, 5);
    assertEquals(out.issues.length, 1);
    assertEquals(out.messages + out.metadata + skipped + out.issues.length, 27);
    assertEquals(out.skipped['unknown type "brand-new-line-type"'], 1);
    assertEquals(out.skipped["progress"], 1);
    assertEquals(out.skipped["file-history-snapshot"], 1);
    assertEquals(out.skipped["queue-operation"], 1);
  });

  await t.step("a malformed line is reported with its line number", () => {
    assertEquals(out.issues[0].line, 23);
    assert(out.issues[0].message.startsWith("invalid JSON"));
  });

  await t.step("the batch validates against the schema", () => {
    BatchSchema.parse({ source_type: "claude_code", conversations: out.conversations });
  });

  await t.step("conversation fields and metadata", () => {
    assertEquals(conversation.uuid, SESSION);
    // ai-title outranks the summary line; the summary pointing elsewhere is ignored.
    assertEquals(conversation.title, "Cart total with coupons");
    assertEquals(conversation.created_at, "2025-11-20T10:00:01.000Z");
    assertEquals(conversation.updated_at, "2025-11-20T10:00:20.000Z");
    assertEquals(conversation.metadata.cwd, "/home/dev/shop");
    assertEquals(conversation.metadata.project_name, "shop");
    assertEquals(conversation.metadata.git_branch, "main");
    assertEquals(conversation.metadata.cli_version, "2.1.197");
    assertEquals(conversation.metadata.model, "claude-sonnet-4-5");
    assertEquals(conversation.metadata.host, "laptop");
    assertEquals(conversation.metadata.message_count, 18);
  });

  await t.step("usage is counted once per API response", () => {
    // msg_01 spans three lines with output 8 → 20 → 42: only 42 counts; the replayed msg_05 once.
    const output = 42 + 5 + 7 + 3 + 30;
    assertEquals(conversation.metadata.usage, {
      input: 50,
      output,
      cache_read: 5000,
      cache_write: 500,
      reasoning: 0,
      total: 50 + output + 5000 + 500,
    });
    assertEquals(m.get("a1")!.usage?.output, 42);
    assertEquals(m.get("a2")!.usage, undefined);
    assertEquals(m.get("a3")!.usage, undefined);
    assertEquals(m.get("a1")!.metadata?.message_id, "msg_01");
    assertEquals(m.get("a1")!.metadata?.request_id, "req_1");
  });

  await t.step("content blocks", () => {
    assertEquals(m.get("u1")!.content, {
      type: "text",
      text: "The cart total is wrong when a coupon applies.",
    });
    assertEquals(m.get("a1")!.content.type, "thinking");
    assertEquals(m.get("a1")!.content_text, "Look at cart.ts first.");
    assertEquals(m.get("a3")!.content_type, "tool_use");
    assertEquals(m.get("a3")!.content.name, "Read");
    const a4 = m.get("a4")!;
    assertEquals(a4.content_type, "multipart");
    const parts = a4.content.parts as { type: string }[];
    assertEquals(parts.map((p) => p.type), ["redacted_thinking", "tool_use"]);
    assertEquals(a4.model, "claude-sonnet-4-5");
  });

  await t.step("tool results in all three toolUseResult shapes", () => {
    const t1 = m.get("t1")!;
    assertEquals(t1.role, "tool");
    assertEquals(t1.content_type, "tool_result");
    assertEquals(t1.content.tool_use_id, "toolu_1");
    assertEquals((t1.content.tool_use_result as { type: string }).type, "text");
    const t2 = m.get("t2")!;
    assertEquals(t2.content.is_error, true);
    assertEquals(t2.content.tool_use_result, "Error: 1 failing");
    assertEquals(t2.content_text, "1 failing");
    assert(Array.isArray(m.get("t3")!.content.tool_use_result));
  });

  await t.step("images become references, not inline data", () => {
    const u2 = m.get("u2")!;
    const image = (u2.content.parts as Record<string, unknown>[])[1];
    const source = image.source as Record<string, unknown>;
    assertEquals(source.type, "reference");
    assertEquals(source.media_type, "image/png");
    assertEquals(typeof source.sha256, "string");
    assert(!JSON.stringify(u2).includes("iVBORw0KGgo"));
  });

  await t.step("rounds count genuine prompts only", () => {
    const rounds = Object.fromEntries(conversation.messages.map((x) => [x.uuid, x.round_index]));
    assertEquals(rounds.u1, 1);
    assertEquals(rounds.t1, 1); // a tool result does not start a round
    assertEquals(rounds.u2, 2); // text + image prompt
    assertEquals(rounds.s1, 2); // a sidechain prompt is the agent's, not the user's
    assertEquals(rounds.cs1, 2); // compaction summary
    assertEquals(rounds.m2, 2); // local command output
    assertEquals(rounds.u3, 3);
    assertEquals(rounds["a-final"], 3);
  });

  await t.step("roles of generated user lines", () => {
    assertEquals(m.get("cs1")!.role, "system");
    assertEquals(m.get("cs1")!.metadata?.is_compact_summary, true);
    assertEquals(m.get("m1")!.role, "system");
    assertEquals(m.get("m1")!.metadata?.is_meta, true);
    assertEquals(m.get("m2")!.role, "system");
  });

  await t.step(
    "parents: progress lines re-parented, compaction linked to its logical parent",
    () => {
      assertEquals(m.get("u1")!.parent_uuid, "");
      assertEquals(m.get("t1")!.parent_uuid, "a3");
      const c1 = m.get("c1")!;
      assertEquals(c1.role, "system");
      assertEquals(c1.parent_uuid, "t3");
      assertEquals(c1.metadata?.subtype, "compact_boundary");
      assertEquals((c1.content.compactMetadata as { trigger: string }).trigger, "auto");
    },
  );

  await t.step("inline sidechains are marked", () => {
    assertEquals(m.get("s1")!.metadata?.is_sidechain, true);
    assertEquals(m.get("s1")!.parent_uuid, "");
    assertEquals(m.get("s2")!.model, "claude-haiku-4-5");
  });

  await t.step("a replayed uuid is delivered once", () => {
    assertEquals(conversation.messages.filter((x) => x.uuid === "a-final").length, 1);
    assertEquals(out.skipped["duplicate uuid (replayed by a resumed session)"], 1);
  });
});

Deno.test("claude_code parser: a parent too long to be an id reaches the children of a skipped line as a UUID", () => {
  const line = (o: Record<string, unknown>) =>
    JSON.stringify({ sessionId: SESSION, timestamp: "2026-01-01T00:00:00.000Z", ...o });
  const lines = [
    line({ type: "progress", uuid: "p1", parentUuid: "x".repeat(2000) }),
    ...Array.from({ length: 3 }, (_, i) =>
      line({
        type: "user",
        uuid: `u${i}`,
        parentUuid: "p1",
        message: { role: "user", content: `prompt ${i}` },
      })),
  ];
  const out = parseAll(new TextEncoder().encode(lines.join("\n") + "\n"));
  // Not the 2,000 characters once per child, which the schema refuses: the id derived from them.
  const parents = out.conversations[0].messages.map((m) => m.parent_uuid);
  assertEquals(new Set(parents).size, 1);
  assertEquals(parents[0].length, 36);
});

Deno.test("claude_code parser: sub-agent files attach to the parent conversation", async (t) => {
  await t.step("2.1.x <session>/subagents/agent-<id>.jsonl", () => {
    const bytes = Deno.readFileSync(new URL(`${SESSION}/subagents/agent-a7c3.jsonl`, DIR));
    const out = parseAll(bytes, {
      path: "agent-a7c3.jsonl",
      hint: { kind: "agent" as const, sessionId: SESSION, agentId: "a7c3", agentType: "Explore" },
      host: "laptop",
    });
    const [c] = out.conversations;
    assertEquals(c.uuid, SESSION);
    assertEquals(c.title, "");
    // Its own count: the pipeline adds it to the parent's (pipeline_test, "sub-agent files").
    assertEquals(c.metadata.message_count, 2);
    assertEquals(c.metadata.title_source, undefined, "a sub-agent never sets the title");
    assertEquals(c.messages.map((x) => x.metadata?.agent_id), ["a7c3", "a7c3"]);
    assertEquals(c.messages[0].metadata?.agent_type, "Explore");
    assertEquals(c.messages[0].round_index, 0);
  });
  await t.step("2.0.x agent-<id>.jsonl beside the sessions takes the parent from its lines", () => {
    const bytes = Deno.readFileSync(new URL("agent-b9d1.jsonl", DIR));
    const out = parseAll(bytes, {
      path: "agent-b9d1.jsonl",
      hint: { kind: "agent" as const, agentId: "b9d1" },
      host: "h",
    });
    assertEquals(out.conversations[0].uuid, SESSION);
    assertEquals(out.conversations[0].messages[1].metadata?.agent_id, "b9d1");
  });
});

Deno.test("claude_code parser: incremental parses equal one whole parse at every line boundary", () => {
  const whole = parseAll(sessionBytes);
  const strip = (x: Message) => ({ ...x, usage: undefined });
  for (const cut of lineStarts(sessionBytes)) {
    const first = parseAll(sessionBytes.subarray(0, cut));
    const firstLines = new TextDecoder().decode(sessionBytes.subarray(0, cut)).split("\n").length -
      1;
    const second = parseClaudeCode({
      bytes: sessionBytes.subarray(cut),
      firstLine: firstLines + 1,
      carry: JSON.parse(JSON.stringify(first.carry)),
      file: sessionFile,
    });
    const messages = [...first.conversations, ...second.conversations].flatMap((c) => c.messages);
    assertEquals(
      messages.map(strip),
      whole.conversations[0].messages.map(strip),
      `cut at byte ${cut}`,
    );
    const last = second.conversations.at(-1) ?? first.conversations.at(-1)!;
    assertEquals(
      last.metadata.usage,
      whole.conversations[0].metadata.usage,
      `usage, cut at byte ${cut}`,
    );
    assertEquals(second.carry.title, whole.carry.title, `title, cut at byte ${cut}`);
    assertEquals(
      [...first.issues, ...second.issues].map((i) => i.line),
      [23],
      `line numbers, cut at byte ${cut}`,
    );
  }
});

Deno.test("claude_code parser: ids are deterministic for lines without uuid", () => {
  const line = JSON.stringify({
    type: "user",
    sessionId: "s9",
    timestamp: "2025-01-01T00:00:00.000Z",
    message: { content: "hi" },
  }) + "\n";
  const bytes = new TextEncoder().encode(line);
  const file = { path: "s9.jsonl", hint: { kind: "session" as const, sessionId: "s9" }, host: "h" };
  const a = parseClaudeCode({ bytes, firstLine: 1, carry: undefined, file });
  const b = parseClaudeCode({ bytes, firstLine: 1, carry: undefined, file });
  assertEquals(a.conversations[0].messages[0].uuid, b.conversations[0].messages[0].uuid);
  assert(
    /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(
      a.conversations[0].messages[0].uuid,
    ),
  );
});

Deno.test("claude_code parser: bad input never throws", async (t) => {
  const file = { path: "x.jsonl", hint: { kind: "session" as const, sessionId: "x" }, host: "h" };
  const cases: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["blank lines", new TextEncoder().encode("\n\n  \n")],
    ["binary garbage", Uint8Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)],
    ["JSON that is not an object", new TextEncoder().encode('[1,2]\n42\n"s"\nnull\n')],
    [
      "wrong field types",
      new TextEncoder().encode(
        JSON.stringify({ type: "user", uuid: 5, message: "x", timestamp: 7 }) + "\n",
      ),
    ],
  ];
  for (const [name, bytes] of cases) {
    await t.step(name, () => {
      const out = parseClaudeCode({ bytes, firstLine: 1, carry: undefined, file });
      BatchSchema.parse({ source_type: "claude_code", conversations: out.conversations });
    });
  }
});

Deno.test({
  name: "claude_code parser: conformance over ../shared/fixtures/claude_code",
  ignore: !sharedFixturesPresent("claude_code"),
  fn: async (t) => {
    const root = `${SHARED_FIXTURES}/claude_code`;
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const e of Deno.readDirSync(dir)) {
        if (e.isDirectory) walk(`${dir}/${e.name}`);
        else if (e.name.endsWith(".jsonl")) files.push(`${dir}/${e.name}`);
      }
    };
    walk(root);
    assert(files.length >= 8, `expected the shared fixtures, found ${files.length}`);
    for (const path of files) {
      await t.step(path.slice(root.length + 1), () => {
        const bytes = Deno.readFileSync(path);
        const lines = new TextDecoder().decode(bytes).split("\n").filter((l, i, all) =>
          i < all.length - 1 || l !== ""
        ).length;
        const name = path.split("/").pop()!;
        const agent = name.match(/^agent-(.+)\.jsonl$/);
        const hint: Record<string, string> = agent
          ? {
            kind: "agent" as const,
            agentId: agent[1],
            ...(path.includes("/subagents/") ? { sessionId: path.split("/").at(-3)! } : {}),
          }
          : { kind: "session" as const, sessionId: name.replace(/\.jsonl$/, "") };
        const out = parseClaudeCode({
          bytes,
          firstLine: 1,
          carry: undefined,
          file: { path, hint, host: "h" },
        });
        const skipped = Object.values(out.skipped).reduce((a, b) =>
          a + b, 0);
        const malformed = out.issues.filter((i) =>
          i.message.startsWith("invalid JSON") || i.message.startsWith("expected a JSON")
        ).length;
        assertEquals(
          out.messages + out.metadata + skipped + malformed,
          lines,
          `every line of ${name} accounted for`,
        );
        BatchSchema.parse({ source_type: "claude_code", conversations: out.conversations });
      });
    }
  },
});

Deno.test("claude_code parser: titles, strongest source first, the first real prompt last", async (t) => {
  const line = (o: Record<string, unknown>) => JSON.stringify(o) + "\n";
  const user = (uuid: string, content: unknown, extra: Record<string, unknown> = {}) =>
    line({
      type: "user",
      uuid,
      parentUuid: null,
      sessionId: SESSION,
      timestamp: "2025-01-01T00:00:00.000Z",
      message: { role: "user", content },
      ...extra,
    });
  const enc = (text: string) => new TextEncoder().encode(text);
  const parse = (text: string, carry?: ClaudeCodeCarry) =>
    parseClaudeCode({ bytes: enc(text), firstLine: 1, carry, file: sessionFile });

  await t.step("no title line: the first prompt the user typed, not a command or caveat", () => {
    const out = parse(
      user("c1", "<local-command-caveat>Caveat: the messages below…</local-command-caveat>", {
        isMeta: true,
      }) +
        user("c2", "<command-name>/model</command-name>\n<command-args>opus</command-args>") +
        user("c3", [{ type: "tool_result", tool_use_id: "t", content: "ok" }]) +
        user("c4", "Fix the rounding of the cart total\nthe tests fail") +
        user("c5", "and then the coupons"),
    );
    const c = out.conversations[0];
    assertEquals(c.title, "Fix the rounding of the cart total");
    assertEquals(c.metadata.title_source, "first_prompt");
  });

  await t.step("a later ai-title replaces the fallback; a custom-title beats both", () => {
    const first = parse(user("d1", "Fix the cart"));
    const later = parse(
      line({ type: "ai-title", sessionId: SESSION, aiTitle: "Cart rounding fix" }),
      first.carry,
    );
    assertEquals(later.conversations[0].title, "Cart rounding fix");
    assertEquals(later.conversations[0].metadata.title_source, "ai");
    const custom = parse(
      line({ type: "custom-title", sessionId: SESSION, customTitle: "Q4 cart bugs" }) +
        line({ type: "ai-title", sessionId: SESSION, aiTitle: "Something else" }),
      later.carry,
    );
    assertEquals(custom.conversations[0].title, "Q4 cart bugs");
    assertEquals(custom.conversations[0].metadata.title_source, "custom");
  });

  await t.step("a summary whose leaf is in the conversation beats the first prompt", () => {
    const out = parse(
      user("e1", "Fix the cart") +
        line({ type: "summary", summary: "Cart fix session", leafUuid: "e1" }) +
        line({ type: "summary", summary: "Someone else's session", leafUuid: "elsewhere" }),
    );
    assertEquals(out.conversations[0].title, "Cart fix session");
    assertEquals(out.conversations[0].metadata.title_source, "summary");
  });
});
