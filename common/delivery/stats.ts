/**
 * What a worker's pipeline has done in this process, for status, progress and the summary.
 *
 * @module
 */
import type { ExportReport } from "../units/export_delta.ts";

/** What the pipeline has done in this process. */
export interface PipelineStats {
  conversations: number;
  messages: number;
  skipped: number;
  /** Problems with the input that were reported (each also counts in `skipped`). */
  problems: number;
  errors: number;
  /** Tokens (`usage.total`) of the messages delivered. */
  tokens: number;
  bytesRead: number;
  batches: number;
  deadLettered: number;
  /** Bytes of files deleted before they were read. */
  lostBytes: number;
  lastError: string;
  lastErrorAt: string;
  /** The last problem with the input (a malformed line, a file that may not be read). */
  lastProblem: string;
  pausedReason: string;
  retrying: string;
  /** The exports imported in this process, the latest last (at most {@link MAX_REPORTS}). */
  exports: ExportReport[];
}

/** How many export reports status keeps. */
export const MAX_REPORTS = 20;

/**
 * Counters at zero.
 *
 * @example Start counting
 * ```ts
 * import { newStats } from "./stats.ts";
 * const stats = newStats();
 * stats.messages += 2;
 * ```
 */
export function newStats(): PipelineStats {
  return {
    conversations: 0,
    messages: 0,
    skipped: 0,
    problems: 0,
    errors: 0,
    tokens: 0,
    bytesRead: 0,
    batches: 0,
    deadLettered: 0,
    lostBytes: 0,
    lastError: "",
    lastErrorAt: "",
    lastProblem: "",
    pausedReason: "",
    retrying: "",
    exports: [],
  };
}
