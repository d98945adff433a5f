/**
 * Exports as ChatGPT, Claude.ai and Google Takeout write them, generated for tests and benches:
 * real field names and node shapes (FORMATS §1, §2, §5 and §9), deterministic content.
 *
 * @module
 */
import { zipBytes, type ZipMember } from "./zip_writer.ts";
import { parseChatGpt } from "../parsers/chatgpt.ts";

/** A ChatGPT mapping node. */
export interface GptNode {
  id: string;
  parent: string | null;
  message: Record<string, unknown> | null;
}

/** What {@link gptConversation} makes. */
export interface GptOptions {
  /** Messages on the main line (user and assistant alternating). */
  turns: number;
  /** Creation time, epoch seconds. */
  start?: number;
  /** A regenerated answer beside the first answer (a branch off the main line). */
  regenerated?: boolean;
  /** A hidden system message at the top, as custom instructions make. */
  hiddenSystem?: boolean;
  /** Words per message. */
  words?: number;
  /** The 2026 shape: no `children`, a `client-created-root` root. */
  sharded?: boolean;
  /** Varied text from this seed (compresses as real text does) instead of a fixed phrase. */
  seed?: number;
}

const WORDS = "the cart total tax rounding receipt line item price discount basket test".split(" ");
/** Pseudo-words enough to make text compress about as prose does (3-4 times). */
const VOCABULARY = Array.from({ length: 4096 }, (_, i) => {
  const letters = "etaoinshrdlcumwfgypbvkjxqz";
  let word = "";
  for (let n = i + 7, len = 2 + (i % 9); word.length < len; n = (n * 1103515245 + 12345) >>> 8) {
    word += letters[n % (word.length === 0 ? 26 : 12)];
  }
  return word;
});

/** Words picked by a seeded generator (xorshift), the same for the same seed. */
function varied(seed: number, words: number): string {
  let x = (seed * 2654435761) >>> 0 || 1;
  const out: string[] = [];
  for (let i = 0; i < words; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.push(VOCABULARY[x % VOCABULARY.length]);
  }
  return out.join(" ");
}

function text(seed: number, words: number): string {
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(WORDS[(seed * 7 + i * 3) % WORDS.length]);
  return out.join(" ");
}

/**
 * A ChatGPT conversation as an export holds it.
 *
 * @example Four messages
 * ```ts
 * import { gptConversation } from "./export_corpus.ts";
 * const c = gptConversation("6925e174-0000-8000-8000-000000000001", { turns: 4 });
 * console.log(Object.keys(c.mapping as object).length); // 5
 * ```
 */
export function gptConversation(id: string, o: GptOptions): Record<string, unknown> {
  const start = o.start ?? 1764090229.25;
  const root = o.sharded ? "client-created-root" : `${id.slice(0, 8)}-root`;
  const nodes: GptNode[] = [{ id: root, parent: null, message: null }];
  let parent = root;
  const add = (nodeId: string, role: string, at: number, body: Record<string, unknown>) => {
    nodes.push({
      id: nodeId,
      parent,
      message: {
        id: nodeId,
        author: { role, name: null, metadata: {} },
        create_time: at,
        content: body,
        status: "finished_successfully",
        recipient: "all",
        ...(role === "assistant" ? { metadata: { model_slug: "gpt-5" } } : {}),
      },
    });
    return nodeId;
  };
  if (o.hiddenSystem) {
    const n = add(`${id.slice(0, 8)}-sys`, "system", start, { content_type: "text", parts: [""] });
    nodes.at(-1)!.message!.metadata = { is_visually_hidden_from_conversation: true };
    parent = n;
  }
  let current = parent;
  for (let i = 0; i < o.turns; i++) {
    const role = i % 2 === 0 ? "user" : "assistant";
    const words = o.words ?? 12;
    const body = {
      content_type: "text",
      parts: [o.seed === undefined ? text(i, words) : varied(o.seed * 1000 + i, words)],
    };
    const nodeId = `${id.slice(0, 8)}-${String(i).padStart(4, "0")}`;
    if (o.regenerated && i === 1) {
      add(`${id.slice(0, 8)}-regen`, "assistant", start + i + 0.5, {
        content_type: "text",
        parts: ["an earlier answer"],
      });
    }
    current = add(nodeId, role, start + i + 1, body);
    parent = current;
  }
  const mapping: Record<string, unknown> = {};
  for (const node of nodes) {
    const children = nodes.filter((n) => n.parent === node.id).map((n) => n.id);
    mapping[node.id] = o.sharded
      ? { id: node.id, message: node.message, parent: node.parent }
      : { id: node.id, message: node.message, parent: node.parent, children };
  }
  return {
    id,
    conversation_id: id,
    title: `Conversation ${id.slice(-4)}`,
    create_time: start,
    update_time: start + o.turns + 1,
    current_node: current,
    default_model_slug: "gpt-5",
    mapping,
  };
}

