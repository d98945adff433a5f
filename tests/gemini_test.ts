/**
 * The Gemini Takeout parser: conversations grouped by link or time gap with ids that stay when a
 * later Takeout adds newer records, non-prompt activity counted, Canvas kept, drafts, other
 * languages, the HTML form, browser exporters' files; conformance over ../shared/fixtures/gemini.
 */
import { assert, assertEquals } from "./assert.ts";
import {
  GEMINI_SHAPES,
  type GeminiCarry,
  type GeminiHint,
  GROUP_CHARS,
  parseGemini,
} from "../parsers/gemini.ts";
import { wholePart } from "../parsers/document.ts";
import { CELL_MARKER, takeoutTime } from "../parsers/gemini_html.ts";
import { MarkerCutter } from "../common/units/cut_parts.ts";
import { type Conversation, ConversationSchema } from "../common/types.ts";
import { type LineIssue, pagePart } from "../common/source.ts";
import { geminiRecord } from "../bench/export_corpus.ts";
import { SHARED_FIXTURES, sharedFixturesPresent } from "./helpers.ts";

const activity: GeminiHint = { kind: "activity" };

function parse(records: unknown[], parts = 1, hint: GeminiHint = activity) {
  const size = Math.ceil(records.length / parts);
  let carry: GeminiCarry | undefined;
  const out = {
    conversations: [] as ReturnType<typeof parseGemini>["conversations"],
    skipped: {} as Record<string, number>,
    issues: 0,
  };
  for (let i = 0; i < parts; i++) {
    const slice = records.slice(i * size, (i + 1) * size);
    const got = parseGemini({
      bytes: new Uint8Array(0),
      firstLine: 1,
      carry,
      file: { path: "MyActivity.json", hint, host: "h" },
      document: {
        root: "array",
        header: {},
        recordsKey: "",
        records: slice,
        index: i * size,
        first: i === 0,
        last: i === parts - 1,
      },
    });
    carry = got.carry;
    out.conversations.push(...got.conversations);
    for (const [k, v] of Object.entries(got.skipped)) out.skipped[k] = (out.skipped[k] ?? 0) + v;
    out.issues += got.issues.length;
  }
  return out;
}

/** Records newest first, as Takeout writes them. */
const older = [
  geminiRecord("2026-03-10T18:12:00.000Z", "Weather in Paris?"),
  geminiRecord("2026-03-10T18:14:00.000Z", "and in Rome?"),
  geminiRecord("2026-03-11T09:00:00.000Z", "A pasta recipe"),
].reverse();

Deno.test("gemini: records grouped by a time gap, ids stable when newer records come on top", () => {
  const first = parse(older);
  assertEquals(first.conversations.length, 2);
  const [recipe, weather] = first.conversations;
  assertEquals(recipe.messages.length, 2);
  assertEquals(recipe.title, "A pasta recipe");
  assertEquals(weather.messages.map((m) => m.role), ["user", "assistant", "user", "assistant"]);
  assertEquals(weather.messages[2].parent_uuid, weather.messages[1].uuid);
  assertEquals(weather.messages[2].round_index, 2);
  assertEquals(weather.created_at, "2026-03-10T18:12:00.000Z");
  for (const c of first.conversations) ConversationSchema.parse(c);
  // A later Takeout: a follow-up to the pasta chat and a new chat, on top.
  const later = [
    geminiRecord("2026-03-12T08:00:00.000Z", "Something new"),
    geminiRecord("2026-03-11T09:05:00.000Z", "without eggs?"),
    ...older,
  ];
  const second = parse(later);
  assertEquals(second.conversations.length, 3);
  const grown = second.conversations.find((c) => c.uuid === recipe.uuid)!;
  assertEquals(grown.messages.slice(0, 2), recipe.messages);
  assertEquals(grown.messages.length, 4);
  assertEquals(
    second.conversations.find((c) => c.uuid === weather.uuid)!.messages,
    weather.messages,
  );
});

Deno.test("gemini: parts give what the whole gives", () => {
  const records = [
    geminiRecord("2026-03-12T08:00:00.000Z", "Something new"),
    geminiRecord("2026-03-11T09:05:00.000Z", "without eggs?"),
    ...older,
  ];
  assertEquals(parse(records, 3).conversations, parse(records).conversations);
  assertEquals(parse(records, 5).conversations, parse(records).conversations);
});

