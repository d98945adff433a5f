/**
 * `<binary> dead-letters`: what the server refused and the worker set aside, and sending it
 * again once the cause is fixed.
 *
 * ```
 * <binary> dead-letters [list]         every dead letter, newest first
 * <binary> dead-letters show ID        one, with the conversation as it was sent
 * <binary> dead-letters replay ID      send it again
 * <binary> dead-letters replay --all   send every one not replayed yet
 * ```
 *
 * Replays go where the worker delivers (the server, or the embedded store), one attempt each;
 * an acknowledged one is marked replayed and not sent again.
 *
 * @module
 */
import { join } from "node:path";
import { EmbeddedSink } from "./store_sinks.ts";
import { HttpSink } from "./http_sink.ts";
import { type Sink } from "./sink.ts";
import type { Config } from "../config.ts";
import { outgoingBatch } from "./outgoing.ts";
import { itemOf } from "./item.ts";
import { sha256Hex } from "../hash.ts";
import { printable } from "../redact.ts";
import { StateStore } from "../state/state.ts";
import type { Conversation, SourceType } from "../types.ts";
import { ConversationStore } from "../../store/store.ts";
import { embeddedStorePath } from "./store_sinks.ts";

/** What the subcommand needs to know of the worker. */
export interface DeadLetterContext {
  /** The worker's name (its state database is `<name>.state.db`). */
  worker: string;
  sourceType: SourceType;
  stateDir: string;
  /** The operands after `dead-letters`. */
  operands: string[];
  /** `--all` was given. */
  all: boolean;
  version: string;
}

/**
 * A dead-letters command line that cannot be run.
 *
 * @example The message says what was expected
 * ```ts
 * import { DeadLetterUsageError } from "./dead_letters.ts";
 * console.log(new DeadLetterUsageError("expected an id").message);
 * ```
 */
export class DeadLetterUsageError extends Error {
  override name = "DeadLetterUsageError";
}

function parseId(text: string | undefined): number {
  const id = Number(text);
  if (!text || !Number.isInteger(id) || id < 1) {
    throw new DeadLetterUsageError(
      `expected a dead letter's id (a number from "dead-letters list"), got ${
        JSON.stringify(text ?? "")
      }`,
    );
  }
  return id;
}

function sinkFor(ctx: DeadLetterContext, config: Config): { sink: Sink; close(): void } {
  if (config.server.base_url) {
    return {
      sink: new HttpSink({
        baseUrl: config.server.base_url,
        token: config.security.worker_token,
        timeoutMs: config.server.timeout * 1000,
        compress: config.server.compress,
        userAgent: `ai-sync-${ctx.worker}/${ctx.version}`,
      }),
      close() {},
    };
  }
  const store = new ConversationStore(embeddedStorePath(ctx.stateDir));
  return { sink: new EmbeddedSink(store), close: () => store.close() };
}

/**
 * Runs `dead-letters`; returns the exit code (0, 1 when a replay failed). Throws
 * {@link DeadLetterUsageError} for a command line it cannot run.
 *
 * @example List the dead letters of an empty state directory
 * ```ts
 * import { runDeadLetters } from "./dead_letters.ts";
 * import { ConfigSchema } from "../config.ts";
 * const stateDir = await Deno.makeTempDir();
 * await runDeadLetters({
 *   worker: "codex", sourceType: "codex", stateDir, operands: [], all: false, version: "0",
 * }, ConfigSchema.parse({}));
 * ```
 */
export async function runDeadLetters(ctx: DeadLetterContext, config: Config): Promise<number> {
  const [action = "list", operand, extra] = ctx.operands;
  if (!["list", "show", "replay"].includes(action)) {
    throw new DeadLetterUsageError(
      `unknown dead-letters action ${JSON.stringify(action)}: expected list, show or replay`,
    );
  }
  if (extra !== undefined || (action === "list" && operand !== undefined)) {
    throw new DeadLetterUsageError(`unexpected argument ${JSON.stringify(extra ?? operand)}`);
  }
  const path = join(ctx.stateDir, `${ctx.worker}.state.db`);
  try {
    Deno.statSync(path);
  } catch {
    console.log(`no state database at ${path}: nothing was set aside`);
    return 0;
  }
  const state = new StateStore(path);
  try {
    if (action === "list") return list(state);
    if (action === "show") return show(state, parseId(operand));
    if (ctx.all === (operand !== undefined)) {
      throw new DeadLetterUsageError("replay takes either an id or --all");
    }
    const ids = ctx.all
      ? state.deadLetters(1_000_000, true).map((d) => d.id).reverse()
      : [parseId(operand)];
    return await replay(ctx, config, state, ids);
  } finally {
    state.close();
  }
}

function list(state: StateStore): number {
  const letters = state.deadLetters(1_000_000);
  if (letters.length === 0) {
    console.log("no dead letters: the server refused nothing");
    return 0;
  }
  for (const d of letters) {
    const replayed = d.replayedAt ? `replayed ${d.replayedAt}` : "pending";
    console.log(
      `#${d.id}  ${d.createdAt}  HTTP ${d.status}  ${d.conversationUuid}  ${replayed}\n` +
        `     ${printable(d.error, 300)}`,
    );
  }
  const pending = letters.filter((d) => !d.replayedAt).length;
  console.log(`${letters.length} dead letter(s), ${pending} not replayed`);
  return 0;
}

function show(state: StateStore, id: number): number {
  const letter = state.deadLetterById(id);
  if (!letter) {
    console.error(`no dead letter #${id}; "dead-letters list" shows them`);
    return 1;
  }
  console.log(
    [
      `dead letter #${letter.id}`,
      `  conversation: ${letter.conversationUuid}`,
      `  refused:      ${letter.createdAt}, HTTP ${letter.status}`,
      `  reason:       ${printable(letter.error, 2000)}`,
      `  replayed:     ${letter.replayedAt || "no"}`,
      `  batch:        ${letter.batchKey}`,
      `  conversation as sent:`,
    ].join("\n"),
  );
  console.log(JSON.stringify(JSON.parse(letter.payload), null, 2));
  return 0;
}

async function replay(
  ctx: DeadLetterContext,
  config: Config,
  state: StateStore,
  ids: number[],
): Promise<number> {
  if (ids.length === 0) {
    console.log("no dead letters to replay");
    return 0;
  }
  const { sink, close } = sinkFor(ctx, config);
  let failed = 0;
  try {
    for (const id of ids) {
      const letter = state.deadLetterById(id);
      if (!letter) {
        console.error(`no dead letter #${id}`);
        failed++;
        continue;
      }
      if (letter.replayedAt) {
        console.log(`#${id} was replayed at ${letter.replayedAt}; not sent again`);
        continue;
      }
      const item = itemOf(JSON.parse(letter.payload) as Conversation, sink.form ?? "json");
      const outcome = await sink.send(
        outgoingBatch(ctx.sourceType, [item], `dl_${sha256Hex(letter.payload).slice(0, 32)}`),
        AbortSignal.timeout(config.server.timeout * 1000),
      );
      if (outcome.kind === "ok") {
        state.markReplayed(id);
        console.log(
          `#${id} replayed: conversation ${letter.conversationUuid}, ` +
            `${outcome.result.inserted_messages} new message(s)`,
        );
      } else {
        failed++;
        console.error(`#${id} not replayed (kept): ${outcome.reason}`);
      }
    }
  } finally {
    close();
  }
  return failed === 0 ? 0 : 1;
}
