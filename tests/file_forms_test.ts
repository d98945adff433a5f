/**
 * The pipeline's three file forms over a fault-injecting server with a real store: append-only
 * lines, compressed copies (`.jsonl.zst`) and documents rewritten whole.
 */
import { zstdCompressSync } from "node:zlib";
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import type { FileSource } from "../common/watch/source_worker.ts";
import { Logger } from "../common/log.ts";
import { claudeCodeSource } from "../workers/claude_code/source.ts";
import { codexSource } from "../workers/codex/source.ts";
import { sessionLines } from "../bench/corpus.ts";
import { geminiCliSource } from "../workers/gemini_cli/source.ts";
import { type FaultServer, startFaultServer } from "./fault_server.ts";
import { type Rig, rig } from "./rig.ts";

const ROLLOUT = new URL(
  "./fixtures/codex/rollout-2026-11-20T10-00-00-019a0000-0000-7000-8000-000000000171.jsonl",
  import.meta.url,
).pathname;
const LEGACY = new URL(
  "./fixtures/gemini_cli/session-2025-12-01T08-00-1e9ac700.json",
  import.meta.url,
).pathname;

/** Log lines the pipeline wrote, to check what it said. */
class CapturingLogger extends Logger {
  lines: string[] = [];
  constructor() {
    super("test", "error");
  }
  override debug(msg: string): void {
    this.lines.push(`debug: ${msg}`);
  }
  override info(msg: string): void {
    this.lines.push(`info: ${msg}`);
  }
  override warn(msg: string): void {
    this.lines.push(`warn: ${msg}`);
  }
  override error(msg: string): void {
    this.lines.push(`error: ${msg}`);
  }
}

function rigFor<Carry, Hint>(
  fs: FaultServer,
  source: FileSource<Carry, Hint>,
  root: string,
  statePath: string,
  extraRoots: string[] = [],
): Rig<Carry, Hint> & { log: CapturingLogger } {
  const log = new CapturingLogger();
  return { ...rig(fs, source, root, statePath, { log, extraRoots }), log };
}

async function withServer(fn: (fs: FaultServer) => Promise<void>): Promise<void> {
  const fs = startFaultServer();
  try {
    await fn(fs);
  } finally {
    await fs.close();
  }
}

function messageCount(fs: FaultServer): number {
  return fs.store.stats().total_messages;
}

Deno.test("file forms: a delivered rollout compressed to .zst sends nothing new", () =>
  withServer(async (fs) => {
    const root = await Deno.makeTempDir();
    await Deno.mkdir(`${root}/2026/11/20`, { recursive: true });
    const path = `${root}/2026/11/20/${ROLLOUT.split("/").pop()}`;
    await Deno.copyFile(ROLLOUT, path);
    const r = rigFor(fs, codexSource, root, `${root}/../state-${crypto.randomUUID()}.db`);
    await r.worker.check();
    const delivered = messageCount(fs);
    const requests = fs.requests.length;
    assertEquals(delivered, 17);

    await Deno.writeFile(`${path}.zst`, zstdCompressSync(await Deno.readFile(path)));
    const refs = await codexSource.discover(root, () => {});
    assertEquals(refs.map((x) => x.form), ["lines"], "the .zst waits while its original exists");
    await Deno.remove(path);
    await r.worker.check();
    assertEquals(fs.requests.length, requests, "nothing was sent");
    assertEquals(messageCount(fs), delivered);
    assert(r.log.lines.some((l) => l.includes("compressed copy of") && l.includes("continuing")));
    assert(r.log.lines.some((l) => l.includes("compressed to") && l.includes(".zst")));
    const unit = r.state.getUnit(`${path}.zst`)!;
    assertEquals(unit.offset, (await Deno.readFile(ROLLOUT)).length);
    assertEquals(unit.fileSize, (await Deno.stat(`${path}.zst`)).size);
    await r.worker.check();
    assertEquals(fs.requests.length, requests);
    assertEquals(r.pipeline.stats.errors, 0);
    r.state.close();
  }));

