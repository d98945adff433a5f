/**
 * The export reader in process (the ChatGPT source over a real HTTP server): an export imported
 * with errors is read again when what it was read under changes (a larger record limit, another
 * version of ai-sync), and then sends only what it lacked; one imported whole is not.
 */
import { gptConversation, gptUuids } from "../bench/export_corpus.ts";
import type { Parser } from "../common/source.ts";
import { VERSION } from "../common/version.ts";
import type { ChatGptHint } from "../parsers/chatgpt.ts";
import { openaiSource } from "../workers/openai/source.ts";
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { conversationOf, dropSettled, textMessage } from "./helpers.ts";
import { itemOf } from "../common/delivery/item.ts";
import { newReport, selectNew } from "../common/units/export_delta.ts";
import type { Conversation } from "../common/types.ts";
import { rig, withFaults } from "./rig.ts";
import { GEMINI_SHAPES, parseGemini } from "../parsers/gemini.ts";
import { wholePart } from "../parsers/document.ts";
import { geminiRecord } from "../bench/export_corpus.ts";

const id = (n: number) => `6925e174-0000-8000-8000-${String(n).padStart(12, "0")}`;

/** The messages the server received since `from` requests. */
function sentSince(fs: { requests: { messages: string[] }[] }, from: number): string[] {
  return fs.requests.slice(from).flatMap((r) => r.messages);
}

Deno.test("export: an export imported with errors is read again under other conditions", async (t) => {
  const small = gptConversation(id(1), { turns: 2 });
  const large = gptConversation(id(2), { turns: 40, words: 200 });
  const other = gptConversation(id(3), { turns: 2 });
  const largeBytes = JSON.stringify(large).length;

  await t.step(
    "a record over the limit is read once the limit is raised",
    () =>
      withFaults(async (fs) => {
        const root = await Deno.makeTempDir();
        const path = `${root}/conversations.json`;
        await dropSettled(path, JSON.stringify([small, large, other]));
        const settings = { maxLineBytes: largeBytes - 1 };
        const s = rig(fs, openaiSource, root, `${root}/state.db`, { settings });
        try {
          await s.worker.check();
          assertEquals(new Set(sentSince(fs, 0)), new Set(gptUuids([small, other])));
          assertStringIncludes(s.pipeline.stats.lastProblem, "exceeds worker.max_line_bytes");
          const unit = s.state.getUnit(path);
          assert(unit?.kind === "snapshot");
          assertStringIncludes(unit.incompleteUnder ?? "", `${largeBytes - 1}`);

          // Unchanged conditions: not read again.
          const before = fs.requests.length;
          await s.worker.check();
          assertEquals(fs.requests.length, before);

          settings.maxLineBytes = 1 << 24;
          await s.worker.check();
          assertEquals(sentSince(fs, before).sort(), gptUuids([large]).sort());
          const after = s.state.getUnit(path);
          assert(after?.kind === "snapshot");
          assertEquals(after.incompleteUnder, undefined);

          // Whole now: not read again, whatever the conditions.
          const whole = fs.requests.length;
          settings.maxLineBytes = 1 << 23;
          await s.worker.check();
          assertEquals(fs.requests.length, whole);
          assertEquals(fs.store.stats().total_messages, gptUuids([small, large, other]).length);
        } finally {
          s.state.close();
        }
      }),
  );

  await t.step(
    "a record the parser failed on is read by the next version",
    () =>
      withFaults(async (fs) => {
        const root = await Deno.makeTempDir();
        const path = `${root}/conversations.json`;
        await dropSettled(path, JSON.stringify([small, large, other]));
        // A parser with a bug that the next version fixes: it throws on one conversation.
        let fixed = false;
        const parser: Parser<null, ChatGptHint> = (input) => {
          const records = (input.document?.records ?? []) as { id?: string }[];
          if (!fixed && records.some((r) => r.id === id(2))) throw new TypeError("a parser bug");
          return openaiSource.parser(input);
        };
        const s = rig(fs, { ...openaiSource, parser }, root, `${root}/state.db`);
        try {
          await s.worker.check();
          assertEquals(new Set(sentSince(fs, 0)), new Set(gptUuids([small, other])));
          const unit = s.state.getUnit(path);
          assert(unit?.kind === "snapshot");
          assertStringIncludes(unit.incompleteUnder ?? "", `ai-sync ${VERSION} `);

          // The same version, fixed or not, does not read it again.
          fixed = true;
          const before = fs.requests.length;
          await s.worker.check();
          assertEquals(fs.requests.length, before);

          // As a state written by the version before leaves it.
          s.state.putUnit({
            ...unit,
            incompleteUnder: "ai-sync 0.0.1 with worker.max_line_bytes 1",
          });
          await s.worker.check();
          assertEquals(sentSince(fs, before).sort(), gptUuids([large]).sort());
          assertEquals(fs.store.stats().total_messages, gptUuids([small, large, other]).length);
        } finally {
          s.state.close();
        }
      }),
  );
});

