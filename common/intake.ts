/**
 * An intake: something besides the watched files that brings a source its data, such as the
 * openai worker's mailbox, from which exports are downloaded into a folder the source watches
 * (and imported from there like any export). The engine runs it: once before a `--once` pass,
 * continuously beside the watcher otherwise.
 *
 * @module
 */
import type { Logger } from "./log.ts";
import type { StateStore } from "./state/state.ts";

/** What an intake gets from the engine. */
export interface IntakeContext {
  /** The source's config section, as in force now. */
  section(): Record<string, unknown>;
  /** Secrets from the environment, by variable name (never logged: the log masks them). */
  secrets: Readonly<Record<string, string>>;
  state: StateStore;
  log: Logger;
  /** Where it puts what it fetches (a folder the source watches). */
  downloadDir: string;
  /** Records a failure for status and the exit code. */
  recordError(message: string): void;
}

/** A running intake. */
export interface Intake {
  /** One pass: fetches what is new now. */
  check(): Promise<void>;
  /** Keeps fetching until `signal` aborts (waiting for news, reconnecting after failures). */
  run(signal: AbortSignal): Promise<void>;
  /** What it has done and where it stands, for status. */
  status(): Record<string, unknown>;
}

/**
 * The folder under the state directory where a source's intake puts what it fetches.
 *
 * @example The openai worker's downloads
 * ```ts
 * import { intakeDir } from "./intake.ts";
 * console.log(intakeDir("/s", "openai")); // /s/openai-downloads
 * ```
 */
export function intakeDir(stateDir: string, source: string): string {
  return `${stateDir}/${source}-downloads`;
}
