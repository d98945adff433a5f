/**
 * The status endpoint on 127.0.0.1: `/healthz`, `/status` (JSON) and `/metrics`
 * (Prometheus text), and the client that `<binary> status` uses. `/status` and `/metrics` say
 * what the worker reads and where it delivers, so they need a bearer token (`status.token`, or
 * one the worker writes into its state directory at start, readable only by its user); `/healthz`
 * tells nothing and needs none.
 *
 * @module
 */
import { bearerMatches } from "./bearer.ts";
import { readCapped } from "./delivery/answer.ts";
import { printable } from "./redact.ts";

/** What `/status` reports. */
export interface StatusSnapshot {
  worker: string;
  source_type: string;
  version: string;
  running: boolean;
  started_at: string;
  last_check: string;
  /** Messages delivered by the last check. */
  last_sync_count: number;
  /** Messages delivered since the state database was created, or its target changed. */
  total_synced: number;
  /** Messages delivered by this process. */
  synced_since_start: number;
  conversations_since_start: number;
  files: number;
  skipped: number;
  error_count: number;
  /** Input problems reported (malformed lines, files that may not be read). */
  problems: number;
  last_problem: string;
  last_error: string;
  last_error_at: string;
  dead_lettered: number;
  /** Bytes of files deleted before they were read (counted as total_synced is). */
  lost_bytes: number;
  /** Bytes found but not yet read at the last check. */
  backlog_bytes: number;
  /** Bytes read from source files by this process. */
  bytes_read: number;
  /** Why delivery is paused (401/403/404), or ''. */
  paused_reason: string;
  /** The last retryable failure while it lasts, or ''. */
  retrying: string;
  /** Why a folder is checked every `worker.poll_interval` seconds rather than watched, or ''. */
  polling?: string;
  target: string;
}

/**
 * Prometheus text for a snapshot.
 *
 * @example Render metrics
 * ```ts
 * import { metricsText } from "./status.ts";
 * const snapshot = {
 *   worker: "codex", source_type: "codex", version: "0", running: true, started_at: "",
 *   last_check: "", last_sync_count: 0, total_synced: 3, synced_since_start: 3,
 *   conversations_since_start: 1, files: 1, skipped: 0, error_count: 0, problems: 0,
 *   last_problem: "", last_error: "", last_error_at: "", dead_lettered: 0, lost_bytes: 0,
 *   backlog_bytes: 0, bytes_read: 10, paused_reason: "", retrying: "", target: "t",
 * };
 * console.log(metricsText(snapshot));
 * ```
 */
export function metricsText(s: StatusSnapshot): string {
  const labels = `{worker="${s.worker}"}`;
  const lines = [
    ["ai_sync_up", "Whether the worker is running.", "gauge", s.running ? 1 : 0],
    [
      "ai_sync_messages_synced_total",
      "Messages acknowledged by the server.",
      "counter",
      s.total_synced,
    ],
    [
      "ai_sync_conversations_since_start",
      "Conversations delivered since start.",
      "gauge",
      s.conversations_since_start,
    ],
    ["ai_sync_lines_skipped_total", "Lines skipped since start.", "counter", s.skipped],
    ["ai_sync_errors_total", "Errors since start.", "counter", s.error_count],
    [
      "ai_sync_dead_lettered_total",
      "Conversations kept in the dead-letter table.",
      "counter",
      s.dead_lettered,
    ],
    [
      "ai_sync_lost_bytes_total",
      "Bytes of files deleted before they were read.",
      "counter",
      s.lost_bytes,
    ],
    ["ai_sync_backlog_bytes", "Bytes not yet read at the last check.", "gauge", s.backlog_bytes],
    [
      "ai_sync_paused",
      "1 while delivery is paused by the server's answer.",
      "gauge",
      s.paused_reason ? 1 : 0,
    ],
    [
      "ai_sync_polling",
      "1 while a folder is polled rather than watched (see status).",
      "gauge",
      s.polling ? 1 : 0,
    ],
    ["ai_sync_files", "Source files known.", "gauge", s.files],
    [
      "ai_sync_bytes_read_total",
      "Bytes read from source files since start.",
      "counter",
      s.bytes_read,
    ],
    [
      "ai_sync_last_check_timestamp_seconds",
      "Time of the last check.",
      "gauge",
      s.last_check ? Date.parse(s.last_check) / 1000 : 0,
    ],
  ] as const;
  return lines.map(([name, help, type, value]) =>
    `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name}${labels} ${value}\n`
  ).join("");
}

/**
 * Serves the endpoint on 127.0.0.1; `snapshot` is called per request, and `/status` and
 * `/metrics` answer only requests with `Authorization: Bearer <token>`.
 *
 * @example Serve status, and ask it
 * ```ts
 * import { fetchStatus, serveStatus } from "./status.ts";
 * const snapshot = {
 *   worker: "codex", source_type: "codex", version: "0", running: true, started_at: "",
 *   last_check: "", last_sync_count: 0, total_synced: 3, synced_since_start: 3,
 *   conversations_since_start: 1, files: 1, skipped: 0, error_count: 0, problems: 0,
 *   last_problem: "", last_error: "", last_error_at: "", dead_lettered: 0, lost_bytes: 0,
 *   backlog_bytes: 0, bytes_read: 10, paused_reason: "", retrying: "", target: "t",
 * };
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const port = (listener.addr as Deno.NetAddr).port;
 * listener.close();
 * const server = serveStatus(port, () => snapshot, "status-token");
 * console.log((await fetchStatus(port, "status-token")).total_synced); // 3
 * await server.shutdown();
 * ```
 */
