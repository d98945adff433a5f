/**
 * Errors of the state database, classified by what the user must do about them.
 *
 * @module
 */
import { dirname } from "node:path";

/** What went wrong with the state database, which decides what the user is told to do. */
export type StateFault =
  | "full"
  | "readonly"
  | "cantopen"
  | "corrupt"
  | "locked"
  | "newer"
  | "other";

/**
 * The database was written by a newer ai-sync, whose schema this version does not know; it is
 * left untouched.
 *
 * @example Name both versions
 * ```ts
 * import { NewerSchemaError } from "./errors.ts";
 * console.log(new NewerSchemaError(3, 2).message);
 * ```
 */
export class NewerSchemaError extends Error {
  override name = "NewerSchemaError";
  /** `found` is the database's schema version, `known` the newest this version reads. */
  constructor(readonly found: number, readonly known: number) {
    super(
      `has schema version ${found}, written by a newer ai-sync; this one reads up to ${known}`,
    );
  }
}

/** SQLite result codes (`errcode`) by fault. */
const FAULT_CODES: Record<number, StateFault> = {
  13: "full",
  8: "readonly",
  14: "cantopen",
  11: "corrupt",
  26: "corrupt",
  5: "locked",
  6: "locked",
};

function faultOf(error: unknown): StateFault {
  if (error instanceof NewerSchemaError) return "newer";
  const code = (error as { errcode?: number }).errcode;
  if (code !== undefined && FAULT_CODES[code & 0xff]) return FAULT_CODES[code & 0xff];
  const message = error instanceof Error ? error.message : String(error);
  if (/disk is full|no space/i.test(message)) return "full";
  if (/readonly|read-only|permission denied|access denied/i.test(message)) return "readonly";
  if (/unable to open/i.test(message)) return "cantopen";
  if (/malformed|not a database|corrupt/i.test(message)) return "corrupt";
  if (/locked|busy/i.test(message)) return "locked";
  return "other";
}

/**
 * The state database cannot be used; the message names the file, what went wrong and what to
 * do (free space, fix permissions, move a damaged file aside), and `fault` says which.
 *
 * @example Tell a full disk from damage
 * ```ts
 * import { StateDatabaseError } from "./errors.ts";
 * const error = new StateDatabaseError("/s/x.state.db", new Error("database or disk is full"));
 * console.log(error.fault, error.message);
 * ```
 */
export class StateDatabaseError extends Error {
  override name = "StateDatabaseError";
  /** What went wrong. */
  readonly fault: StateFault;

  /** Wraps `cause`, an error of the database at `path`. */
  constructor(readonly path: string, cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    const fault = faultOf(cause);
    const dir = dirname(path);
    const advice: Record<StateFault, string> = {
      full: `cannot be written: the disk is full (${why}); free some space: delivery waits ` +
        `and nothing is lost`,
      readonly: `cannot be written (${why}); make ${dir} writable again (permissions, a ` +
        `read-only mount): the database itself is intact, keep it`,
      cantopen: `cannot be opened (${why}); check that ${dir} exists and is writable`,
      corrupt: `is unreadable: it is damaged (${why}); move it aside to start over: ` +
        `everything is then read again and the server keeps each message once`,
      locked: `is locked by another process (${why})`,
      newer: `${why}; run a version of ai-sync at least as new, or move the file aside to ` +
        `start over (everything is then read again and the server keeps each message once)`,
      other: why,
    };
    super(`state database ${path} ${fault === "other" ? ": " : ""}${advice[fault]}`, { cause });
    this.fault = fault;
  }
}
