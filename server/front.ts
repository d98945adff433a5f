/**
 * The reference server's TCP front. `Deno.serve` has no header timeout and no connection limit:
 * a client that opens connections and never finishes its request headers holds them forever.
 * The front accepts the connections itself and passes their bytes to `Deno.serve` listening on
 * a unix socket in a private directory, and closes a connection that
 * - has not sent its first request's headers within `headerTimeoutMs`,
 * - sends headers larger than `maxHeaderBytes`,
 * - stays silent in both directions for `idleTimeoutMs`;
 * beyond `maxConnections` open connections, new ones are closed at once.
 *
 * @module
 */
import { join } from "node:path";

/** How the front behaves. */
export interface FrontOptions {
  hostname: string;
  /** The port to listen on; 0 picks a free one. */
  port: number;
  headerTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxConnections?: number;
  maxHeaderBytes?: number;
  /** Called once it listens, with the address. */
  onListen?: (addr: Deno.NetAddr) => void;
}

/** A running front and the HTTP server behind it. */
export interface Front {
  addr: Deno.NetAddr;
  /** Connections open right now. */
  readonly connections: number;
  /** Stops accepting, closes every connection and the server behind. */
  shutdown(): Promise<void>;
}

const HEADER_END = new TextEncoder().encode("\r\n\r\n");

function indexOfHeaderEnd(bytes: Uint8Array, from: number): number {
  for (let i = Math.max(0, from - 3); i + 3 < bytes.length; i++) {
    if (
      bytes[i] === HEADER_END[0] && bytes[i + 1] === HEADER_END[1] &&
      bytes[i + 2] === HEADER_END[2] && bytes[i + 3] === HEADER_END[3]
    ) return i;
  }
  return -1;
}

/**
 * Serves `handler` behind the front. Throws `Deno.errors.AddrInUse` when the port is taken.
 *
 * @example Serve a handler on a free port
 * ```ts
 * import { serveFront } from "./front.ts";
 * const front = await serveFront({ hostname: "127.0.0.1", port: 0 }, () => new Response("ok"));
 * console.log(await (await fetch(`http://127.0.0.1:${front.addr.port}/`)).text()); // ok
 * await front.shutdown();
 * ```
 */
export async function serveFront(
  options: FrontOptions,
  handler: (req: Request) => Response | Promise<Response>,
): Promise<Front> {
  const headerTimeoutMs = options.headerTimeoutMs ?? 10_000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
  const maxConnections = options.maxConnections ?? 512;
  const maxHeaderBytes = options.maxHeaderBytes ?? 64 * 1024;
  const listener = Deno.listen({ hostname: options.hostname, port: options.port });
  const dir = await Deno.makeTempDir({ prefix: "sync-server-" });
  const socket = join(dir, "http.sock");
  const closing = new AbortController();
  const inner = Deno.serve({
    transport: "unix",
    path: socket,
    signal: closing.signal,
    onListen() {},
  }, handler);
  const open = new Set<Deno.Conn>();

  async function serve(conn: Deno.Conn): Promise<void> {
    let timer = setTimeout(() => close(), headerTimeoutMs);
    let upstream: Deno.UnixConn | undefined;
    function close() {
      clearTimeout(timer);
      for (const c of [conn, upstream]) {
        try {
          c?.close();
        } catch {
          // Closed already.
        }
      }
    }
    const touch = () => {
      clearTimeout(timer);
      timer = setTimeout(() => close(), idleTimeoutMs);
    };
    try {
      // The first request's headers, within the deadline.
      let head = new Uint8Array(0);
      const buffer = new Uint8Array(16 * 1024);
      while (indexOfHeaderEnd(head, head.length - buffer.length) === -1) {
        const n = await conn.read(buffer);
        if (n === null) return close();
        const joined = new Uint8Array(head.length + n);
        joined.set(head);
        joined.set(buffer.subarray(0, n), head.length);
        head = joined;
        if (head.length > maxHeaderBytes && indexOfHeaderEnd(head, 0) === -1) return close();
      }
      touch();
      upstream = await Deno.connect({ transport: "unix", path: socket });
      await writeAll(upstream, head);
      // Both directions until both end (a half-closed client still gets its answer); the idle
      // timer closes whatever stays silent.
      await Promise.all([pump(conn, upstream, touch), pump(upstream, conn, touch)]);
    } catch {
      // A reset or a closed socket ends the connection; nothing to report.
    } finally {
      close();
    }
  }

  (async () => {
    for await (const conn of listener) {
      if (open.size >= maxConnections) {
        conn.close();
        continue;
      }
      open.add(conn);
      serve(conn).finally(() => open.delete(conn));
    }
  })().catch(() => {});

  const addr = listener.addr as Deno.NetAddr;
  options.onListen?.(addr);
  return {
    addr,
    get connections() {
      return open.size;
    },
    async shutdown() {
      try {
        listener.close();
      } catch {
        // Closed already.
      }
      for (const conn of open) {
        try {
          conn.close();
        } catch {
          // Closed already.
        }
      }
      closing.abort();
      await inner.finished;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}

/**
 * Copies `from` to `to` until `from` ends, calling `touch` on every chunk. 256 KiB reads keep
 * the copy's cost on 2 MiB batches within noise of serving directly (64 KiB cost about 15 %),
 * while 512 connections hold at most 256 MiB of buffers.
 */
async function pump(from: Deno.Conn, to: Deno.Conn, touch: () => void): Promise<void> {
  const buffer = new Uint8Array(256 * 1024);
  while (true) {
    const n = await from.read(buffer);
    if (n === null) {
      try {
        await to.closeWrite();
      } catch {
        // The other side is gone too.
      }
      return;
    }
    touch();
    await writeAll(to, buffer.subarray(0, n));
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await conn.write(bytes.subarray(written));
}