/** What {@link gptExportZip} puts in the archive. */
export interface GptExportOptions {
  /** Conversations per `conversations-NNN.json` shard; absent: one `conversations.json`. */
  shardSize?: number;
  /** Shard numbers the manifest lists but the archive leaves out. */
  missingShards?: number[];
}

/**
 * A ChatGPT export zip of `conversations`, whole or in shards with a manifest.
 *
 * @example Two shards
 * ```ts
 * import { gptConversation, gptExportZip } from "./export_corpus.ts";
 * const c = (n: number) => gptConversation(`6925e174-0000-8000-8000-00000000000${n}`, { turns: 2 });
 * console.log(gptExportZip([c(1), c(2)], { shardSize: 1 }).length > 0); // true
 * ```
 */
export function gptExportZip(
  conversations: readonly Record<string, unknown>[],
  o: GptExportOptions = {},
): Uint8Array {
  const members: ZipMember[] = [];
  if (!o.shardSize) {
    members.push({ name: "conversations.json", data: JSON.stringify(conversations) });
    members.push({ name: "chat.html", data: "<html><body>see conversations.json</body></html>" });
  } else {
    const files: { path: string }[] = [];
    for (let i = 0; i * o.shardSize < conversations.length; i++) {
      const name = `conversations-${String(i).padStart(3, "0")}.json`;
      files.push({ path: name });
      if (o.missingShards?.includes(i)) continue;
      const shard = conversations.slice(i * o.shardSize, (i + 1) * o.shardSize);
      members.push({ name, data: JSON.stringify(shard, null, 2) });
    }
    members.push({
      name: "export_manifest.json",
      data: JSON.stringify({ version: 1, export_files: files }),
    });
  }
  members.push({ name: "user.json", data: '{"id":"user-x"}' });
  return zipBytes(members);
}

/**
 * A Claude.ai conversation as an export holds it (the 2025 shape, with `content[]`).
 *
 * @example Two messages
 * ```ts
 * import { claudeConversation } from "./export_corpus.ts";
 * console.log((claudeConversation("c0000000-0000-4000-8000-000000000001", 2).chat_messages as unknown[]).length); // 2
 * ```
 */
export function claudeConversation(uuid: string, turns: number): Record<string, unknown> {
  const messages = [];
  for (let i = 0; i < turns; i++) {
    const at = new Date(Date.UTC(2025, 6, 6, 3, 10, i)).toISOString().replace("Z", "000Z");
    const human = i % 2 === 0;
    messages.push({
      uuid: `${uuid.slice(0, 24)}${String(i).padStart(12, "0")}`,
      text: text(i, 8),
      content: human ? [{ type: "text", text: text(i, 8) }] : [
        { type: "thinking", thinking: "let me think", summaries: [] },
        { type: "text", text: text(i, 8), citations: [] },
      ],
      sender: human ? "human" : "assistant",
      created_at: at,
      updated_at: at,
      attachments: [],
      files: [],
    });
  }
  return {
    uuid,
    name: `Chat ${uuid.slice(-4)}`,
    summary: "",
    created_at: "2025-07-06T03:10:00.000000Z",
    updated_at: "2025-07-06T03:20:00.000000Z",
    account: { uuid: "a0000000-0000-4000-8000-000000000000" },
    chat_messages: messages,
  };
}

/**
 * A Takeout "Gemini Apps" activity record (a prompt and its response).
 *
 * @example A record
 * ```ts
 * import { geminiRecord } from "./export_corpus.ts";
 * console.log(geminiRecord("2026-03-10T18:12:00.000Z", "hello").title); // Prompted hello
 * ```
 */
export function geminiRecord(time: string, prompt: string): Record<string, unknown> {
  return {
    header: "Gemini Apps",
    title: `Prompted ${prompt}`,
    time,
    products: ["Gemini Apps"],
    activityControls: ["Gemini Apps Activity"],
    safeHtmlItem: [{ html: `<p>About ${prompt}: ${text(prompt.length, 6)}</p>` }],
  };
}

/**
 * The message uuids the ChatGPT parser gives `conversations`: what a server holds once they are
 * delivered.
 *
 * @example Two messages
 * ```ts
 * import { gptConversation, gptUuids } from "./export_corpus.ts";
 * console.log(gptUuids([gptConversation("6925e174-0000-8000-8000-000000000001", { turns: 2 })]).length); // 2
 * ```
 */
export function gptUuids(conversations: readonly Record<string, unknown>[]): string[] {
  return parseChatGpt({
    bytes: new Uint8Array(0),
    firstLine: 1,
    carry: undefined,
    file: { path: "conversations.json", hint: {}, host: "h" },
    document: {
      root: "array",
      header: {},
      recordsKey: "",
      records: [...conversations],
      index: 0,
      first: true,
      last: true,
    },
  }).conversations.flatMap((c) => c.messages.map((m) => m.uuid));
}
