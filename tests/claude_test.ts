/**
 * The Claude.ai export parser: 2024 text with tags, 2025 content blocks, trees with the sentinel
 * root, attachments, files and projects; conformance over ../shared/fixtures/claude when present.
 */
import { assert, assertEquals } from "./assert.ts";
import { type ClaudeHint, parseClaude, projectOf, projectSummary } from "../parsers/claude.ts";
import { ConversationSchema } from "../common/types.ts";
import { isUuid } from "../parsers/json_lines.ts";
import { claudeConversation } from "../bench/export_corpus.ts";
import { SHARED_FIXTURES, sharedFixturesPresent } from "./helpers.ts";

function parse(records: unknown[], hint: ClaudeHint = {}) {
  return parseClaude({
    bytes: new Uint8Array(0),
    firstLine: 1,
    carry: undefined,
    file: { path: "conversations.json", hint, host: "h" },
    document: {
      root: "array",
      header: {},
      recordsKey: "",
      records,
      index: 0,
      first: true,
      last: true,
    },
  });
}

const ID = "c0000000-0000-4000-8000-000000000001";

Deno.test("claude: 2024 text with antThinking and antArtifact tags", () => {
  const text =
    'Sure.<antThinking>A plot is best.</antThinking>Here it is: <antArtifact identifier="plot" type="application/vnd.ant.code" language="python" title="plot.py">import matplotlib</antArtifact> Enjoy.';
  const out = parse([{
    uuid: ID,
    name: "",
    created_at: "2024-10-01T10:00:00.000000Z",
    updated_at: "2024-10-01T10:01:00.000000Z",
    chat_messages: [
      {
        uuid: "m1",
        sender: "human",
        text: "plot sales",
        created_at: "2024-10-01T10:00:00.000000Z",
      },
      { uuid: "m2", sender: "assistant", text, created_at: "2024-10-01T10:00:30.000000Z" },
    ],
  }]);
  const [c] = out.conversations;
  ConversationSchema.parse(c);
  assertEquals(c.title, "plot sales");
  assertEquals(c.metadata.title_source, "first_prompt");
  const parts = c.messages[1].content.parts as Record<string, unknown>[];
  assertEquals(parts.map((p) => p.type), ["text", "thinking", "text", "tool_use", "text"]);
  assertEquals((parts[3].input as Record<string, unknown>).title, "plot.py");
  assertEquals((parts[3].input as Record<string, unknown>).content, "import matplotlib");
  assertEquals(c.messages[1].parent_uuid, c.messages[0].uuid);
  assertEquals(c.messages.map((m) => m.round_index), [1, 1]);
});

Deno.test("claude: message ids that are not UUIDs are scoped to their conversation", () => {
  // An export made by hand or by another tool: every conversation numbers its messages.
  const conversation = (uuid: string) => ({
    uuid,
    name: "",
    created_at: "2024-10-01T10:00:00.000000Z",
    chat_messages: [
      { uuid: "m1", sender: "human", text: `ask ${uuid}`, created_at: "2024-10-01T10:00:00Z" },
      {
        uuid: "m2",
        parent_message_uuid: "m1",
        sender: "assistant",
        text: "answer",
        created_at: "2024-10-01T10:00:30Z",
      },
    ],
  });
  const out = parse([conversation(ID), conversation(`${ID}-2`)]);
  const ids = out.conversations.flatMap((c) => c.messages.map((m) => m.uuid));
  assertEquals(new Set(ids).size, 4, "four messages, four ids");
  assert(ids.every(isUuid), ids.join(", "));
  for (const c of out.conversations) {
    assertEquals(c.messages[1].parent_uuid, c.messages[0].uuid);
  }
  // The same export again gives the same ids; a UUID is kept as given.
  assertEquals(parse([conversation(ID)]).conversations[0].messages[0].uuid, ids[0]);
  const real = claudeConversation(ID, 1) as { chat_messages: { uuid: string }[] };
  const [kept] = parse([real]).conversations;
  assertEquals(kept.messages[0].uuid, real.chat_messages[0].uuid);
});

