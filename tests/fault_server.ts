/**
 * A fault-injecting batch server for tests: a real {@link ConversationStore} behind the real
 * handler, with a script of faults answered first.
 *
 * @module
 */
import { ConversationStore } from "../server/store.ts";
import { createHandler } from "../server/server.ts";

/** One scripted answer. */
export type Fault =
  | { status: number; headers?: Record<string, string>; body?: string }
  /** Headers are sent, then the connection breaks mid-body. */
  | { reset: true }
  /** The real answer, after `ms`. */
  | { slowMs: number };

/** A request as the fault server saw it. */
export interface SeenRequest {
  at: number;
  key: string;
  bytes: number;
  conversations: string[];
  answered: number | "reset" | "slow";
}

/** A running fault server. */
export interface FaultServer {
  url: string;
  store: ConversationStore;
  faults: Fault[];
  requests: SeenRequest[];
  /** Answer 400 for any batch carrying this conversation uuid. */
  rejectConversation?: string;
  token: string;
  close(): Promise<void>;
}

/** Starts a fault server on a free loopback port. */
export function startFaultServer(
  opts: { token?: string; maxBodyBytes?: number } = {},
): FaultServer {
  const store = new ConversationStore(":memory:");
  const token = opts.token ?? "test-token";
  const closing = new AbortController();
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      closing.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  const handler = createHandler({ store, token, maxBodyBytes: opts.maxBodyBytes ?? 1 << 25 });
  const fs: FaultServer = {
    url: "",
    store,
    faults: [],
    requests: [],
    token,
    close: async () => {
      closing.abort();
      await server.shutdown();
      store.close();
    },
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const text = await req.clone().text();
    let conversations: string[] = [];
    try {
      conversations = (JSON.parse(text).conversations as { uuid: string }[]).map((c) => c.uuid);
    } catch {
      // Compressed or broken: leave empty.
    }
    const seen: SeenRequest = {
      at: performance.now(),
      key: req.headers.get("idempotency-key") ?? "",
      bytes: text.length,
      conversations,
      answered: 0,
    };
    fs.requests.push(seen);
    const fault = fs.faults.shift();
    if (fault && "status" in fault) {
      seen.answered = fault.status;
      return new Response(fault.body ?? `{"code":${fault.status},"message":"injected"}`, {
        status: fault.status,
        headers: fault.headers,
      });
    }
    if (fault && "reset" in fault) {
      seen.answered = "reset";
      const body = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"succ'));
          controller.error(new Error("injected reset"));
        },
      });
      return new Response(body, { status: 200 });
    }
    if (fault && "slowMs" in fault) {
      seen.answered = "slow";
      await sleep(fault.slowMs);
    }
    if (fs.rejectConversation && conversations.includes(fs.rejectConversation)) {
      const index = conversations.indexOf(fs.rejectConversation);
      seen.answered = 400;
      return Response.json({
        code: 400,
        message: `conversations.${index}.messages.0.role: injected rejection`,
      }, { status: 400 });
    }
    const response = await handler(req);
    seen.answered = response.status;
    return response;
  });
  fs.url = `http://127.0.0.1:${server.addr.port}`;
  return fs;
}