export function serveStatus(
  port: number,
  snapshot: () => StatusSnapshot,
  token: string,
): Deno.HttpServer {
  return Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/healthz") return Response.json({ ok: true });
    if (!bearerMatches(req.headers.get("authorization"), token)) {
      return Response.json({
        message: "send the status token as a bearer token (status.token, or the file " +
          "<worker>.status-token in the state directory, which `<binary> status` reads)",
      }, { status: 401 });
    }
    if (path === "/status") return Response.json(snapshot());
    if (path === "/metrics") {
      return new Response(metricsText(snapshot()), {
        headers: { "content-type": "text/plain; version=0.0.4" },
      });
    }
    return Response.json({ message: "not found: try /healthz, /status or /metrics" }, {
      status: 404,
    });
  });
}

/**
 * No worker answered on the status port.
 *
 * @example Catch it
 * ```ts
 * import { StatusUnavailableError } from "./status.ts";
 * console.log(new StatusUnavailableError(9).message);
 * ```
 */
export class StatusUnavailableError extends Error {
  override name = "StatusUnavailableError";
  /** Creates the error for `port`. */
  constructor(port: number, cause?: string) {
    super(
      `no worker answers on 127.0.0.1:${port}${cause ? ` (${cause})` : ""}; ` +
        `is it running with status.port (or --status-port) set to ${port}?`,
    );
  }
}

/**
 * Reads a running worker's status.
 *
 * @example Ask a worker (see {@link serveStatus} for one that runs)
 * ```ts
 * import { fetchStatus } from "./status.ts";
 * async function ask(port: number, token: string) {
 *   return await fetchStatus(port, token);
 * }
 * ```
 */
export async function fetchStatus(
  port: number,
  token: string,
  timeoutMs = 3000,
): Promise<StatusSnapshot> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/status`, {
      headers: { authorization: `Bearer ${token}` },
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (response.status === 401) {
      await response.body?.cancel();
      throw new StatusUnavailableError(
        port,
        "it refused the status token: the worker on that port uses another state directory " +
          "or status.token",
      );
    }
    if (!response.ok) throw new StatusUnavailableError(port, `HTTP ${response.status}`);
    const { text, over } = await readCapped(response, 1024 * 1024);
    if (over) throw new StatusUnavailableError(port, "an answer of more than 1 MiB");
    return JSON.parse(text) as StatusSnapshot;
  } catch (error) {
    if (error instanceof StatusUnavailableError) throw error;
    throw new StatusUnavailableError(port, (error as Error).message);
  }
}

/**
 * A status as a few readable lines.
 *
 * @example Format for a terminal
 * ```ts
 * import { formatStatus } from "./status.ts";
 * const snapshot = {
 *   worker: "codex", source_type: "codex", version: "0", running: true, started_at: "",
 *   last_check: "", last_sync_count: 0, total_synced: 3, synced_since_start: 3,
 *   conversations_since_start: 1, files: 1, skipped: 0, error_count: 0, problems: 0,
 *   last_problem: "", last_error: "", last_error_at: "", dead_lettered: 0, lost_bytes: 0,
 *   backlog_bytes: 0, bytes_read: 10, paused_reason: "", retrying: "", target: "t",
 * };
 * console.log(formatStatus(snapshot));
 * ```
 */
export function formatStatus(s: StatusSnapshot): string {
  const state = s.paused_reason
    ? `PAUSED: ${printable(s.paused_reason, 1000)}`
    : s.retrying
    ? `retrying: ${printable(s.retrying, 1000)}`
    : "ok";
  return [
    `${s.worker} ${s.version}: ${s.running ? "running" : "stopped"} since ${s.started_at}`,
    `  delivery:     ${state} → ${s.target}`,
    `  last check:   ${s.last_check || "not yet"} (${s.last_sync_count} messages)`,
    `  synced:       ${s.total_synced} messages in all, ${s.synced_since_start} since start`,
    `  files:        ${s.files}, backlog ${s.backlog_bytes} bytes`,
    ...(s.polling
      ? [`  watching:     no, polled every worker.poll_interval s: ${printable(s.polling, 1000)}`]
      : []),
    `  skipped:      ${s.skipped} lines; errors: ${s.error_count}; dead-lettered: ${s.dead_lettered}; lost bytes: ${s.lost_bytes}`,
    ...(s.last_error
      ? [`  last error:   ${printable(s.last_error, 1000)} (${s.last_error_at})`]
      : []),
    ...(s.last_problem ? [`  last skipped: ${printable(s.last_problem, 1000)}`] : []),
  ].join("\n");
}
