/**
 * Full-text search over a store of a million messages: the time to build the index behind the
 * writes (once), then the median and worst time of searches as the read API runs them (ranked,
 * with snippets, first page), each with and without a filter.
 *
 * ```
 * deno task bench:search [--messages 1000000]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ConversationStore } from "../store/store.ts";
import { SearchIndex } from "../store/search.ts";
import type { Conversation } from "../common/types.ts";
import { median } from "../tests/helpers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { messages: { type: "string", default: "1000000" } },
});
const total = Number(values.messages);
const PER_CONVERSATION = 50;
const VOCABULARY = Array.from({ length: 20_000 }, (_, i) => `w${(i * 7919 % 20_000).toString(36)}`);
const TOPICS = ["cart", "invoice", "deploy", "rounding", "database", "migration", "search", "tax"];

let seed = 7;
function random(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 2 ** 32;
}

function sentence(words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    out.push(
      random() < 0.02
        ? TOPICS[Math.floor(random() * TOPICS.length)]
        : VOCABULARY[Math.floor(random() ** 2 * VOCABULARY.length)],
    );
  }
  return out.join(" ");
}

const dir = await Deno.makeTempDir({ prefix: "ai-sync-search-bench-" });
const store = new ConversationStore(`${dir}/c.db`);
let t = performance.now();
for (let c = 0; c * PER_CONVERSATION < total; c += 100) {
  const conversations: Conversation[] = [];
  for (let k = c; k < c + 100 && k * PER_CONVERSATION < total; k++) {
    const at = new Date(Date.UTC(2026, 0, 1) + k * 60_000).toISOString();
    conversations.push({
      uuid: `c${k}`,
      title: sentence(5),
      created_at: at,
      updated_at: at,
      metadata: { host: k % 2 ? "laptop" : "server" },
      messages: Array.from({ length: PER_CONVERSATION }, (_, i) => {
        const text = sentence(30);
        return {
          uuid: `c${k}-${i}`,
          parent_uuid: i ? `c${k}-${i - 1}` : "",
          round_index: 1,
          role: i % 2 ? "assistant" as const : "user" as const,
          content_type: "text" as const,
          content: { type: "text", text },
          content_text: text,
          created_at: at,
        };
      }),
    });
  }
  store.applyBatch({ source_type: c % 300 ? "claude_code" : "codex", conversations });
}
const writeSeconds = (performance.now() - t) / 1000;
const search = new SearchIndex(`${dir}/c.db`);
t = performance.now();
const indexed = search.refresh();
const indexSeconds = (performance.now() - t) / 1000;
const times: number[] = [];
const filtered: number[] = [];
const slowest = new Map<string, number>();
for (
  const q of ["tax", "cart rounding", "deploy", "invoice", "migration data", "w1 w2", "search"]
) {
  for (let i = 0; i < 5; i++) {
    let s = performance.now();
    search.search(q, {}, 50);
    times.push(performance.now() - s);
    slowest.set(q, Math.max(slowest.get(q) ?? 0, performance.now() - s));
    s = performance.now();
    search.search(q, { host: "laptop" }, 50);
    filtered.push(performance.now() - s);
  }
}
console.log(
  `slowest of each: ${[...slowest].map(([q, ms]) => `${q} ${ms.toFixed(0)} ms`).join(", ")}`,
);
console.log(
  `| store | written | index built behind the writes | search median / worst | with a filter |
|---|---|---|---|---|
| ${indexed.toLocaleString("en-US")} messages | ${writeSeconds.toFixed(1)} s | ${
    indexSeconds.toFixed(1)
  } s | ${median(times).toFixed(0)} ms / ${Math.max(...times).toFixed(0)} ms | ${
    median(filtered).toFixed(0)
  } ms / ${Math.max(...filtered).toFixed(0)} ms |`,
);
search.close();
store.close();
await Deno.remove(dir, { recursive: true });
