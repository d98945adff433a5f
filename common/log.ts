/**
 * Structured, levelled logging as JSON lines on stderr (or a file). Secrets never appear: keys
 * that name credentials are redacted and registered secret values are masked in every string.
 *
 * @module
 */
import { printable, Redactor } from "./redact.ts";

/** How records are written: JSON lines, or readable text for a terminal. */
export type LogFormat = "json" | "text";

/** Log levels, in increasing severity. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

const SECRET_KEY = /token|password|secret|authorization/i;
const encoder = new TextEncoder();

/**
 * A JSON-lines logger.
 *
 * @example Log an event with fields
 * ```ts
 * import { Logger } from "./log.ts";
 * const log = new Logger("claude_code", "info");
 * log.info("batch sent", { conversations: 3 });
 * ```
 */
export class Logger {
  #redactor = new Redactor();
  #file: Deno.FsFile | undefined;
  /** JSON lines (default), or `text`: `12:00:01 warn  message key=value` for a person. */
  format: LogFormat = "json";

  /** Creates a logger for `component` that drops records below `level`. */
  constructor(readonly component: string, public level: LogLevel = "info") {}

  /** Masks `value` in every later record (tokens, passwords). */
  addSecret(value: string | undefined): void {
    this.#redactor.add(value);
  }

  /** `text` with the registered secrets masked, for anything shown outside the log (status). */
  redact(text: string): string {
    return this.#redactor.mask(text);
  }

  /** Sends records to `path` (appended) instead of stderr; an empty path means stderr. */
  setFile(path: string): void {
    this.#file?.close();
    this.#file = path
      ? Deno.openSync(path, { create: true, append: true, write: true })
      : undefined;
  }

  /** Logs at debug level. */
  debug(msg: string, fields: Record<string, unknown> = {}): void {
    this.#write("debug", msg, fields);
  }
  /** Logs at info level. */
  info(msg: string, fields: Record<string, unknown> = {}): void {
    this.#write("info", msg, fields);
  }
  /** Logs at warn level. */
  warn(msg: string, fields: Record<string, unknown> = {}): void {
    this.#write("warn", msg, fields);
  }
  /** Logs at error level. */
  error(msg: string, fields: Record<string, unknown> = {}): void {
    this.#write("error", msg, fields);
  }

  /** Closes the log file, if any. */
  close(): void {
    this.#file?.close();
    this.#file = undefined;
  }

  #write(level: LogLevel, msg: string, fields: Record<string, unknown>): void {
    if (LOG_LEVELS.indexOf(level) < LOG_LEVELS.indexOf(this.level)) return;
    const ts = new Date().toISOString();
    const redact = (key: string, value: unknown) => {
      if (key && SECRET_KEY.test(key) && typeof value === "string" && value) return "[redacted]";
      if (value instanceof Error) return `${value.name}: ${value.message}`;
      return value;
    };
    // Text goes to a terminal: what it quotes of files and servers must not drive it.
    let line = this.format === "text"
      ? printable(
        `${ts.slice(11, 19)} ${level.padEnd(5)} ${msg}${
          Object.entries(fields).map(([k, v]) => ` ${k}=${JSON.stringify(redact(k, v))}`).join("")
        }`,
        Infinity,
        true,
      )
      : JSON.stringify({ ts, level, component: this.component, msg, ...fields }, redact);
    line = this.#redactor.mask(line);
    const bytes = encoder.encode(line + "\n");
    if (this.#file) this.#file.writeSync(bytes);
    else Deno.stderr.writeSync(bytes);
  }
}

/**
 * The message of any thrown value.
 *
 * @example Describe an unknown error
 * ```ts
 * import { errorMessage } from "./log.ts";
 * errorMessage(new Error("boom")) === "boom";
 * ```
 */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
