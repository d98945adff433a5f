/**
 * Documents rewritten whole, read as records: a document parsed in parts gives what it gives
 * parsed whole (every parser that reads documents, at every cut), a pipeline reads one in parts
 * delivering each message once, a stop in the middle loses and repeats nothing, a bad record
 * costs only itself, and a 100 MB document is read in bounded memory.
 */
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import type { DocumentPart, DocumentShape, ParseOutput, Parser } from "../common/source.ts";
import type { Conversation } from "../common/types.ts";
import { wholePart } from "../parsers/document.ts";
import { GEMINI_DOCUMENTS, type GeminiHint, parseGeminiCli } from "../parsers/gemini_cli.ts";
import { CODEX_JSON_ROLLOUT, type CodexHint, parseCodex } from "../parsers/codex.ts";
import { geminiCliSource } from "../workers/gemini_cli/source.ts";
import { type FaultServer, startFaultServer } from "./fault_server.ts";
import { Logger } from "../common/log.ts";
import { rig } from "./rig.ts";
import { peakRss, REPO, scratch, workerArgs } from "./helpers.ts";
import { ConversationStore } from "../store/store.ts";

const FIXTURES = `${REPO}/tests/fixtures`;
const opts = { sanitizeOps: false, sanitizeResources: false };

/** What the server holds after upserting `outputs` in order: last metadata, every message. */
function upserted(outputs: ParseOutput<unknown>[]): Record<string, unknown> {
  const held: Record<string, { head: Omit<Conversation, "messages">; messages: object }> = {};
  for (const out of outputs) {
    for (const { messages, ...head } of out.conversations) {
      const into = held[head.uuid] ?? { head, messages: {} };
      into.head = head;
      for (const m of messages) (into.messages as Record<string, unknown>)[m.uuid] = m;
      held[head.uuid] = into;
    }
  }
  return held;
}

/** A document cut into parts at `cuts` (record indices). */
function cutInto(doc: unknown, shape: DocumentShape, cuts: number[]): DocumentPart[] {
  const whole = wholePart(doc, shape);
  const bounds = [0, ...cuts, whole.records.length];
  return bounds.slice(0, -1).map((from, i) => ({
    ...whole,
    records: whole.records.slice(from, bounds[i + 1]),
    index: from,
    first: i === 0,
    last: i === bounds.length - 2,
  }));
}

/** Parses `parts` in turn, the carry passed as the pipeline passes it (as JSON). */
function parseParts<Carry, Hint>(
  parser: Parser<Carry, Hint>,
  parts: DocumentPart[],
  carry: Carry | undefined,
  hint: Hint,
): { outputs: ParseOutput<Carry>[]; carry: Carry | undefined } {
  const outputs: ParseOutput<Carry>[] = [];
  for (const document of parts) {
    const out = parser({
      bytes: new Uint8Array(0),
      document,
      firstLine: 1,
      carry,
      file: { path: "doc.json", hint, host: "h" },
    });
    outputs.push(out);
    carry = JSON.parse(JSON.stringify(out.carry));
  }
  return { outputs, carry };
}

/**
 * For each version after the first, delivered on the carry of the one before: parsing it whole
 * and parsing it in parts, cut at every place and in single records, give the same.
 */
function assertPartsEqualWhole<Carry, Hint>(
  parser: Parser<Carry, Hint>,
  shape: DocumentShape,
  hint: Hint,
  versions: unknown[],
): void {
  let carry: Carry | undefined;
  for (const [v, doc] of versions.entries()) {
    const whole = parseParts(parser, cutInto(doc, shape, []), carry, hint);
    const n = wholePart(doc, shape).records.length;
    const cuttings = [
      ...Array.from({ length: Math.max(0, n - 1) }, (_, i) => [i + 1]),
      Array.from({ length: Math.max(0, n - 1) }, (_, i) => i + 1),
      [0],
      [n],
    ];
    for (const cuts of cuttings) {
      const parts = parseParts(parser, cutInto(doc, shape, cuts), carry, hint);
      const what = `version ${v}, cut at ${cuts}`;
      assertEquals(upserted(parts.outputs), upserted(whole.outputs), what);
      assertEquals(parts.carry, whole.carry, `${what}: the carry`);
      assertEquals(
        parts.outputs.reduce((sum, o) => sum + o.messages, 0),
        whole.outputs[0].messages,
        `${what}: messages counted`,
      );
    }
    carry = whole.carry;
  }
}