Deno.test("gemini: links, other activity, Canvas, drafts and other languages", () => {
  const link = (r: Record<string, unknown>, id: string) => ({
    ...r,
    titleUrl: `https://gemini.google.com/app/${id}`,
  });
  const records = [
    {
      header: "Gemini Apps",
      title: "Gave feedback: Bad response (Unspecified)",
      time: "2026-03-10T18:30:00.000Z",
    },
    { header: "Gemini Apps", title: "Answered survey question", time: "2026-03-10T18:29:00.000Z" },
    {
      header: "Gemini Apps",
      title: "Created Gemini Canvas titled Plan",
      time: "2026-03-10T18:28:00.000Z",
      subtitles: [{ name: "Day 1: Paris" }],
    },
    link({
      ...geminiRecord("2026-03-10T18:20:00.000Z", "two drafts"),
      safeHtmlItem: [{ html: "<p>A</p>" }, { html: "<p>B</p>" }],
    }, "aaaa1111bbbb2222"),
    link(geminiRecord("2026-03-10T18:19:00.000Z", "linked"), "aaaa1111bbbb2222"),
    {
      ...geminiRecord("2026-03-10T18:18:00.000Z", ""),
      title: "Eingegebener Prompt: Wie spät ist es?",
    },
    { ...geminiRecord("2026-03-10T18:17:00.000Z", ""), title: "Prompt saisi : Quelle heure ?" },
  ];
  const out = parse(records);
  assertEquals(out.skipped, {
    "not a prompt: Gave feedback": 1,
    "not a prompt: Answered survey question": 1,
  });
  const linked = out.conversations.find((c) => c.metadata.gemini_id === "aaaa1111bbbb2222")!;
  assertEquals(linked.messages.length, 5);
  assertEquals(linked.messages.filter((m) => m.metadata?.draft === 1).length, 1);
  const canvas = out.conversations.flatMap((c) => c.messages).find((m) => m.metadata?.canvas);
  assertEquals(canvas?.content_text, "Day 1: Paris");
  const texts = out.conversations.flatMap((c) => c.messages).filter((m) => m.role === "user").map((
    m,
  ) => m.content_text);
  assert(texts.includes("Wie spät ist es?"), texts.join("|"));
  assert(texts.includes("Quelle heure ?"), texts.join("|"));
  for (const c of out.conversations) ConversationSchema.parse(c);
});

/** One record of a `MyActivity.html` as Takeout writes it. */
const cell = (title: string, date: string, response: string, link = "") =>
  `<div class="outer-cell mdl-cell mdl-cell--12-col mdl-shadow--2dp"><div class="mdl-grid"><div class="header-cell mdl-cell mdl-cell--12-col"><p class="mdl-typography--title">Gemini Apps<br></p></div><div class="content-cell mdl-cell mdl-cell--6-col mdl-typography--body-1">${title}<br>${date}<br>${response}</div><div class="content-cell mdl-cell mdl-cell--12-col mdl-typography--caption"><b>Products:</b><br>&emsp;Gemini Apps<br>${
    link ? `<b>Details:</b><br>&emsp;<a href="${link}">${link}</a><br>` : ""
  }</div></div></div>`;

/** The parse of a `MyActivity.html` page of `cells`. */
function parsedPage(cells: string) {
  return parseGemini({
    bytes: new TextEncoder().encode(
      `<html><body><div class="mdl-grid">${cells}</div></body></html>`,
    ),
    firstLine: 1,
    carry: undefined,
    file: { path: "MyActivity.html", hint: activity, host: "h" },
  });
}

Deno.test("gemini: MyActivity.html reads like the JSON", () => {
  const out = parsedPage(
    cell(
      "Prompted&nbsp;and in Rome?",
      "Mar 10, 2026, 7:14:00 PM CET",
      "<div><p>Sunny &amp; warm.</p></div>",
    ) +
      cell("Prompted&nbsp;Weather in Paris?", "Mar 10, 2026, 7:12:00 PM CET", "<p>Rain.</p>") +
      cell("Eingegebener Prompt: Hallo", "not a date", "<p>x</p>"),
  );
  assertEquals(out.conversations.length, 1);
  const [c] = out.conversations;
  assertEquals(c.messages.map((m) => m.content_text), [
    "Weather in Paris?",
    "Rain.",
    "and in Rome?",
    "Sunny & warm.",
  ]);
  assertEquals(c.created_at, "2026-03-10T18:12:00.000Z");
  assertEquals(out.issues.length, 1);
  assertEquals(takeoutTime("10.03.2026, 19:12:00 MEZ"), "2026-03-10T18:12:00.000Z");
});

