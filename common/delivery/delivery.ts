/**
 * Delivering one recorded batch (docs/delivery.md): send it, retry with full-jitter backoff, split on
 * 413, pause on 401/403/404 and on redirects, and set aside (dead-letter) only what the server
 * refuses for a reason that lies in the conversation itself, or in the messages it names. A
 * refusal is evidence against a conversation only when the server names it, or when the batch was
 * cut down to that one conversation while the server accepts others (or at least an empty
 * batch); a circuit breaker pauses instead when most recent conversations were refused, since
 * that is a server or proxy fault, not bad data. Nothing is dropped: a dead letter keeps its
 * payload for `dead-letters replay`.
 *
 * @module
 */
import { backoffDelay, type OutgoingBatch, type SendOutcome, type Sink } from "./sink.ts";
import { outgoingBatch } from "./outgoing.ts";
import { type Item, itemOf } from "./item.ts";
import { namedMessages, namesConversation } from "./answer.ts";
import type { Logger } from "../log.ts";
import type { Mark, StateStore } from "../state/state.ts";
import { RECEIPT_MARK } from "./store_sinks.ts";
import { StateDatabaseError } from "../state/errors.ts";
import type { SourceType } from "../types.ts";

/** Settings read from the config at each use, so a reload applies at once. */
export interface DeliverySettings {
  batchSize: number;
  batchMaxBytes: number;
  chunkBytes: number;
  maxLineBytes: number;
  /** The most a `.zst` file may decompress to. */
  maxDecompressedBytes: number;
  /** The largest document rewritten whole that is read. */
  maxDocumentBytes: number;
  /** The largest export member (inflated) that is read; larger is refused as a zip bomb. */
  maxMemberBytes: number;
  /** How long an export's size and mtime must stay the same before it is read. */
  settleMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  probeIntervalMs: number;
  shutdownTimeoutMs: number;
  /** Give up after this many failed sends of one batch (`--once`); unlimited when absent. */
  maxAttempts?: number;
  /** A pause is a failure at once (`--once`: nobody is there to fix it while it waits). */
  failOnPause?: boolean;
}

/**
 * Delivery was stopped before a batch was acknowledged; its checkpoints did not move.
 *
 * @example Tell a stop from a failure
 * ```ts
 * import { StoppedError } from "./delivery.ts";
 * console.log(new StoppedError().name);
 * ```
 */
export class StoppedError extends Error {
  override name = "StoppedError";
  /** Creates the error. */
  constructor() {
    super("stopped before the batch was acknowledged");
  }
}

/**
 * A batch could not be delivered within `maxAttempts` (only with `--once`); nothing was lost:
 * its checkpoints did not move.
 *
 * @example Catch a delivery failure
 * ```ts
 * import { DeliveryError } from "./delivery.ts";
 * console.log(new DeliveryError("HTTP 503").message);
 * ```
 */
export class DeliveryError extends Error {
  override name = "DeliveryError";
}

/**
 * Whether an error is one of delivery or of the state database, which concern every unit, not
 * the one being read (they stop the check; any other error is reported with its unit).
 *
 * @example A stop is a delivery failure
 * ```ts
 * import { isDeliveryFailure, StoppedError } from "./delivery.ts";
 * console.log(isDeliveryFailure(new StoppedError())); // true
 * ```
 */
export function isDeliveryFailure(error: unknown): boolean {
  return error instanceof StoppedError || error instanceof DeliveryError ||
    error instanceof StateDatabaseError;
}

/** Counters delivery keeps up to date for status. */
export interface DeliveryStats {
  deadLettered: number;
  pausedReason: string;
  retrying: string;
}

/** What delivery needs. */
export interface DeliveryOptions {
  sourceType: SourceType;
  sink: Sink;
  state: StateStore;
  log: Logger;
  settings: () => DeliverySettings;
  stats: DeliveryStats;
  /** Records an error for status and logs. */
  recordError(message: string, fields?: Record<string, unknown>): void;
}

/** How many recent conversation outcomes the circuit breaker weighs. */
const BREAKER_WINDOW = 20;
/** Refusals in the window, and more than half of it, open the breaker. */
const BREAKER_MIN_REFUSED = 5;

/** `n` messages, in words. */
function count(n: number): string {
  return n === 1 ? "1 message" : `${n} messages`;
}

