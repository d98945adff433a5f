/**
 * Checking a bearer token without leaking it through timing: both sides are hashed to the same
 * length and compared in constant time.
 *
 * @module
 */
import { timingSafeEqual } from "node:crypto";
import { sha256Hex } from "./hash.ts";

const encoder = new TextEncoder();

/**
 * Whether an `Authorization` header is `Bearer <token>` (an empty token matches nothing).
 *
 * @example Check a header
 * ```ts
 * import { bearerMatches } from "./bearer.ts";
 * bearerMatches("Bearer abc", "abc") && !bearerMatches("Bearer abd", "abc");
 * ```
 */
export function bearerMatches(header: string | null, token: string): boolean {
  const given = encoder.encode(sha256Hex(header ?? ""));
  const expected = encoder.encode(sha256Hex(`Bearer ${token}`));
  return timingSafeEqual(given, expected) && token.length > 0;
}
