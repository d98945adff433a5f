/**
 * The foundation's server faults, replayed for the Codex and Gemini CLI sources (append-only,
 * compressed and rewritten-whole files together) over a fault-injecting server with a real
 * store: whatever the fault, every message ends up on the server once, and nothing is lost.
 */
import { zstdCompressSync } from "node:zlib";
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import type { FileSource } from "../common/watch/source_worker.ts";
import { codexSource } from "../workers/codex/source.ts";
import { geminiCliSource } from "../workers/gemini_cli/source.ts";
import { geminiDocument, geminiJsonlLines, rolloutLines } from "../bench/sources_corpus.ts";
import { type Fault, type FaultServer, startFaultServer } from "./fault_server.ts";
import { type Rig, rig } from "./rig.ts";

interface SourceTree {
  name: string;
  // deno-lint-ignore no-explicit-any
  source: FileSource<any, any>;
  /** Writes the files; returns the uuid of one conversation to reject. */
  write(root: string): Promise<string>;
  /** A body limit that makes the server refuse whole batches but not single messages. */
  splitLimit: number;
}

const CODEX_IDS = [1, 2, 3].map((i) => `019a0000-0000-7000-8000-0000000fa0${i}0`);
const GEMINI_IDS = [1, 2].map((i) => `9e000000-0000-4000-8000-00000000fa0${i}`);

const TREES: SourceTree[] = [
  {
    name: "codex (.jsonl, .jsonl.zst)",
    source: codexSource,
    splitLimit: 12_000,
    async write(root) {
      await Deno.mkdir(`${root}/2026/11/20`, { recursive: true });
      for (const [i, id] of CODEX_IDS.entries()) {
        const text = rolloutLines({ sessionId: id, turns: 4, seed: 20 + i }).join("\n") + "\n";
        const path = `${root}/2026/11/20/rollout-2026-11-20T09-00-0${i}-${id}.jsonl`;
        if (i === 2) {
          await Deno.writeFile(`${path}.zst`, zstdCompressSync(new TextEncoder().encode(text)));
        } else await Deno.writeTextFile(path, text);
      }
      return CODEX_IDS[1];
    },
  },
  {
    name: "gemini_cli (.jsonl, legacy .json)",
    source: geminiCliSource,
    splitLimit: 80_000,
    async write(root) {
      await Deno.mkdir(`${root}/proj/chats`, { recursive: true });
      const lines = geminiJsonlLines({ sessionId: GEMINI_IDS[0], turns: 4, seed: 30 });
      await Deno.writeTextFile(
        `${root}/proj/chats/session-2026-11-22T15-00-${GEMINI_IDS[0].slice(0, 8)}.jsonl`,
        lines.join("\n") + "\n",
      );
      await Deno.writeTextFile(
        `${root}/proj/chats/session-2026-11-22T16-00-${GEMINI_IDS[1].slice(0, 8)}.json`,
        JSON.stringify(geminiDocument({ sessionId: GEMINI_IDS[1], turns: 4, seed: 31 }), null, 2),
      );
      return GEMINI_IDS[1];
    },
  },
];

function run(fs: FaultServer, tree: SourceTree, root: string): Rig<unknown, unknown> {
  return rig(fs, tree.source, root, `${root}.state.db`, { settings: { batchSize: 2 } });
}

/** What the server holds: conversation uuid → message count. */
function holdings(fs: FaultServer): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of fs.store.listConversations("", 1, 1000).items) {
    out.set(c.uuid, fs.store.listMessages(c.uuid, 1, 1)!.total);
  }
  return out;
}

async function reference(tree: SourceTree): Promise<Map<string, number>> {
  const fs = startFaultServer();
  try {
    const root = await Deno.makeTempDir();
    await tree.write(root);
    const r = run(fs, tree, root);
    await r.worker.check();
    r.state.close();
    return holdings(fs);
  } finally {
    await fs.close();
  }
}

interface Scenario {
  name: string;
  faults?: Fault[];
  split?: boolean;
  wrongToken?: boolean;
  reject?: boolean;
  check?: (fs: FaultServer) => void;
}

/**
 * The next attempt at the batch of request `index`: the same Idempotency-Key, sent later (a
 * second batch may be sent in between).
 */
function retryOf(fs: FaultServer, index: number) {
  const retry = fs.requests.slice(index + 1).find((r) => r.key === fs.requests[index].key);
  assert(retry, `request ${index} (answered ${fs.requests[index].answered}) was never retried`);
  return retry;
}

const SCENARIOS: Scenario[] = [
  {
    name: "500 and 502 are retried with the same Idempotency-Key",
    faults: [{ status: 500 }, { status: 502 }],
    check: (fs) => {
      retryOf(fs, 0);
      retryOf(fs, 1);
    },
  },
  {
    name: "503 with Retry-After waits that long",
    faults: [{ status: 503, headers: { "retry-after": "1" } }],
    check: (fs) => assert(retryOf(fs, 0).at - fs.requests[0].at >= 990),
  },
  { name: "429 is retried", faults: [{ status: 429 }, { status: 429 }] },
  { name: "a connection reset mid-answer is retried", faults: [{ reset: true }] },
  { name: "a reply slower than the timeout is retried", faults: [{ slowMs: 1500 }] },
  { name: "401 pauses, and resumes once the token is fixed", wrongToken: true },
  {
    name: "413 splits the batch until it fits",
    split: true,
    check: (fs) => assert(fs.requests.some((r) => r.answered === 413)),
  },
  { name: "400 for one conversation dead-letters it and delivers the rest", reject: true },
];

for (const tree of TREES) {
  Deno.test(`source faults: ${tree.name}`, async (t) => {
    const want = await reference(tree);
    assert(want.size >= 2, "the reference run delivered the tree");
    for (const scenario of SCENARIOS) {
      await t.step(scenario.name, async () => {
        const fs = startFaultServer({
          maxBodyBytes: scenario.split ? tree.splitLimit : undefined,
        });
        try {
          const root = await Deno.makeTempDir();
          const rejected = await tree.write(root);
          fs.faults.push(...(scenario.faults ?? []));
          if (scenario.reject) fs.rejectConversation = rejected;
          const r = run(fs, tree, root);
          if (scenario.wrongToken) {
            r.sink.options = { ...r.sink.options, token: "wrong" };
            const running = r.worker.check();
            while (!r.pipeline.stats.pausedReason) await new Promise((res) => setTimeout(res, 20));
            assertStringIncludes(r.pipeline.stats.pausedReason, "HTTP 401");
            assertEquals(fs.store.stats().total_messages, 0);
            assertEquals(r.state.counters().batches ?? 0, 0, "no checkpoint while paused");
            r.sink.options = { ...r.sink.options, token: fs.token };
            r.pipeline.wake();
            await running;
          } else {
            await r.worker.check();
          }
          const expected = new Map(want);
          if (scenario.reject) {
            expected.delete(rejected);
            assertEquals(r.state.deadLetters().map((d) => d.conversationUuid), [rejected]);
          } else {
            assertEquals(r.state.deadLetters(), []);
          }
          assertEquals(holdings(fs), expected, "every message once");
          scenario.check?.(fs);
          const before = fs.requests.length;
          await r.worker.check();
          assertEquals(fs.requests.length, before, "a second check sends nothing");
          r.state.close();
        } finally {
          await fs.close();
        }
      });
    }
  });
}
