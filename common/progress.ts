/**
 * Backfill progress, shown the way the output is read: a bar on a terminal, a log line every few
 * seconds for a service or a pipe, or JSON lines on stdout for `deno task start`, which draws
 * one line per worker so that several workers' bars never overwrite each other. A paused or
 * retrying worker says so instead of showing a bar.
 *
 * @module
 */
import type { Logger } from "./log.ts";
import { printable } from "./redact.ts";

/** How progress is shown. */
export type ProgressMode = "bar" | "log" | "json" | "none";

/** One reading of a worker's progress. */
export interface ProgressState {
  source: string;
  /** `running`, `paused` (delivery waits for a fix) or `retrying` (the server is down). */
  state: "running" | "paused" | "retrying";
  /** Why it is paused or retrying. */
  reason: string;
  /** Bytes read of `total`. */
  done: number;
  total: number;
  conversations: number;
  messages: number;
  /** The backfill is done: the worker watches for changes. */
  watching?: boolean;
}

/** Where the readings come from. */
export type ProgressReader = () => ProgressState;

const encoder = new TextEncoder();

/**
 * One line of progress, at most `width` characters.
 *
 * @example A worker half way
 * ```ts
 * import { progressLine } from "./progress.ts";
 * progressLine({
 *   source: "codex", state: "running", reason: "", done: 5e6, total: 1e7,
 *   conversations: 3, messages: 40,
 * }, 100);
 * // "codex  [############             ]  50%  5.0/10.0 MB, 3 conversations, 40 messages"
 * ```
 */
export function progressLine(p: ProgressState, width: number): string {
  const mb = (n: number) => (n / 1e6).toFixed(1);
  let text: string;
  if (p.state !== "running") {
    text = `${p.source}  ${p.state.toUpperCase()}: ${p.reason}`;
  } else if (p.watching) {
    text = `${p.source}  watching: ${p.conversations} conversations, ${p.messages} messages ` +
      `synced since start`;
  } else {
    const pct = p.total > 0 ? Math.min(100, Math.floor((p.done / p.total) * 100)) : 100;
    const bar = "#".repeat(Math.floor(pct / 4)).padEnd(25, " ");
    text = `${p.source}  [${bar}] ${String(pct).padStart(3)}%  ${mb(Math.min(p.done, p.total))}/${
      mb(p.total)
    } MB, ${p.conversations} conversations, ${p.messages} messages`;
  }
  // A pause's reason quotes the server.
  text = printable(text, Infinity, true);
  return text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text;
}

/**
 * Shows progress every 200 ms until `end()`; `end()` clears a bar.
 *
 * @example No output at all
 * ```ts
 * import { startProgress } from "./progress.ts";
 * import { Logger } from "./log.ts";
 * const progress = startProgress("none", () => ({
 *   source: "codex", state: "running", reason: "", done: 0, total: 0,
 *   conversations: 0, messages: 0,
 * }), new Logger("doc"));
 * progress.end();
 * ```
 */
export function startProgress(
  mode: ProgressMode,
  read: ProgressReader,
  log: Logger,
): { end(): void } {
  let drawn = false;
  let lastLog = 0;
  let lastJson = "";
  const timer = mode === "none" ? undefined : setInterval(() => {
    const p = read();
    if (mode === "json") {
      const line = JSON.stringify({ type: "progress", ...p });
      if (line !== lastJson) console.log(line);
      lastJson = line;
      return;
    }
    if (p.total === 0 && p.state === "running") return;
    if (mode === "bar") {
      const columns = Deno.consoleSize?.().columns ?? 0;
      const width = columns >= 20 ? columns : 100;
      Deno.stderr.writeSync(encoder.encode(`\r${progressLine(p, width - 1)}\x1b[K`));
      drawn = true;
    } else if (Date.now() - lastLog > 5000) {
      lastLog = Date.now();
      log.info(`backfill ${progressLine(p, 400)}`);
    }
  }, 200);
  return {
    end() {
      clearInterval(timer);
      if (drawn) Deno.stderr.writeSync(encoder.encode("\r\x1b[K"));
      drawn = false;
    },
  };
}