Deno.test("file forms: lines written after the last read are sent from the .zst", () =>
  withServer(async (fs) => {
    const root = await Deno.makeTempDir();
    const full = await Deno.readFile(ROLLOUT);
    const text = new TextDecoder().decode(full);
    const cut = text.indexOf("\n", text.length >> 1) + 1;
    const path = `${root}/${ROLLOUT.split("/").pop()}`;
    await Deno.writeTextFile(path, text.slice(0, cut));
    const r = rigFor(fs, codexSource, root, `${root}/state.db`);
    await r.worker.check();
    const before = messageCount(fs);
    await Deno.writeFile(`${path}.zst`, zstdCompressSync(full));
    await Deno.remove(path);
    await r.worker.check();
    assert(messageCount(fs) > before);
    // Same ids as if the whole file had been read at once.
    const fresh = startFaultServer();
    try {
      const whole = rigFor(fresh, codexSource, root, `${root}/other-state.db`);
      await whole.worker.check();
      assertEquals(fresh.store.stats().total_messages, messageCount(fs));
      whole.state.close();
    } finally {
      await fresh.close();
    }
    r.state.close();
  }));

Deno.test("file forms: a truncated .zst is reported once, and read once complete", () =>
  withServer(async (fs) => {
    const root = await Deno.makeTempDir();
    const path = `${root}/${ROLLOUT.split("/").pop()}.zst`;
    const frame = zstdCompressSync(await Deno.readFile(ROLLOUT));
    await Deno.writeFile(path, frame.subarray(0, frame.length - 40));
    const r = rigFor(fs, codexSource, root, `${root}/state.db`);
    await r.worker.check();
    await r.worker.check();
    assertEquals(r.pipeline.stats.problems, 1, "reported once while it does not change");
    assertEquals(r.pipeline.stats.errors, 0, "a bad file is the input's problem, not a failure");
    assertStringIncludes(r.pipeline.stats.lastProblem, path);
    assertStringIncludes(r.pipeline.stats.lastProblem, "cannot decompress (truncated");
    assertEquals(messageCount(fs), 0);
    await Deno.writeFile(path, frame);
    await r.worker.check();
    assertEquals(messageCount(fs), 17);
    r.state.close();
  }));

Deno.test("file forms: archived_sessions is a second root", () =>
  withServer(async (fs) => {
    const home = await Deno.makeTempDir();
    await Deno.mkdir(`${home}/sessions`);
    await Deno.mkdir(`${home}/archived_sessions/2026/11/20`, { recursive: true });
    await Deno.copyFile(
      ROLLOUT,
      `${home}/archived_sessions/2026/11/20/${ROLLOUT.split("/").pop()}`,
    );
    const r = rigFor(fs, codexSource, `${home}/sessions`, `${home}/state.db`, [
      `${home}/archived_sessions`,
    ]);
    await r.worker.check();
    const [stored] = fs.store.listConversations("codex").items;
    assertEquals(stored.uuid, "019a0000-0000-7000-8000-000000000171");
    assertEquals(stored.metadata.archived, true);
    r.state.close();
    // A missing archive folder is normal: no warning.
    const other = rigFor(fs, codexSource, `${home}/sessions`, `${home}/state2.db`, [
      `${home}/nowhere`,
    ]);
    await other.worker.check();
    assert(!other.log.lines.some((l) => l.includes("nowhere")), other.log.lines.join("\n"));
    other.state.close();
  }));

Deno.test("file forms: a rollout moved to archived_sessions keeps its checkpoint", () =>
  withServer(async (fs) => {
    const home = await Deno.makeTempDir();
    await Deno.mkdir(`${home}/sessions/2026/11/20`, { recursive: true });
    await Deno.mkdir(`${home}/archived_sessions`);
    const name = ROLLOUT.split("/").pop()!;
    const text = await Deno.readTextFile(ROLLOUT);
    const cut = text.indexOf("\n", text.length >> 1) + 1;
    await Deno.writeTextFile(`${home}/sessions/2026/11/20/${name}`, text.slice(0, cut));
    const r = rigFor(fs, codexSource, `${home}/sessions`, `${home}/state.db`, [
      `${home}/archived_sessions`,
    ]);
    await r.worker.check();
    const bytesBefore = fs.requests.reduce((n, q) => n + q.bytes, 0);
    await Deno.rename(`${home}/sessions/2026/11/20/${name}`, `${home}/archived_sessions/${name}`);
    await Deno.writeTextFile(`${home}/archived_sessions/${name}`, text.slice(cut), {
      append: true,
    });
    await r.worker.check();
    assertEquals(messageCount(fs), 17, "each message once");
    assert(r.log.lines.some((l) => l.includes("moved from")), r.log.lines.join("\n"));
    const unit = r.state.getUnit(`${home}/archived_sessions/${name}`)!;
    assertEquals(unit.offset, text.length);
    // Only the second half went out again: the moved file was not read from the start.
    const sent = fs.requests.reduce((n, q) => n + q.bytes, 0) - bytesBefore;
    assert(sent < bytesBefore * 1.5, `sent ${sent} bytes after the move, ${bytesBefore} before`);
    r.state.close();
  }));

