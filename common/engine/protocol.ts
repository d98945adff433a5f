/**
 * The messages between a worker's main thread and its engine (a Web Worker).
 *
 * @module
 */
import type { Config, ConfigEnv } from "../config.ts";
import type { LogLevel } from "../log.ts";
import type { StoreReply, StoreRequest } from "../delivery/store_sinks.ts";

/** What the main thread tells the engine at start. */
export interface EngineInit {
  /** The configuration the main thread read (the engine reads the file again only when it changes). */
  config: Config;
  configPath: string;
  env: ConfigEnv;
  dataDir: string;
  /** Directories beside `dataDir` that are sources too (Codex's `archived_sessions`). */
  extraRoots: string[];
  /** Everything the engine may read source data from (data dir, siblings): the read scope. */
  readRoots: string[];
  /** Credentials from the environment (the spec's `secretEnv`), by variable name. */
  secrets: Record<string, string>;
  stateDir: string;
  once: boolean;
  dryRun: boolean;
  logLevel?: LogLevel;
  statusPort: number;
  /** The bearer token `/status` and `/metrics` require. */
  statusToken: string;
  host: string;
  version: string;
  /** stderr is a terminal: draw a progress bar. */
  tty: boolean;
  /** stdout is a terminal: the `--once` summary is a table, else a JSON line. */
  stdoutTty: boolean;
  /** `--json`: the `--once` summary as a JSON line even on a terminal. */
  json: boolean;
  /** `--report json`: progress and the summary as JSON lines on stdout (for `start`). */
  report: "json" | "";
  /** `--log-format`, over `log.format`. */
  logFormat?: "text" | "json";
  /** Paths the engine must not be able to read, checked at start (outside its scope). */
  sandboxProbe: { outsidePath: string; outsideHost: string };
}

/** Messages from the main thread. */
export type EngineCommand = { type: "init"; init: EngineInit } | { type: "stop" } | StoreReply;

/**
 * Messages to the main thread: the engine is ready for its init, the exit code, or a batch for
 * the embedded store it owns.
 */
export type EngineReply = { type: "ready" } | { type: "done"; code: number } | StoreRequest;
