/**
 * A fault-injecting batch server for tests: a real {@link ConversationStore} behind the real
 * handler, with a script of faults answered first.
 *
 * @module
 */
import { ConversationStore } from "../store/store.ts";
import { createHandler } from "../server/server.ts";

/** One scripted answer. */
export type Fault =
  | { status: number; headers?: Record<string, string>; body?: string }
  /** Headers are sent, then the connection breaks mid-body. */
  | { reset: true }
  /** The real answer, after `ms`. */
  | { slowMs: number }
  /** 200 with a body of this many bytes, streamed (never held), as a lying server might. */
  | { hugeBytes: number }
  /** 200 with the request's own body as the answer (an echoing proxy). */
  | { echo: true };

/** A request as the fault server saw it. */
export interface SeenRequest {
  at: number;
  key: string;
  bytes: number;
  conversations: string[];
  /** The uuids of the messages the batch carried. */
  messages: string[];
  answered: number | "reset" | "slow" | "huge" | "echo";
  method: string;
  path: string;
}

/** A running fault server. */
export interface FaultServer {
  url: string;
  store: ConversationStore;
  faults: Fault[];
  requests: SeenRequest[];
  /** Answer 400 for any batch carrying this conversation uuid. */
  rejectConversation?: string;
  /** Answer 400 for any batch carrying this message uuid, naming the message's field. */
  rejectMessage?: string;
  /** Answer 400 for every batch, even an empty one, naming nothing (a broken proxy). */
  rejectAll?: boolean;
  /** With `rejectAll`: batches with conversations accepted before the refusals start. */
  acceptFirst?: number;
  /** Put the request's Authorization header into every error answer (a careless server). */
  echoAuthorization?: boolean;
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
    let messages: string[] = [];
    let rejectedMessage = "";
    try {
      const batch = JSON.parse(text).conversations as {
        uuid: string;
        messages?: { uuid: string }[];
      }[];
      conversations = batch.map((c) => c.uuid);
      messages = batch.flatMap((c) => (c.messages ?? []).map((m) => m.uuid));
      batch.forEach((c, ci) => {
        const mi = (c.messages ?? []).findIndex((m) => m.uuid === fs.rejectMessage);
        if (mi >= 0 && !rejectedMessage) {
          rejectedMessage = `conversations.${ci}.messages.${mi}.uuid`;
        }
      });
    } catch {
      // Compressed or broken: leave empty.
    }
    const url = new URL(req.url);
    if (url.pathname === "/acknowledged") {
      // Where a followed redirect would land: an answer that looks like an acknowledgement.
      fs.requests.push({
        at: performance.now(),
        key: "",
        bytes: 0,
        conversations: [],
        messages: [],
        answered: 200,
        method: req.method,
        path: url.pathname,
      });
      return Response.json({
        success: true,
        inserted_conversations: 0,
        inserted_messages: 0,
        updated_conversations: 0,
        updated_messages: 0,
      });
    }
    const echo = fs.echoAuthorization ? ` (you sent ${req.headers.get("authorization")})` : "";
    const seen: SeenRequest = {
      method: req.method,
      path: url.pathname,
      at: performance.now(),
      key: req.headers.get("idempotency-key") ?? "",
      bytes: text.length,
      conversations,
      messages,
      answered: 0,
    };
    fs.requests.push(seen);
    const fault = fs.faults.shift();
    if (fault && "status" in fault) {
      seen.answered = fault.status;
      const body = fault.body ?? `{"code":${fault.status},"message":"injected${echo}"}`;
      return new Response(fault.status === 204 || fault.status === 304 ? null : body, {
        status: fault.status,
        headers: fault.headers,
      });
    }
    if (fault && "hugeBytes" in fault) {
      seen.answered = "huge";
      let left = fault.hugeBytes;
      const chunk = new TextEncoder().encode(" ".repeat(64 * 1024));
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (left <= 0) return controller.close();
          const part = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= part.length;
          controller.enqueue(part);
        },
      });
      return new Response(body, { status: 200, headers: { "content-type": "application/json" } });
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
    if (fault && "echo" in fault) {
      seen.answered = "echo";
      return new Response(text, { status: 200, headers: { "content-type": "application/json" } });
    }
    const accepted = fs.requests.filter((r) => r.answered === 200 && r.conversations.length > 0);
    if (fs.rejectAll && accepted.length >= (fs.acceptFirst ?? 0)) {
      seen.answered = 400;
      return Response.json({ code: 400, message: `rejected${echo}` }, { status: 400 });
    }
    if (fs.rejectConversation && conversations.includes(fs.rejectConversation)) {
      const index = conversations.indexOf(fs.rejectConversation);
      seen.answered = 400;
      return Response.json({
        code: 400,
        message: `conversations.${index}.messages.0.role: injected rejection${echo}`,
      }, { status: 400 });
    }
    if (rejectedMessage) {
      seen.answered = 400;
      return Response.json({
        code: 400,
        message: `${rejectedMessage}: injected rejection${echo}`,
      }, { status: 400 });
    }
    const response = await handler(req);
    seen.answered = response.status;
    if (echo && response.status >= 400) {
      const text = await response.text();
      return new Response(text.replace(/"}$/, `${echo}"}`), response);
    }
    return response;
  });
  fs.url = `http://127.0.0.1:${server.addr.port}`;
  return fs;
}
