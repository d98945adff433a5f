/**
 * How deep JSON may nest where the store reads it with SQL. SQLite's JSON functions refuse a
 * document nested deeper than 1000 levels ("malformed JSON"), and the query reading it fails for
 * every row it covers: one such message made the `message_text` view, the read API and search
 * fail for the whole store.
 *
 * @module
 */

/** The deepest nesting SQLite's JSON functions read (the outermost object or array is level 1). */
export const STORE_JSON_DEPTH = 1000;

/**
 * Whether `value` nests objects and arrays more than `limit` levels deep (the value itself is
 * level 1). It stops at the first branch too deep, and recurses at most `limit` calls deep.
 *
 * @example An array in an array is two levels
 * ```ts
 * import { nestedDeeperThan } from "./json_depth.ts";
 * nestedDeeperThan([[1]], 2) === false;
 * nestedDeeperThan([[[1]]], 2) === true;
 * ```
 */
export function nestedDeeperThan(value: unknown, limit: number): boolean {
  if (typeof value !== "object" || value === null) return false;
  if (limit < 1) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (nestedDeeperThan(item, limit - 1)) return true;
    return false;
  }
  const fields = value as Record<string, unknown>;
  for (const key in fields) if (nestedDeeperThan(fields[key], limit - 1)) return true;
  return false;
}
