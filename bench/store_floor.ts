/**
 * The floor of a durable SQLite store, as a process of its own: the bare scan (read every
 * `.jsonl` file under a folder, split it into lines, `JSON.parse` each line) plus the least a
 * store that keeps each message once must do with it: insert the record's id, session, parent,
 * role, time, message (as JSON) and text into `node:sqlite` in WAL mode with `synchronous=FULL`
 * and one commit per 2 MB of lines, on one thread. No schema, no validation, no checkpoints, no
 * second index: what is left of a backfill's cost once everything a worker adds is taken away.
 * With `--no-key` the table has no key on the message id, so nothing keeps a message once: the
 * cost of writing the content alone. Prints `{"messages", "bytes"}`.
 *
 * ```
 * deno run --allow-read --allow-write bench/store_floor.ts DIR DB [--no-key]
 * ```
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { jsonlFiles } from "./bare_scan.ts";

/** The part of a Claude Code record the floor stores. */
interface SessionRecord {
  uuid?: string;
  sessionId?: string;
  parentUuid?: string | null;
  type?: string;
  timestamp?: string;
  message?: { role?: string; content?: unknown };
}

/** A message's text: a string content, or its blocks' texts joined. */
function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((block: { text?: unknown }) =>
    typeof block?.text === "string" ? block.text : ""
  ).join("\n");
}

/**
 * Reads, parses and stores every line of `files` into a new store at `db`; returns the messages
 * stored and the bytes read.
 *
 * @example Store nothing
 * ```ts
 * import { storeFloor } from "./store_floor.ts";
 * console.log(storeFloor([], ":memory:", { key: true })); // { messages: 0, bytes: 0 }
 * ```
 */
export function storeFloor(
  files: readonly string[],
  db: string,
  options: { key: boolean },
): { messages: number; bytes: number } {
  const store = new DatabaseSync(db);
  store.exec(`PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
    CREATE TABLE messages (uuid TEXT ${options.key ? "PRIMARY KEY" : ""}, conversation TEXT,
      parent TEXT, role TEXT, created_at TEXT, message TEXT, text TEXT)`);
  const insert = store.prepare(
    `INSERT ${options.key ? "OR IGNORE" : ""} INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)`,
  );
  const decoder = new TextDecoder();
  let messages = 0;
  let bytes = 0;
  let pending = 0;
  store.exec("BEGIN");
  for (const path of files) {
    const data = Deno.readFileSync(path);
    bytes += data.length;
    let lineNumber = 0;
    for (const line of decoder.decode(data).split("\n")) {
      lineNumber++;
      if (!line) continue;
      const record = JSON.parse(line) as SessionRecord;
      const message = record.message ?? {};
      insert.run(
        record.uuid ?? `${path}:${lineNumber}`,
        record.sessionId ?? path,
        record.parentUuid ?? null,
        message.role ?? record.type ?? "",
        record.timestamp ?? "",
        JSON.stringify(message),
        textOf(message.content),
      );
      messages++;
      pending += line.length;
      if (pending > 2e6) {
        store.exec("COMMIT; BEGIN");
        pending = 0;
      }
    }
  }
  store.exec("COMMIT");
  store.close();
  return { messages, bytes };
}

if (import.meta.main) {
  const [dir, db] = Deno.args;
  if (!dir || !db) {
    console.error("usage: store_floor.ts DIR DB [--no-key]");
    Deno.exit(2);
  }
  const figures = storeFloor(jsonlFiles(dir), db, { key: !Deno.args.includes("--no-key") });
  console.log(JSON.stringify(figures));
}