/** A Gemini session document in three versions: grown; one message changed, one gone. */
async function geminiVersions(): Promise<unknown[]> {
  const doc = JSON.parse(
    await Deno.readTextFile(`${FIXTURES}/gemini_cli/session-2025-12-01T08-00-1e9ac700.json`),
  );
  const grown = structuredClone(doc);
  grown.messages.push(
    { id: "n1", timestamp: "2025-12-01T09:00:00.000Z", type: "user", content: "more" },
    { id: "n2", timestamp: "2025-12-01T09:00:01.000Z", type: "gemini", content: "yes" },
  );
  const edited = structuredClone(grown);
  edited.messages[1].content = "changed";
  edited.messages.splice(2, 1);
  edited.summary = "A summary after the messages";
  return [doc, grown, edited];
}

Deno.test("documents: parsed in parts, every parser gives what it gives parsed whole", async (t) => {
  await t.step("Gemini CLI session (.json)", async () => {
    const hint: GeminiHint = { kind: "json", sessionId: "1e9ac700", project: "p" };
    assertPartsEqualWhole(parseGeminiCli, GEMINI_DOCUMENTS.json, hint, await geminiVersions());
  });

  await t.step("Gemini CLI checkpoint", async () => {
    const history = JSON.parse(
      await Deno.readTextFile(`${FIXTURES}/gemini_cli/checkpoint-release.json`),
    );
    const hint: GeminiHint = {
      kind: "checkpoint",
      tag: "release",
      project: "p",
      mtime: "2026-01-01T00:00:00.000Z",
    };
    const shorter = { history: history.slice(0, 2), authType: "oauth" };
    assertPartsEqualWhole(parseGeminiCli, GEMINI_DOCUMENTS.checkpoint, hint, [
      history,
      [...history, { role: "user", parts: [{ text: "and then?" }] }],
      shorter,
    ]);
  });

  await t.step("Codex whole-JSON rollout", async () => {
    const doc = JSON.parse(
      await Deno.readTextFile(
        `${FIXTURES}/codex/rollout-2025-04-20-0d0e0f00-aaaa-4bbb-8ccc-000000000001.json`,
      ),
    );
    const grown = structuredClone(doc);
    grown.items.push({
      type: "message",
      role: "user",
      content: [{ type: "input_text", text: "one more" }],
    });
    const edited = structuredClone(grown);
    edited.items.splice(1, 1);
    const hint: CodexHint = { form: "json", sessionId: "0d0e0f00-aaaa-4bbb-8ccc-000000000001" };
    assertPartsEqualWhole(parseCodex, CODEX_JSON_ROLLOUT, hint, [doc, grown, edited]);
  });
});

/** A session document of `n` messages of about `size` bytes each. */
function bigSession(sessionId: string, n: number, size: number, from = 0) {
  return {
    sessionId,
    projectHash: "c".repeat(64),
    startTime: "2026-11-22T15:00:00.000Z",
    lastUpdated: "2026-11-22T16:00:00.000Z",
    messages: Array.from({ length: n }, (_, i) => ({
      id: `m-${from + i}`,
      timestamp: new Date(Date.parse("2026-11-22T15:00:00.000Z") + (from + i) * 1000)
        .toISOString(),
      type: i % 2 ? "gemini" : "user",
      content: [{ text: `message ${from + i} ` + 'lorem "ipsum" \\ dolor '.repeat(size / 24) }],
    })),
  };
}

async function sessionTree(doc: unknown, pretty = true) {
  const root = await Deno.makeTempDir();
  await Deno.mkdir(`${root}/proj/chats`, { recursive: true });
  const path = `${root}/proj/chats/session-2026-11-22T15-00-5e55b16d.json`;
  await Deno.writeTextFile(path, pretty ? JSON.stringify(doc, null, 2) : JSON.stringify(doc));
  return { root, path };
}