Deno.test({
  name: "export: a newer export parses only the conversations it changed or added",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: () =>
    withFaults(async (fs) => {
      const root = await Deno.makeTempDir();
      const parsed: string[] = [];
      const parser: Parser<null, ChatGptHint> = (input) => {
        for (const r of (input.document?.records ?? []) as { id: string }[]) parsed.push(r.id);
        return openaiSource.parser(input);
      };
      const s = rig(fs, { ...openaiSource, parser }, root, `${root}/state.db`);
      const [a, b, c, d] = [1, 2, 3, 4].map((n) => gptConversation(id(n), { turns: 2 }));
      const grown = gptConversation(id(2), { turns: 5 });
      const lastReport = () => s.pipeline.stats.exports.at(-1)!;
      try {
        // Each export extracted into a folder of its own, as a user may keep them.
        const drop = async (name: string, list: unknown[]) => {
          await Deno.mkdir(`${root}/${name}`);
          await dropSettled(`${root}/${name}/conversations.json`, JSON.stringify(list));
        };
        await drop("v1", [a, b]);
        await s.worker.check();
        assertEquals(parsed.sort(), [id(1), id(2)]);

        parsed.length = 0;
        const before = fs.requests.length;
        await drop("v2", [a, grown, c]);
        await s.worker.check();
        assertEquals(parsed.sort(), [id(2), id(3)], "the unchanged conversation not parsed");
        const report = lastReport();
        assertEquals([report.new, report.changed, report.unchanged], [1, 1, 1]);
        assertEquals([report.conversations, report.messages], [3, 2 + 5 + 2]);
        const sent = new Set(sentSince(fs, before));
        assertEquals(
          sent,
          new Set(
            [...gptUuids([grown]), ...gptUuids([c])].filter((u) => !gptUuids([b]).includes(u)),
          ),
        );

        // What a record is parsed into depends on the export's side files too: with attachment
        // names now, every conversation is parsed again.
        parsed.length = 0;
        await Deno.mkdir(`${root}/v3`);
        await Deno.writeTextFile(`${root}/v3/conversation_asset_file_names.json`, "{}");
        await dropSettled(`${root}/v3/conversations.json`, JSON.stringify([a, grown, c, d]));
        await s.worker.check();
        assertEquals(parsed.sort(), [id(1), id(2), id(3), id(4)]);
        assertEquals(fs.store.stats().total_messages, gptUuids([a, grown, c, d]).length);
      } finally {
        s.state.close();
      }
    }),
});

Deno.test("export: the wait for an export to settle", async (t) => {
  const conversation = gptConversation(id(9), { turns: 2 });

  await t.step(
    "an mtime an hour ahead of the clock is waited for the settle time only",
    () =>
      withFaults(async (fs) => {
        const root = await Deno.makeTempDir();
        const path = `${root}/conversations.json`;
        await Deno.writeTextFile(path, JSON.stringify([conversation]));
        const ahead = new Date(Date.now() + 3_600_000);
        await Deno.utime(path, ahead, ahead);
        const s = rig(fs, openaiSource, root, `${root}/state.db`, { settings: { settleMs: 300 } });
        try {
          let timer: ReturnType<typeof setTimeout> | undefined;
          const outcome = await Promise.race([
            s.worker.check().then(() => "read"),
            new Promise((resolve) => timer = setTimeout(() => resolve("still waiting"), 30_000)),
          ]);
          clearTimeout(timer);
          assertEquals(outcome, "read", "read within 30 s");
          assertEquals(new Set(sentSince(fs, 0)), new Set(gptUuids([conversation])));
        } finally {
          s.state.close();
        }
      }),
  );

  await t.step(
    "a stop ends the wait, and the export is read by the next run",
    () =>
      withFaults(async (fs) => {
        const root = await Deno.makeTempDir();
        const path = `${root}/conversations.json`;
        await Deno.writeTextFile(path, JSON.stringify([conversation]));
        const statePath = `${root}/state.db`;
        const s = rig(fs, openaiSource, root, statePath, { settings: { settleMs: 60_000 } });
        try {
          const started = performance.now();
          const check = s.worker.check();
          setTimeout(() => s.pipeline.stop(), 200);
          await check.catch(() => {});
          const seconds = (performance.now() - started) / 1000;
          assert(seconds < 30, `the stop took ${seconds.toFixed(1)} s`);
          assertEquals(fs.requests.length, 0);
        } finally {
          s.state.close();
        }
        // Settled now, past the settle time of 60 s.
        await dropSettled(path, JSON.stringify([conversation]), 120_000);
        const again = rig(fs, openaiSource, root, statePath, { settings: { settleMs: 60_000 } });
        try {
          await again.worker.check();
          assertEquals(new Set(sentSince(fs, 0)), new Set(gptUuids([conversation])));
        } finally {
          again.state.close();
        }
      }),
  );
});