Deno.test("claude: 2025 blocks, a tree from the sentinel root, attachments, files, projects", () => {
  const conversation = claudeConversation(ID, 2) as Record<string, unknown>;
  const messages = conversation.chat_messages as Record<string, unknown>[];
  messages[0].parent_message_uuid = "00000000-0000-4000-8000-000000000000";
  messages[0].attachments = [{
    file_name: "notes.txt",
    file_size: 5,
    file_type: "txt",
    extracted_content: "milk eggs",
  }];
  messages[0].files = [{ file_uuid: "f1", file_name: "photo.png" }];
  messages[1].parent_message_uuid = messages[0].uuid;
  messages[1].content = [
    {
      type: "tool_use",
      id: "t1",
      name: "artifacts",
      input: { command: "create", id: "a1", content: "x" },
    },
    {
      type: "tool_result",
      tool_use_id: "t1",
      name: "artifacts",
      content: [{ type: "text", text: "ok" }],
      is_error: false,
    },
    { type: "text", text: "done", citations: [{ url: "https://x" }] },
  ];
  // A retry: a second answer under the same prompt.
  messages.push({
    ...messages[1],
    uuid: "retry",
    text: "again",
    content: [{ type: "text", text: "again" }],
  });
  conversation.project = { uuid: "p1" };
  const project = {
    uuid: "p1",
    name: "Shop",
    prompt_template: "Be brief.",
    created_at: "2025-06-27T10:46:02.691887+00:00",
    docs: [{ uuid: "d1", filename: "spec.md", content: "rules" }],
  };
  const out = parse([conversation, { ...conversation, uuid: `${ID}-2` }], {
    projects: { p1: projectSummary(projectOf(project)!) },
  });
  // The two conversations name the project; its knowledge is read from the projects' member.
  assertEquals(out.conversations.map((x) => x.uuid), [ID, `${ID}-2`]);
  const [c] = out.conversations;
  for (const x of out.conversations) ConversationSchema.parse(x);
  assertEquals(out.messages, 2 * c.messages.length);
  const projects = parse([project], { kind: "projects" });
  const [knowledge] = projects.conversations;
  ConversationSchema.parse(knowledge);
  assertEquals(knowledge.uuid, "p1");
  assertEquals(knowledge.title, "Shop");
  assertEquals(knowledge.metadata.kind, "project");
  assertEquals(knowledge.messages.map((m) => [m.role, m.content_text, m.metadata?.filename]), [
    ["system", "Be brief.", undefined],
    ["system", "rules", "spec.md"],
  ]);
  // A document id that is not a UUID is scoped to its project.
  assert(isUuid(knowledge.messages[1].uuid), knowledge.messages[1].uuid);
  assertEquals(c.messages[0].parent_uuid, "");
  assertEquals(c.messages[1].parent_uuid, messages[0].uuid);
  assertEquals(c.messages[2].parent_uuid, messages[0].uuid);
  assert(c.messages[0].content_text.includes("milk eggs"), c.messages[0].content_text);
  const first = c.messages[0].content.parts as Record<string, unknown>[];
  assertEquals(first.map((p) => p.type), ["text", "attachment", "file"]);
  const second = c.messages[1].content.parts as Record<string, unknown>[];
  assertEquals(second.map((p) => p.type), ["tool_use", "tool_result", "text"]);
  assertEquals(second[1].content, "ok");
  assertEquals(c.metadata.project_name, "Shop");
  assertEquals(c.metadata.project, { uuid: "p1", name: "Shop", documents: 1 });
  assertEquals(c.title, `Chat ${ID.slice(-4)}`);
});

Deno.test("claude: a project file is one project, read from its root object once whole", () => {
  const project = { uuid: "p2", name: "Notes", docs: [{ filename: "a.md", content: "alpha" }] };
  const part = (last: boolean) =>
    parseClaude({
      bytes: new Uint8Array(0),
      firstLine: 1,
      carry: undefined,
      file: { path: "projects/p2.json", hint: { kind: "projects" }, host: "h" },
      document: {
        root: "object",
        header: project,
        recordsKey: null,
        records: [],
        index: 0,
        first: true,
        last,
      },
    });
  assertEquals(part(false).conversations, []);
  const [knowledge] = part(true).conversations;
  assertEquals(knowledge.uuid, "p2");
  assertEquals(knowledge.messages.map((m) => m.content_text), ["alpha"]);
  const bad = parse([7, { name: "no uuid" }], { kind: "projects" });
  assertEquals(bad.conversations, []);
  assertEquals(bad.issues.map((i) => i.line), [1, 2]);
});

Deno.test("claude: a project id that names an object's own property finds no project", () => {
  const conversation = claudeConversation(ID, 1) as Record<string, unknown>;
  conversation.project_uuid = "constructor";
  const out = parse([conversation], { projects: {} });
  const [c] = out.conversations;
  ConversationSchema.parse(c);
  assertEquals(c.metadata.project_uuid, "constructor");
  assertEquals(c.metadata.project_name, undefined);
});

Deno.test("claude: records that are not conversations are named and skipped", () => {
  const out = parse([{ uuid: ID }, 7, claudeConversation(ID, 1)]);
  assertEquals(out.conversations.length, 1);
  assertEquals(out.issues.map((i) => i.line), [1, 2]);
});

Deno.test("claude: conformance over the public fixtures", async (t) => {
  if (!sharedFixturesPresent("claude")) return;
  for (
    const name of [
      "anthropic-data_2025-07_conversations.json",
      "claude-to-sqlite_2024-10_artifacts.json",
      "claude-to-sqlite_2024-10_example.json",
    ]
  ) {
    await t.step(name, async () => {
      const value = JSON.parse(await Deno.readTextFile(`${SHARED_FIXTURES}/claude/${name}`));
      const records = Array.isArray(value) ? value : [value];
      const out = parse(records);
      assertEquals(out.issues, []);
      assertEquals(out.conversations.length, records.length);
      records.forEach((record, i) => {
        const c = out.conversations[i];
        ConversationSchema.parse(c);
        assertEquals(
          c.messages.map((m) => m.uuid),
          record.chat_messages.map((m: { uuid: string }) => m.uuid),
        );
      });
    });
  }
  await t.step("anthropic-data_2025-07_projects.json", async () => {
    const path = `${SHARED_FIXTURES}/claude/anthropic-data_2025-07_projects.json`;
    const projects = JSON.parse(await Deno.readTextFile(path)) as {
      uuid: string;
      prompt_template: string;
      docs: { uuid: string }[];
    }[];
    const out = parse(projects, { kind: "projects" });
    assertEquals(out.issues, []);
    assertEquals(out.conversations.map((c) => c.uuid), projects.map((p) => p.uuid));
    projects.forEach((project, i) => {
      const c = out.conversations[i];
      ConversationSchema.parse(c);
      // The instructions, then every document under its own uuid.
      assertEquals(
        c.messages.map((m) => m.uuid).slice(project.prompt_template ? 1 : 0),
        project.docs.map((d) => d.uuid),
      );
    });
  });
});