/** A Gemini CLI tree with one legacy JSON session; returns the session file's path. */
async function legacyTree(): Promise<
  { root: string; path: string; doc: Record<string, unknown[]> }
> {
  const root = await Deno.makeTempDir();
  await Deno.mkdir(`${root}/proj/chats`, { recursive: true });
  const path = `${root}/proj/chats/session-2025-12-01T08-00-1e9ac700.json`;
  const doc = JSON.parse(await Deno.readTextFile(LEGACY));
  await Deno.writeTextFile(path, JSON.stringify(doc, null, 2));
  return { root, path, doc };
}

Deno.test("file forms: a document rewritten whole sends only what changed", () =>
  withServer(async (fs) => {
    const { root, path, doc } = await legacyTree();
    const r = rigFor(fs, geminiCliSource, root, `${root}/../state-${crypto.randomUUID()}.db`);
    await r.worker.check();
    assertEquals(messageCount(fs), 3);
    const firstBytes = fs.requests[0].bytes;

    for (let i = 0; i < 50; i++) {
      doc.messages.push({
        id: `x-${i}`,
        timestamp: `2025-12-01T09:${String(i).padStart(2, "0")}:00.000Z`,
        type: i % 2 ? "gemini" : "user",
        content: `message ${i} ${"pad ".repeat(50)}`,
      });
      await Deno.writeTextFile(path, JSON.stringify(doc, null, 2));
      await r.worker.check();
    }
    assertEquals(messageCount(fs), 53, "each message once");
    const sent = fs.requests.slice(1);
    assertEquals(sent.length, 50);
    for (const request of sent) {
      assert(request.bytes < firstBytes, `a rewrite sent ${request.bytes} bytes`);
    }
    const requests = fs.requests.length;
    await Deno.utime(path, new Date(), new Date(Date.now() + 5000));
    await r.worker.check();
    assertEquals(fs.requests.length, requests, "a touch with no change sends nothing");
    r.state.close();
  }));

Deno.test("file forms: a document over the size limit is reported once and read once smaller", () =>
  withServer(async (fs) => {
    const { root, path, doc } = await legacyTree();
    const log = new CapturingLogger();
    const r = rig(fs, geminiCliSource, root, `${root}/../state-${crypto.randomUUID()}.db`, {
      log,
      // Documents are read record by record: their own limit is max_document_bytes.
      settings: { maxDocumentBytes: 500 },
    });
    await r.worker.check();
    await r.worker.check();
    assertEquals(r.pipeline.stats.problems, 1, "once while the file does not change");
    assertStringIncludes(r.pipeline.stats.lastProblem, `${path}: `);
    assertStringIncludes(r.pipeline.stats.lastProblem, "exceeds worker.max_document_bytes (500)");
    assertEquals(messageCount(fs), 0);
    doc.messages = [{
      id: "s1",
      timestamp: "2025-12-01T09:00:00.000Z",
      type: "user",
      content: "hi",
    }];
    await Deno.writeTextFile(path, JSON.stringify(doc));
    await r.worker.check();
    assertEquals(messageCount(fs), 1);
    r.state.close();
  }));

