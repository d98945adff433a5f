/**
 * The batcher: a batch in flight to a server progresses while the next one is read and parsed,
 * although reading and parsing never wait on the event loop; a second batch goes out before the
 * first is answered, and checkpoints move in the order the batches were cut.
 */
import { Batcher } from "../common/delivery/batcher.ts";
import { Delivery, DeliveryError, type DeliverySettings } from "../common/delivery/delivery.ts";
import { HttpSink } from "../common/delivery/http_sink.ts";
import { itemOf } from "../common/delivery/item.ts";
import { newStats } from "../common/delivery/stats.ts";
import { deliverySettings } from "../common/engine/settings.ts";
import { ConfigSchema } from "../common/config.ts";
import { Logger } from "../common/log.ts";
import { StateStore } from "../common/state/state.ts";
import type { Piece } from "../common/units/unit.ts";
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./assert.ts";
import { appendedUnit, conversationOf, textMessage } from "./helpers.ts";

/** A piece of one conversation of one message, from file `n`. */
function piece(n: number): Piece {
  const path = `/s${n}.jsonl`;
  const conversation = {
    ...conversationOf([textMessage(`m${n}`, "x".repeat(1000))]),
    uuid: `c${n}`,
  };
  const item = itemOf(conversation, "json");
  return {
    range: { unit: path, from: 0, to: 10, fromLine: 0 },
    ref: { path, hint: {} },
    cursor: appendedUnit(path, 10, 1, n),
    items: [item],
    messages: 1,
    bytes: item.bytes,
  };
}

const ACK = {
  success: true,
  inserted_conversations: 1,
  inserted_messages: 1,
  updated_conversations: 0,
  updated_messages: 0,
};

/** A batcher sending to a server on `port` over HTTP, `batchSize()` conversations a batch. */
function batcherFor(
  port: number,
  batchSize: () => number,
  overrides: Partial<DeliverySettings> = {},
) {
  const settings = () => ({
    ...deliverySettings(ConfigSchema.parse({}), true),
    batchSize: batchSize(),
    ...overrides,
  });
  const state = new StateStore(":memory:");
  const stats = newStats();
  const log = new Logger("test", "error");
  const delivery = new Delivery({
    sourceType: "claude_code",
    sink: new HttpSink({
      baseUrl: `http://127.0.0.1:${port}`,
      token: "t",
      timeoutMs: 5000,
      compress: false,
      userAgent: "test",
    }),
    state,
    log,
    settings,
    stats,
    recordError: () => {},
  });
  const batcher = new Batcher({
    sourceType: "claude_code",
    state,
    delivery,
    settings,
    stats,
    touched: new Set(),
    pending: new Map(),
    log,
  });
  return { batcher, state, delivery, stats };
}

/** Keeps this thread busy for `ms` without turning the event loop, as parsing does. */
function busy(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Spinning.
  }
}

Deno.test("batcher: a send in flight progresses while the next batch is parsed", async () => {
  const arrivals: number[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.text();
    arrivals.push(performance.now());
    return Response.json(ACK);
  });
  // One conversation a batch at first, so that the first piece goes out at once; then room for
  // all the rest, which are gathered while it is in flight.
  let batchSize = 1;
  const { batcher, state } = batcherFor(server.addr.port, () => batchSize);
  try {
    await batcher.add(piece(1));
    const sent = performance.now();
    batchSize = 10_000;
    // Parsing in 2 ms pieces, none of which cuts a batch, at least 40 ms of it and then until the
    // first batch arrives, for up to 2 s: a loaded machine may take longer than 40 ms to open the
    // first connection, but a batcher that never lets the send progress never sees it arrive.
    let parsed = 0;
    let n = 2;
    for (; n <= 21 || (arrivals.length === 0 && n <= 1000); n++) {
      busy(2);
      await batcher.add(piece(n));
      parsed = performance.now();
    }
    assertEquals(arrivals.length >= 1, true, "the first batch reached the server");
    assert(
      arrivals[0] < parsed,
      `the first batch arrived ${(arrivals[0] - sent).toFixed(1)} ms after it was sent, ` +
        `and parsing ended ${(parsed - sent).toFixed(1)} ms after it: it waited for the parsing`,
    );
    await batcher.flush();
    assertEquals(state.getUnit("/s1.jsonl")?.offset, 10);
    assertEquals(state.getUnit("/s21.jsonl")?.offset, 10);
  } finally {
    await server.shutdown();
    state.close();
  }
});

