/**
 * The records the state database hands out: batch boundaries, pending batches, dead letters and
 * the fingerprints exports leave.
 *
 * @module
 */

/**
 * A fingerprint to record when a batch is acknowledged: `[key, value]` (an export's content
 * hash, a conversation's or a message's fingerprint).
 */
export type Mark = readonly [key: string, value: string];

/** One file's part of a batch: the bytes `[from, to)` and what the checkpoint becomes. */
export interface BatchRange {
  unit: string;
  from: number;
  to: number;
  fromLine: number;
}

/** A batch recorded before its first send. */
export interface PendingBatch {
  key: string;
  ranges: BatchRange[];
}

/** A record that the server refused for good, kept locally so nothing is lost. */
export interface DeadLetter {
  id: number;
  batchKey: string;
  conversationUuid: string;
  status: number;
  error: string;
  createdAt: string;
  /** When `dead-letters replay` delivered it, or `""`. */
  replayedAt: string;
}