Deno.test("file forms: invalid JSON mid-rewrite is reported and nothing is lost", () =>
  withServer(async (fs) => {
    const { root, path, doc } = await legacyTree();
    const r = rigFor(fs, geminiCliSource, root, `${root}/../state-${crypto.randomUUID()}.db`);
    await r.worker.check();
    const text = JSON.stringify(doc, null, 2);
    await Deno.writeTextFile(path, text.slice(0, text.length >> 1));
    await r.worker.check();
    assertEquals(r.pipeline.stats.problems, 1);
    assertStringIncludes(r.pipeline.stats.lastProblem, `${path}:1: invalid JSON`);
    assertStringIncludes(r.pipeline.stats.lastProblem, "read again when it changes");
    doc.messages.push({
      id: "late",
      timestamp: "2025-12-01T10:00:00.000Z",
      type: "user",
      content: "late",
    });
    await Deno.writeTextFile(path, JSON.stringify(doc, null, 2));
    await r.worker.check();
    assertEquals(messageCount(fs), 4);
    assertEquals(r.pipeline.stats.problems, 1);
    r.state.close();
  }));

Deno.test("file forms: a whole-file batch cut short by a crash is read again", () =>
  withServer(async (fs) => {
    const { root, path } = await legacyTree();
    const statePath = `${root}/../state-${crypto.randomUUID()}.db`;
    const first = rigFor(fs, geminiCliSource, root, statePath);
    fs.faults.push(...Array.from({ length: 100 }, () => ({ status: 503 })));
    const running = first.worker.check().catch((e) => e);
    while (fs.requests.length < 2) await new Promise((res) => setTimeout(res, 10));
    first.pipeline.stop();
    await running;
    assertEquals(first.state.pendingBatches().length, 1);
    assertEquals(first.state.getUnit(path), undefined);
    first.state.close();

    fs.faults.length = 0;
    const second = rigFor(fs, geminiCliSource, root, statePath);
    await second.worker.check();
    assertEquals(second.state.pendingBatches(), []);
    assertEquals(messageCount(fs), 3);
    assert(
      second.log.lines.some((l) => l.includes("abandoning batch") && l.includes("read whole")),
    );
    second.state.close();
  }));

Deno.test("file forms: a line not ended is remembered as read, and what follows it is sent", () =>
  withServer(async (fs) => {
    const root = await Deno.makeTempDir();
    await Deno.mkdir(`${root}/-home-dev-p`);
    const sessionId = "00000000-0000-4000-8000-00000000000a";
    const path = `${root}/-home-dev-p/${sessionId}.jsonl`;
    const [first, ...rest] = sessionLines({ sessionId, turns: 2, seed: 1 });
    // A writer that never ends its line: 3 MiB and growing, over a limit of 1 MiB.
    await Deno.writeTextFile(path, `${first}\n${"x".repeat(3 << 20)}`);
    const log = new CapturingLogger();
    const r = rig(fs, claudeCodeSource, root, `${root}/../state-${crypto.randomUUID()}.db`, {
      log,
      settings: { maxLineBytes: 1 << 20 },
    });
    const unit = () => {
      const u = r.state.getUnit(path);
      assert(u?.kind === "appended");
      return u;
    };
    await r.worker.check();
    assertEquals(unit().offset, first.length + 1);
    // The check that sent the line before it left its cursor with that batch; the next one
    // records how far the line not ended was read.
    await r.worker.check();
    assertEquals(unit().scanned, (await Deno.stat(path)).size);
    await Deno.writeTextFile(path, "x".repeat(1000), { append: true });
    await r.worker.check();
    assertEquals(unit().scanned, (await Deno.stat(path)).size, "read on from where it was");
    const sent = messageCount(fs);
    await Deno.writeTextFile(path, `\n${rest.join("\n")}\n`, { append: true });
    await r.worker.check();
    assertEquals(unit().offset, (await Deno.stat(path)).size);
    assertEquals(unit().scanned, undefined);
    assert(messageCount(fs) > sent, "the lines after it were sent");
    const skipped = log.lines.filter((l) => l.includes("exceeds worker.max_line_bytes"));
    assertEquals(skipped.length, 1, log.lines.join("\n"));
    assertStringIncludes(skipped[0], `${path}:2: line of ${(3 << 20) + 1001} bytes`);
    r.state.close();
  }));