Deno.test("export: in both forms, a conversation grown since sends only its new messages", () => {
  for (const form of ["json", "rows"] as const) {
    const marks = new Map<string, string>();
    const select = (c: Conversation) => {
      const out = selectNew([itemOf(c, form)], (k) => marks.get(k), newReport("e.zip", "h"));
      for (const [k, v] of out.marks) marks.set(k, v);
      return out.items.flatMap((i) => i.conversation.messages.map((m) => m.uuid));
    };
    const first = [textMessage("m1", "hello"), textMessage("m2", "world")];
    assertEquals(select(conversationOf(first)), ["m1", "m2"], form);
    assertEquals(select(conversationOf(first)), [], `${form}: unchanged`);
    const grown = [...first, textMessage("m3", "again")];
    assertEquals(select(conversationOf(grown)), ["m3"], `${form}: grown`);
    const edited = [first[0], textMessage("m2", "World"), grown[2]];
    assertEquals(select(conversationOf(edited)), ["m2"], `${form}: edited`);
  }
});

Deno.test("export: a conversation delivered in parts is known whole: a newer export sends only what is new", async (t) => {
  // A linked Gemini thread of 3 MB, which the parser cuts into two parts with one id.
  const thread = (prompts: number) =>
    Array.from({ length: prompts }, (_, i) => {
      // Newest first: the prompt added last is the first record.
      const time = new Date(Date.UTC(2026, 2, 10, 18, prompts - i)).toISOString();
      const record = geminiRecord(time, `prompt ${prompts - i}`);
      record.safeHtmlItem = [{ html: `<p>${"a".repeat(100_000)}</p>` }];
      record.titleUrl = "https://gemini.google.com/app/0123abcd";
      return record;
    });
  const takeout = (records: ReturnType<typeof thread>) =>
    parseGemini({
      bytes: new Uint8Array(0),
      firstLine: 1,
      carry: undefined,
      file: { path: "MyActivity.json", hint: { kind: "activity" }, host: "h" },
      document: wholePart(records, GEMINI_SHAPES.activity),
    }).conversations;
  const marks = new Map<string, string>();
  /** Each part in a call of its own, as parts of a document come, its marks applied after. */
  const send = (conversations: Conversation[]) =>
    conversations.flatMap((c) => {
      const out = selectNew([itemOf(c, "json")], (k) => marks.get(k), newReport("t.zip", "h"));
      for (const [k, v] of out.marks) marks.set(k, v);
      return out.items.flatMap((i) => i.conversation.messages);
    });
  const uuids = (messages: { uuid: string }[]) => messages.map((m) => m.uuid).sort();
  const first = takeout(thread(30));
  assertEquals(first.length, 2, "cut in two");
  assertEquals(new Set(first.map((c) => c.uuid)).size, 1);
  const all = first.flatMap((c) => c.messages);
  await t.step("the first export sends every message once", () => {
    assertEquals(uuids(send(first)), uuids(all));
  });
  await t.step("a newer export in which the thread did not grow sends nothing of it", () => {
    // Another conversation's prompt on top: the thread's parts are cut where they were.
    const other = geminiRecord("2026-03-11T09:00:00.000Z", "A pasta recipe");
    const newer = takeout([other, ...thread(30)]);
    assertEquals(send(newer.filter((c) => c.uuid === first[0].uuid)), []);
  });
  await t.step("grown, it sends its new prompt and answer and what changed with them", () => {
    // Rounds count from each part's start, and the cut moved: those messages changed.
    const grown = takeout(thread(31));
    const before = new Map(all.map((m) => [m.uuid, JSON.stringify(m)]));
    const sent = send(grown);
    assertEquals(sent.filter((m) => !before.has(m.uuid)).length, 2);
    for (const m of sent.filter((m) => before.has(m.uuid))) {
      assert(before.get(m.uuid) !== JSON.stringify(m), `${m.uuid} sent again unchanged`);
    }
    assertEquals(send(takeout(thread(31))), [], "and the same again: nothing");
  });
  await t.step("both parts in one call: the same", () => {
    marks.clear();
    const out = selectNew(
      first.map((c) => itemOf(c, "json")),
      (k) => marks.get(k),
      newReport("t.zip", "h"),
    );
    for (const [k, v] of out.marks) marks.set(k, v);
    assertEquals(out.messages, all.length);
    assertEquals(send(takeout(thread(30))), []);
  });
});