/** Message ids sent to the fault server and acknowledged, in order, with repeats. */
function sentIds(fs: FaultServer): string[] {
  return fs.requests.flatMap((r) => r.answered === 200 ? r.messages : []);
}

/** A rig over a session document, with the log lines it writes. */
function docRig(fs: FaultServer, root: string, statePath: string, settings = {}) {
  const log = new LinesLogger();
  return { ...rig(fs, geminiCliSource, root, statePath, { log, settings }), log };
}

/** Log lines, to check what the pipeline said. */
class LinesLogger extends Logger {
  lines: string[] = [];
  constructor() {
    super("test", "error");
  }
  override warn(msg: string): void {
    this.lines.push(msg);
  }
  override info(msg: string): void {
    this.lines.push(msg);
  }
}

Deno.test({
  name: "documents: a pipeline reads a document in parts",
  ...opts,
  fn: async (t) => {
    const settings = { chunkBytes: 8192, batchSize: 1 };

    await t.step("each message once, the version recorded only at the end", async () => {
      const fs = startFaultServer();
      try {
        const { root, path } = await sessionTree(
          bigSession("5e55b16d-0000-4000-8000-000000000001", 300, 400),
        );
        const r = docRig(fs, root, `${root}/../state-${crypto.randomUUID()}.db`, settings);
        await r.worker.check();
        assertEquals(fs.store.stats().total_messages, 300);
        const sent = sentIds(fs);
        assertEquals(sent.length, new Set(sent).size, "no message sent twice");
        assert(fs.requests.length > 5, `one batch per part (${fs.requests.length})`);
        const unit = r.state.getUnit(path)!;
        assertEquals(unit.kind, "snapshot");
        assertEquals(unit.fileSize, (await Deno.stat(path)).size);
        const requests = fs.requests.length;
        await r.worker.check();
        assertEquals(fs.requests.length, requests, "nothing new, nothing sent");
        r.state.close();
      } finally {
        await fs.close();
      }
    });

    await t.step(
      "stopped in the middle, then restarted: nothing lost, each held once",
      async () => {
        const fs = startFaultServer();
        try {
          const { root, path } = await sessionTree(
            bigSession("5e55b16d-0000-4000-8000-000000000002", 300, 400),
          );
          const statePath = `${root}/../state-${crypto.randomUUID()}.db`;
          const first = docRig(fs, root, statePath, settings);
          const running = first.worker.check().catch((e) => e);
          while (fs.store.stats().total_messages < 60) await new Promise((r) => setTimeout(r, 5));
          first.pipeline.stop();
          await running;
          const delivered = fs.store.stats().total_messages;
          assert(delivered < 300, `stopped before the end (${delivered})`);
          assertEquals(first.state.getUnit(path)?.fileSize, -1, "the version is not recorded yet");
          first.state.close();

          const before = sentIds(fs).length;
          const second = docRig(fs, root, statePath, settings);
          await second.worker.check();
          assertEquals(fs.store.stats().total_messages, 300, "each message held once");
          // Read again from the version delivered before: the same ids, each sent once more.
          assertEquals(sentIds(fs).slice(before).sort(), [...new Set(sentIds(fs))].sort());
          assertEquals(second.state.getUnit(path)?.fileSize, (await Deno.stat(path)).size);
          const requests = fs.requests.length;
          await second.worker.check();
          assertEquals(fs.requests.length, requests, "done: nothing more is sent");
          second.state.close();
        } finally {
          await fs.close();
        }
      },
    );

    await t.step("a record too large or nested too deep costs only itself", async () => {
      const fs = startFaultServer();
      try {
        const doc = bigSession("5e55b16d-0000-4000-8000-000000000003", 10, 100);
        doc.messages[3].content = [{ text: "x".repeat(30_000) }];
        Object.assign(doc.messages[6], { deep: JSON.parse("[".repeat(5000) + "]".repeat(5000)) });
        const { root, path } = await sessionTree(doc, false);
        const r = docRig(fs, root, `${root}/../state-${crypto.randomUUID()}.db`, {
          chunkBytes: 1024,
          maxLineBytes: 20_000,
        });
        await r.worker.check();
        assertEquals(fs.store.stats().total_messages, 8);
        assertEquals(r.pipeline.stats.problems, 2);
        const said = r.log.lines.join("\n");
        assertStringIncludes(said, `${path}: record 3 of `);
        assertStringIncludes(said, "bytes exceeds worker.max_line_bytes (20000); skipped");
        assertStringIncludes(
          said,
          `${path}: record 6 is nested 5001 levels deep, deeper than 1000; skipped`,
        );
        r.state.close();
      } finally {
        await fs.close();
      }
    });

    await t.step("a document that makes its parser fail is reported, not retried", async () => {
      const fs = startFaultServer();
      try {
        const { root, path } = await sessionTree(
          bigSession("5e55b16d-0000-4000-8000-000000000004", 40, 400),
        );
        let parts = 0;
        const failing = {
          ...geminiCliSource,
          parser: ((input) => {
            if (++parts === 3) throw new Error("a parser fault");
            return geminiCliSource.parser(input);
          }) as typeof geminiCliSource.parser,
        };
        const log = new LinesLogger();
        const r = rig(fs, failing, root, `${root}/../state-${crypto.randomUUID()}.db`, {
          log,
          settings,
        });
        await r.worker.check();
        assertStringIncludes(
          r.pipeline.stats.lastProblem,
          `${path}:1: cannot process the document (a parser fault); read again at its next change`,
        );
        const unit = r.state.getUnit(path)!;
        assertEquals(unit.fileSize, (await Deno.stat(path)).size, "this version is done with");
        assertEquals(unit.carry, "", "the carry as it was before");
        const requests = fs.requests.length;
        await r.worker.check();
        assertEquals(fs.requests.length, requests, "not read again until it changes");
        r.state.close();
      } finally {
        await fs.close();
      }
    });
  },
});

