/**
 * Where a worker's state says it delivered. Checkpoints say what the target holds; a worker that
 * finds its target changed (a server set after the embedded store, another server, the embedded
 * store deleted or replaced by another file) starts over and reads everything again for the new
 * one, which keeps each message once. Before, a history delivered into the embedded store never
 * reached a server set up afterwards: only what was written after the change did.
 *
 * @module
 */
import { embeddedStorePath, RECEIPT_MARK } from "../delivery/store_sinks.ts";
import type { StateStore } from "../state/state.ts";
import { ConversationStore } from "../../store/store.ts";

/** Where the state records its target. */
const TARGET_KEY = "target";

/** Fingerprints that are an intake's own bookkeeping (the mailbox), not deliveries: kept. */
const INTAKE_PREFIXES = ["mail:", "mailbox:"];

/** A worker's target: its name, and for the embedded store its file's identity once it exists. */
export interface DeliveryTarget {
  name: string;
  file?: string;
}

/**
 * The target of a configuration: the server's address, or the embedded store's file in
 * `stateDir` (with the file's identity, inode and creation time, when it exists).
 *
 * @example The embedded store
 * ```ts
 * import { targetOf } from "./target.ts";
 * console.log(targetOf("", "/nowhere")); // { name: "the embedded store /nowhere/conversations.db" }
 * ```
 */
export function targetOf(baseUrl: string, stateDir: string): DeliveryTarget {
  if (baseUrl) return { name: `the server ${baseUrl.replace(/\/+$/, "")}` };
  const storePath = embeddedStorePath(stateDir);
  const target: DeliveryTarget = { name: `the embedded store ${storePath}` };
  try {
    const stat = Deno.statSync(storePath);
    target.file = `${stat.dev}:${stat.ino}:${stat.birthtime?.getTime() ?? ""}`;
  } catch {
    // Not created yet: the first batch creates it.
  }
  return target;
}

/**
 * How many batches of `sourceType` the embedded store in `stateDir` has stored (its receipt), or
 * `undefined` when there is no store or it cannot be read now (the comparison is then left out).
 *
 * @example No store yet
 * ```ts
 * import { storeReceiptOf } from "./target.ts";
 * console.log(storeReceiptOf(Deno.makeTempDirSync(), "codex")); // undefined
 * ```
 */
export function storeReceiptOf(stateDir: string, sourceType: string): number | undefined {
  const path = embeddedStorePath(stateDir);
  let store: ConversationStore | undefined;
  try {
    // SQLite's open of a FIFO waits for a writer: the worker hung at start.
    if (!Deno.statSync(path).isFile) return undefined;
    store = new ConversationStore(path, { readOnly: true });
    return store.receipt(sourceType);
  } catch {
    return undefined;
  } finally {
    store?.close();
  }
}

/**
 * Compares `target` with the one the state delivered to, starting the state over when they
 * differ; returns why it did (empty when it did not). A state that names no target (new, or
 * written before targets were recorded) takes this one, as does one that did not know the
 * store's file yet. With `storeReceipt` ({@link storeReceiptOf}), a store that holds fewer
 * batches than it acknowledged (a backup copied over it, which keeps the file) starts it over
 * too: what the backup lacks is sent again.
 *
 * @example A new state takes the target
 * ```ts
 * import { StateStore } from "../state/state.ts";
 * import { checkTarget } from "./target.ts";
 * const state = new StateStore(":memory:");
 * console.log(checkTarget(state, { name: "the server https://x" })); // ""
 * console.log(checkTarget(state, { name: "the server https://y" }) !== ""); // true
 * ```
 */
export function checkTarget(
  state: StateStore,
  target: DeliveryTarget,
  storeReceipt?: number,
): string {
  const before = recordedTarget(state);
  const acknowledged = Number(state.fingerprint(RECEIPT_MARK) ?? 0);
  let why = "";
  if (before && before.name !== target.name) why = `it delivered to ${before.name} before`;
  else if (before?.file && before.file !== target.file) {
    why = target.file
      ? "that file is not the store it delivered to (replaced)"
      : "the store it delivered to is gone";
  } else if (storeReceipt !== undefined && storeReceipt < acknowledged) {
    why = `the store holds ${storeReceipt} of the ${acknowledged} batches it acknowledged ` +
      "(restored from an older copy, or overwritten)";
  }
  if (why) forgetDeliveries(state);
  if (why || before?.name !== target.name || (target.file && before?.file !== target.file)) {
    state.putFingerprint(TARGET_KEY, JSON.stringify(target));
  }
  return why;
}

/**
 * Forgets what the state delivered (checkpoints, batches in flight, what exports sent, its
 * counts), keeping the mailbox intake's own bookkeeping: the next run reads everything again.
 *
 * @example A state that forgot
 * ```ts
 * import { StateStore } from "../state/state.ts";
 * import { forgetDeliveries } from "./target.ts";
 * const state = new StateStore(":memory:");
 * state.putFingerprint("x:0123", "/drop/export.zip");
 * forgetDeliveries(state);
 * console.log(state.fingerprint("x:0123")); // undefined
 * ```
 */
export function forgetDeliveries(state: StateStore): void {
  state.startOver(INTAKE_PREFIXES);
}

/**
 * Records the embedded store's file once the first batch has created it, so that a store deleted
 * after it is noticed at the next start; never starts over (a running worker keeps its state).
 *
 * @example Nothing to record for a server
 * ```ts
 * import { StateStore } from "../state/state.ts";
 * import { noteTargetFile } from "./target.ts";
 * noteTargetFile(new StateStore(":memory:"), { name: "the server https://x" });
 * ```
 */
export function noteTargetFile(state: StateStore, target: DeliveryTarget): void {
  if (!target.file) return;
  const before = recordedTarget(state);
  if (before?.name === target.name && !before.file) {
    state.putFingerprint(TARGET_KEY, JSON.stringify(target));
  }
}

/** The target the state delivered to, if it names one. */
function recordedTarget(state: StateStore): DeliveryTarget | undefined {
  const recorded = state.fingerprint(TARGET_KEY);
  return recorded ? JSON.parse(recorded) as DeliveryTarget : undefined;
}
