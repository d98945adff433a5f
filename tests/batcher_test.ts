/**
 * The batcher: a batch in flight to a server progresses while the next one is read and parsed,
 * although reading and parsing never wait on the event loop.
 */
import { Batcher } from "../common/delivery/batcher.ts";
import { Delivery } from "../common/delivery/delivery.ts";
import { HttpSink } from "../common/delivery/http_sink.ts";
import { itemOf } from "../common/delivery/item.ts";
import { newStats } from "../common/delivery/stats.ts";
import { deliverySettings } from "../common/engine/settings.ts";
import { ConfigSchema } from "../common/config.ts";
import { Logger } from "../common/log.ts";
import { StateStore } from "../common/state/state.ts";
import type { Piece } from "../common/units/unit.ts";
import { assert, assertEquals } from "./assert.ts";
import { conversationOf, textMessage } from "./helpers.ts";

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
    cursor: {
      key: path,
      path,
      kind: "appended",
      dev: 1,
      ino: n,
      headLen: 0,
      headHash: "",
      offset: 10,
      line: 1,
      tailHash: "",
      carry: "",
      status: "active",
    },
    items: [item],
    messages: 1,
    bytes: item.bytes,
  };
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
    return Response.json({
      success: true,
      inserted_conversations: 1,
      inserted_messages: 1,
      updated_conversations: 0,
      updated_messages: 0,
    });
  });
  // One conversation a batch at first, so that the first piece goes out at once; then room for
  // all the rest, which are gathered while it is in flight.
  let batchSize = 1;
  const settings = () => ({ ...deliverySettings(ConfigSchema.parse({}), true), batchSize });
  const state = new StateStore(":memory:");
  const stats = newStats();
  const log = new Logger("test", "error");
  const delivery = new Delivery({
    sourceType: "claude_code",
    sink: new HttpSink({
      baseUrl: `http://127.0.0.1:${server.addr.port}`,
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
  try {
    await batcher.add(piece(1));
    const sent = performance.now();
    batchSize = 100;
    // 40 ms of parsing, in pieces, none of which cuts a batch.
    let parsed = 0;
    for (let n = 2; n <= 21; n++) {
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