Deno.test({
  name: "documents: a 100 MB session document is read with a peak RSS under 300 MB",
  ...opts,
  fn: async () => {
    const s = await scratch(null, { flag: "data-dir" });
    try {
      await readBigDocument(s);
    } finally {
      // 100 MB of document and 200 MB of store: not left behind.
      await Deno.remove(s.dir, { recursive: true });
    }
  },
});

async function readBigDocument(s: Awaited<ReturnType<typeof scratch>>): Promise<void> {
  const chats = `${s.data}/proj/chats`;
  await Deno.mkdir(chats, { recursive: true });
  const path = `${chats}/session-2026-11-22T15-00-5e55b16e.json`;
  // 20,000 messages of about 5 KB, written in pieces (the test keeps no 100 MB string).
  const file = await Deno.open(path, { write: true, create: true, truncate: true });
  const enc = new TextEncoder();
  const head = bigSession("5e55b16e-0000-4000-8000-000000000001", 0, 0);
  await file.write(enc.encode(JSON.stringify(head, null, 2).replace(/\[\]\s*\}\s*$/, "[\n")));
  const n = 20_000;
  for (let from = 0; from < n; from += 500) {
    const part = bigSession(head.sessionId, 500, 5000, from).messages
      .map((m) => JSON.stringify(m, null, 2)).join(",\n");
    await file.write(enc.encode((from > 0 ? ",\n" : "") + part));
  }
  await file.write(enc.encode("\n]\n}\n"));
  file.close();
  const size = (await Deno.stat(path)).size;
  assert(size > 100_000_000, `${size} bytes`);

  const child = new Deno.Command(Deno.execPath(), {
    args: workerArgs([...s.base, "--once"], "gemini_cli"),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const [out, rss] = await Promise.all([child.output(), peakRss(child)]);
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, stderr);
  console.log(
    `peak RSS ${(rss / 1e6).toFixed(0)} MB for a ${(size / 1e6).toFixed(0)} MB document`,
  );
  assert(rss < 300e6, `peak RSS ${rss} bytes`);
  const store = new ConversationStore(`${s.dir}/state/conversations.db`);
  assertEquals(store.stats().total_messages, n);
  store.close();
}