Deno.test("gemini: MyActivity.html in parts of whole cells gives what it gives whole", () => {
  // 55 prompts in 11 conversations (an hour between them), newest first, and a cell without a
  // date.
  const cells = [];
  for (let i = 54; i >= 0; i--) {
    const time = `Mar 10, 2026, ${1 + Math.floor(i / 5)}:0${i % 5}:00 PM CET`;
    cells.push(cell(`Prompted&nbsp;q${i}`, time, `<p>a${i}</p>`));
    if (i === 30) cells.push(cell("Prompted&nbsp;undated", "not a date", "<p>x</p>"));
  }
  const page = `<html><body><div class="mdl-grid">${cells.join("")}</div></body></html>`;
  const whole = parsedPage(cells.join(""));
  for (const partBytes of [1, 700, 5000]) {
    const cutter = new MarkerCutter(CELL_MARKER, partBytes, 1 << 20);
    const parts = [...cutter.push(new TextEncoder().encode(page)), ...cutter.end()];
    let carry: GeminiCarry | undefined;
    const conversations: Conversation[] = [];
    const issues: LineIssue[] = [];
    parts.forEach((part, i) => {
      const out = parseGemini({
        bytes: part.bytes,
        document: pagePart(part.cellsBefore, i === 0, i === parts.length - 1),
        firstLine: 1,
        carry,
        file: { path: "MyActivity.html", hint: activity, host: "h" },
      });
      carry = out.carry;
      conversations.push(...out.conversations);
      issues.push(...out.issues);
    });
    assertEquals(conversations, whole.conversations, `parts of ${partBytes} bytes`);
    assertEquals(issues, whole.issues);
    assertEquals(whole.issues.map((x) => x.line), [26]);
    assertEquals(whole.conversations.length, 11);
  }
});

/**
 * A run of prompts a minute apart, each with a 100,000-character answer: 3 MB, parsed whole;
 * `link`: the conversation link each record carries.
 */
function longRun(link?: string) {
  const records = Array.from({ length: 30 }, (_, i) => {
    const time = new Date(Date.UTC(2026, 2, 10, 18, 30 - i)).toISOString();
    const record = geminiRecord(time, `prompt ${i}`);
    record.safeHtmlItem = [{ html: `<p>${"a".repeat(100_000)}</p>` }];
    if (link) record.titleUrl = link;
    return record;
  });
  return parseGemini({
    bytes: new Uint8Array(0),
    firstLine: 1,
    carry: undefined,
    file: { path: "MyActivity.json", hint: activity, host: "h" },
    document: wholePart(records, GEMINI_SHAPES.activity),
  });
}

Deno.test("gemini: a run of prompts of more than GROUP_CHARS is cut into conversations", () => {
  // Held whole until its oldest record, a run a year long ran the worker out of memory.
  const out = longRun();
  assertEquals(out.conversations.length, 2);
  assertEquals(out.conversations.reduce((n, c) => n + c.messages.length, 0), 60);
  assert(out.conversations.every((c) => c.messages.length <= 2 * (GROUP_CHARS / 100_000) + 2));
  assertEquals(out.warnings?.length, 1);
});

Deno.test("gemini: a linked conversation cut by GROUP_CHARS keeps one thread", () => {
  const out = longRun("https://gemini.google.com/app/0123abcd");
  assertEquals(out.conversations.length, 2);
  assertEquals(new Set(out.conversations.map((c) => c.uuid)).size, 1, "one conversation id");
  const messages = out.conversations.flatMap((c) => c.messages);
  assertEquals(messages.length, 60);
  // Oldest first: each message follows the one before it, across the cut.
  const thread = [...messages].sort((a, b) =>
    a.created_at.localeCompare(b.created_at) || (a.role === "user" ? -1 : 1)
  );
  assertEquals(thread[0].parent_uuid, "");
  for (let i = 1; i < thread.length; i++) {
    assertEquals(thread[i].parent_uuid, thread[i - 1].uuid, `message ${i}`);
  }
});