/**
 * Sends batches until they are acknowledged, set aside with evidence, or delivery stops.
 *
 * @example Deliver into an in-memory store
 * ```ts
 * import { Delivery } from "./delivery.ts";
 * import { EmbeddedSink } from "./store_sinks.ts";
 * import { StateStore } from "../state/state.ts";
 * import { Logger } from "../log.ts";
 * import { ConfigSchema } from "../config.ts";
 * import { deliverySettings } from "../engine/settings.ts";
 * import { ConversationStore } from "../../store/store.ts";
 * const delivery = new Delivery({
 *   sourceType: "claude_code", sink: new EmbeddedSink(new ConversationStore(":memory:")),
 *   state: new StateStore(":memory:"), log: new Logger("doc", "error"),
 *   settings: () => deliverySettings(ConfigSchema.parse({}), false),
 *   stats: { deadLettered: 0, pausedReason: "", retrying: "" }, recordError: () => {},
 * });
 * await delivery.deliver("k", []);
 * ```
 */
export class Delivery {
  /** Recent conversation outcomes, newest last: true when accepted. */
  #window: boolean[] = [];
  #stopping = false;
  #stopController = new AbortController();
  #wake: (() => void) | undefined;
  #receipt = 0;

  /** Creates a delivery for one source. */
  constructor(readonly options: DeliveryOptions) {}

  /**
   * What to record with a batch's commit: the highest receipt the embedded store gave (none from
   * a server), which the store must still reach at the next start (`target.ts`).
   */
  receiptMarks(): Mark[] {
    return this.#receipt > 0 ? [[RECEIPT_MARK, String(this.#receipt)]] : [];
  }

  /**
   * Delivers `items` under `key`; returns once the server acknowledged them (or the refused
   * ones are in the dead-letter table). Throws {@link StoppedError} when stopped first and
   * {@link DeliveryError} when `maxAttempts` ran out.
   *
   * With `leaveRefusal`, a conversation refused on its own is not set aside: the call returns
   * `true` and leaves it to the caller (which is testing whether the refusal was about it).
   *
   * With `after`, the delivery of the batch before this one, only the first attempt goes out at
   * once, and `after`'s failure is this batch's too. A refusal or failure that came back while
   * `after` was still under way is not acted on: it may be stale (the token fixed since, the
   * server back), so the batch is sent again once `after` has ended. So a failing server gets one
   * batch's retries at a time, in order.
   */
  async deliver(
    key: string,
    items: Item[],
    after?: Promise<unknown>,
    leaveRefusal = false,
  ): Promise<boolean> {
    const { sourceType, stats, log, sink } = this.options;
    const out = outgoingBatch(sourceType, items, key);
    let attempt = 0;
    while (true) {
      if (this.#stopping) throw new StoppedError();
      const outcome = await this.#send(out);
      if (after) {
        await after;
        after = undefined;
        if (outcome.kind !== "ok") continue;
      }
      if (outcome.kind === "ok") {
        this.#observe(items.length, true);
        this.#receipt = Math.max(this.#receipt, outcome.receipt ?? 0);
        if (stats.pausedReason || stats.retrying) {
          log.info("delivery resumed", { target: sink.target });
        }
        stats.pausedReason = "";
        stats.retrying = "";
        return false;
      }
      let pause: string;
      let fix = "check the server's logs (or a proxy in front of it): it refuses what it is sent";
      if (outcome.kind === "retry") {
        attempt = this.#giveUpAfter(attempt, key, outcome.reason);
        stats.retrying = outcome.reason;
        const settings = this.options.settings();
        const delay = backoffDelay(
          attempt - 1,
          settings.retryBaseMs,
          settings.retryMaxMs,
          outcome.retryAfterMs,
        );
        log.warn(`send failed, retrying: ${outcome.reason}`, {
          attempt,
          retry_in_ms: Math.round(delay),
        });
        await this.#sleep(delay);
        continue;
      } else if (outcome.kind === "pause") {
        pause = outcome.reason;
        fix = outcome.fix;
      } else if (items.length > 1) {
        // Refused or too large: split until the offending conversation stands alone.
        const half = Math.ceil(items.length / 2);
        await this.deliver(`${key}.a`, items.slice(0, half));
        await this.deliver(`${key}.b`, items.slice(half));
        return false;
      } else {
        const [item] = items;
        const messages = item.conversation.messages;
        if (outcome.kind === "too_large" && messages.length > 1) {
          const half = Math.ceil(messages.length / 2);
          const part = (m: typeof messages) =>
            itemOf({ ...item.conversation, messages: m }, item.form);
          await this.deliver(`${key}.a`, [part(messages.slice(0, half))]);
          await this.deliver(`${key}.b`, [part(messages.slice(half))]);
          return false;
        }
        if (outcome.kind === "rejected" && leaveRefusal) return true;
        if (outcome.kind === "rejected" && await this.#setAsideNamed(key, item, outcome.reason)) {
          return false;
        }
        const status = outcome.kind === "too_large" ? 413 : outcome.status;
        const verdict = await this.#judge(item, outcome.reason);
        if (verdict === "dead-letter") {
          this.#deadLetter(key, item, status, outcome.reason);
          return false;
        }
        pause = verdict;
      }
      if (this.options.settings().failOnPause) {
        throw new DeliveryError(
          `delivery paused (checkpoints untouched, nothing lost): ${pause}\nfix: ${fix}`,
        );
      }
      attempt = this.#giveUpAfter(attempt, key, pause);
      stats.pausedReason = pause;
      const delay = this.options.settings().probeIntervalMs;
      this.options.recordError(`delivery paused (checkpoints frozen, nothing dropped): ${pause}`, {
        fix,
        probe_in_ms: delay,
      });
      await this.#sleep(delay);
    }
  }

  /**
   * A conversation refused for some of its messages (an id with a NUL, a time of month 13): the
   * rest is sent without them, and if the server takes it, the messages named are delivered
   * (and so set aside) on their own. False when the refusal names no message, or the rest is
   * refused too (the refusal was about the conversation, which is then set aside whole).
   */
  async #setAsideNamed(key: string, item: Item, reason: string): Promise<boolean> {
    const messages = item.conversation.messages;
    const named = new Set(namedMessages(reason, messages.length));
    if (named.size === 0 || named.size === messages.length) return false;
    const part = (culprits: boolean) =>
      itemOf({
        ...item.conversation,
        messages: messages.filter((_, i) => named.has(i) === culprits),
      }, item.form);
    if (await this.deliver(`${key}.r`, [part(false)], undefined, true)) return false;
    await this.deliver(`${key}.m`, [part(true)]);
    return true;
  }