/** A server that holds the first batch until `release`, then answers it with `first`. */
function holdingServer(first: () => Response) {
  const seen: string[] = [];
  let release = () => {};
  const held = new Promise<void>((resolve) => release = resolve);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = await req.json();
    seen.push(body.conversations[0].uuid);
    if (seen.length === 1) {
      await held;
      return first();
    }
    return Response.json(ACK);
  });
  return { server, seen, release };
}

/** Waits until `done()` holds, for at most 5 s. */
async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 5000;
  while (!done()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("batcher: two batches in flight are committed in the order they were cut", async (t) => {
  await t.step("the second, answered first, waits for the first", async () => {
    const { server, seen, release } = holdingServer(() => Response.json(ACK));
    const { batcher, state } = batcherFor(server.addr.port, () => 1);
    try {
      await batcher.add(piece(1));
      await batcher.add(piece(2));
      // Gathering the third would wait for a free place: two are in flight.
      const third = batcher.add(piece(3));
      await until(() => seen.length === 2, "the second batch to reach the server");
      await new Promise((r) => setTimeout(r, 50));
      assertEquals(seen, ["c1", "c2"], "the third is not sent while two are unanswered");
      assertEquals(state.getUnit("/s2.jsonl"), undefined, "no checkpoint before the first's");
      assertEquals(state.pendingBatches().length, 2);
      release();
      await third;
      await batcher.flush();
      assertEquals(seen, ["c1", "c2", "c3"]);
      for (const n of [1, 2, 3]) assertEquals(state.getUnit(`/s${n}.jsonl`)?.offset, 10);
      assertEquals(state.pendingBatches().length, 0);
    } finally {
      release();
      await server.shutdown();
      state.close();
    }
  });

  await t.step("when the first fails for good, the second moves nothing", async () => {
    const { server, seen, release } = holdingServer(() => new Response("busy", { status: 503 }));
    // One attempt each (`--once`): the first batch's 503 ends delivery.
    const { batcher, state } = batcherFor(server.addr.port, () => 1, { maxAttempts: 1 });
    try {
      await batcher.add(piece(1));
      await batcher.add(piece(2));
      await until(() => seen.length === 2, "the second batch to reach the server");
      release();
      const error = await assertRejects(() => batcher.flush());
      assert(error instanceof DeliveryError, String(error));
      assertStringIncludes(error.message, "HTTP 503");
      assertEquals(seen, ["c1", "c2"], "the second's acknowledgement needs no retry");
      assertEquals(state.getUnit("/s1.jsonl"), undefined);
      assertEquals(state.getUnit("/s2.jsonl"), undefined, "the second is not committed alone");
      assertEquals(state.pendingBatches().length, 2, "both are re-sent after a restart");
    } finally {
      release();
      await server.shutdown();
      state.close();
    }
  });
});

Deno.test("batcher: a pause that ends goes on at once with the second batch", async () => {
  // 401 until the token is fixed: both batches in flight get one, the first pauses.
  let fixed = false;
  const seen: number[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    await req.text();
    seen.push(fixed ? 200 : 401);
    return fixed ? Response.json(ACK) : new Response("no", { status: 401 });
  });
  const { batcher, state, delivery, stats } = batcherFor(server.addr.port, () => 1, {
    maxAttempts: undefined,
    failOnPause: false,
    probeIntervalMs: 20_000,
  });
  try {
    await batcher.add(piece(1));
    await batcher.add(piece(2));
    await until(() => seen.length === 2 && stats.pausedReason !== "", "the first to pause");
    fixed = true;
    // What a config reload does once the token is fixed.
    delivery.wake();
    const t0 = performance.now();
    await batcher.flush();
    const took = performance.now() - t0;
    // The second batch's 401 came while the first was paused: it is sent again at once, not
    // taken for a new pause (which would wait the whole probe interval).
    assert(took < 5000, `the second batch waited ${Math.round(took)} ms after the pause ended`);
    assertEquals(seen, [401, 401, 200, 200]);
    assertEquals(state.getUnit("/s2.jsonl")?.offset, 10);
  } finally {
    await server.shutdown();
    state.close();
  }
});