Deno.test("gemini: MyActivity.html in Chinese, Japanese and Korean", async (t) => {
  const moment = "2026-03-10T18:12:00.000Z";
  await t.step("the year-first dates, their markers and zones", () => {
    for (
      const date of [
        "2026年3月11日 上午2:12:00 GMT+08:00",
        "2026年3月11日 02:12:00 CST",
        "2026/03/11 3:12:00 JST",
        "2026/03/11 午前3:12:00 JST",
        "2026. 3. 11. 오전 3:12:00 KST",
        "2026. 3. 11. (수) 오전 3:12:00 [GMT+9]",
        "2026年3月10日 下午6:12:00 UTC",
      ]
    ) assertEquals(takeoutTime(date), moment, date);
    for (
      const date of [
        "2026/13/11 3:12:00 JST",
        "2026年3月11日 下午13:12:00 CST",
        "2026/03/11 3:12:00 XYZ",
        "2026/03/11 3:12 JST",
        "2026/02/30 3:12:00 JST",
        "Feb 30, 2026, 3:12:00 AM CET",
        "2026/03/11 3:12:00 GMT+99",
        // Long runs of spaces where a date is expected: no backtracking over them (each such
        // run made the first version of the pattern take time to the fifth power of its length).
        `2026.3.11${" ".repeat(1000)}3:12:00${" ".repeat(1000)}!`,
        `2026.3.11 ${"(x) ".repeat(1000)}3:12:00 JST`,
      ]
    ) assertEquals(takeoutTime(date), "", date.slice(0, 40));
    assertEquals(takeoutTime(`2026. 3. 11.${"\u00a0".repeat(5)}오전 3:12:00 KST`), moment);
  });
  await t.step("a prompt after a full-width colon; the records in one conversation", () => {
    const out = parsedPage(
      cell("提示：北京天气如何？", "2026年3月11日 上午2:14:00 CST", "<p>晴。</p>") +
        cell("プロンプト: 東京は？", "2026/03/11 3:13:00 JST", "<p>雨。</p>") +
        cell("프롬프트: 서울은?", "2026. 3. 11. 오전 3:12:00 KST", "<p>눈.</p>"),
    );
    assertEquals(out.issues, []);
    assertEquals(out.conversations.length, 1);
    assertEquals(out.conversations[0].created_at, moment);
    assertEquals(
      out.conversations[0].messages.filter((m) => m.role === "user").map((m) => m.content_text),
      ["서울은?", "東京は？", "北京天气如何？"],
    );
  });
});

Deno.test("gemini: a browser exporter's conversation file", () => {
  const out = parseGemini({
    bytes: new Uint8Array(0),
    firstLine: 1,
    carry: undefined,
    file: {
      path: "chat.json",
      hint: { kind: "conversation", mtime: "2026-05-01T10:00:00.000Z" },
      host: "h",
    },
    document: {
      root: "object",
      header: { title: "Trip" },
      recordsKey: "data",
      records: [
        { role: "user", content_type: "text", content: "Plan a trip", files: ["map.png"] },
        {
          role: "model",
          content_type: "markdown",
          content: "**Day 1**",
          model_thoughts: "short trip",
          model: "2.5 Pro",
        },
      ],
      index: 0,
      first: true,
      last: true,
    },
  });
  const [c] = out.conversations;
  ConversationSchema.parse(c);
  assertEquals(c.title, "Trip");
  assertEquals(c.messages[1].model, "2.5 Pro");
  assertEquals((c.messages[1].content.parts as Record<string, unknown>[])[0].type, "thinking");
});

Deno.test("gemini: conformance over the public fixture", async () => {
  if (!sharedFixturesPresent("gemini")) return;
  const records = JSON.parse(
    await Deno.readTextFile(`${SHARED_FIXTURES}/gemini/chatlore_MyActivity.json`),
  );
  const out = parse(records);
  const skipped = Object.values(out.skipped).reduce((a, b) => a + b, 0);
  const users =
    out.conversations.flatMap((c) => c.messages).filter((m) => m.role === "user").length;
  // Every record is a prompt, a Canvas, skipped by its kind, or named as malformed.
  const canvases =
    out.conversations.flatMap((c) => c.messages).filter((m) => m.metadata?.canvas).length;
  assertEquals(users + canvases + skipped + out.issues, records.length);
  for (const c of out.conversations) ConversationSchema.parse(c);
});