  /** Counts a failed attempt; throws {@link DeliveryError} once `maxAttempts` is reached. */
  #giveUpAfter(attempt: number, key: string, reason: string): number {
    const max = this.options.settings().maxAttempts;
    if (max !== undefined && attempt + 1 >= max) {
      throw new DeliveryError(
        `batch ${key} not delivered after ${attempt + 1} attempts: ${reason}`,
      );
    }
    return attempt + 1;
  }

  /**
   * Whether a conversation the server refused on its own may be set aside, or else why
   * delivery pauses instead.
   */
  async #judge(item: Item, reason: string): Promise<"dead-letter" | string> {
    this.#observe(1, false);
    const refused = this.#window.filter((accepted) => !accepted).length;
    if (refused >= BREAKER_MIN_REFUSED && refused * 2 > this.#window.length) {
      return `the server refused ${refused} of the last ${this.#window.length} conversations; ` +
        `pausing instead of setting them aside (a server or proxy fault, not bad data): ${reason}`;
    }
    if (namesConversation(reason, item.conversation.uuid, 0)) return "dead-letter";
    if (this.#window.some((accepted) => accepted)) return "dead-letter";
    // Nothing accepted lately: does the server accept anything at all? An empty batch tells.
    const control = await this.#send(
      outgoingBatch(this.options.sourceType, [], `probe_${this.options.sourceType}`),
    );
    if (control.kind === "ok") return "dead-letter";
    return `the server refused conversation ${item.conversation.uuid} without naming it and ` +
      `accepts nothing, not even an empty batch; pausing instead of setting it aside: ${reason}`;
  }

  #deadLetter(key: string, item: Item, status: number, reason: string): void {
    const { state, stats, log } = this.options;
    const error = log.redact(reason);
    state.deadLetter(key, item.conversation.uuid, status, error, item.json);
    stats.deadLettered++;
    this.options.recordError(
      `conversation ${item.conversation.uuid} (${count(item.conversation.messages.length)}) ` +
        `refused by the server and kept in the dead-letter table (replay it with ` +
        `"dead-letters replay"): ${error}`,
    );
  }

  #observe(conversations: number, accepted: boolean): void {
    for (let i = 0; i < Math.min(conversations, BREAKER_WINDOW); i++) this.#window.push(accepted);
    if (this.#window.length > BREAKER_WINDOW) {
      this.#window.splice(0, this.#window.length - BREAKER_WINDOW);
    }
  }

  /** Sends; once stopping, the in-flight send gets `shutdownTimeoutMs` before it is aborted. */
  #send(out: OutgoingBatch): Promise<SendOutcome> {
    return this.options.sink.send(out, this.#stopController.signal).catch((error) => {
      if (this.#stopping) throw new StoppedError();
      throw error;
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = done;
    });
  }

  /** Ends a backoff or pause wait at once (after a config change, say). */
  wake(): void {
    this.#wake?.();
  }

  /**
   * Stops: no new sends; a backoff or pause wait ends now; an in-flight send gets
   * `shutdownTimeoutMs`, then is aborted (its checkpoints stay where they were).
   */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.wake();
    const timer = setTimeout(
      () => this.#stopController.abort(new StoppedError()),
      this.options.settings().shutdownTimeoutMs,
    );
    Deno.unrefTimer(timer);
  }

  /** Whether {@link stop} was called. */
  get stopping(): boolean {
    return this.#stopping;
  }
}
