/**
 * Which host names are this machine: what is sent to them crosses no network (a secret may go
 * there over plain HTTP).
 *
 * @module
 */

/**
 * Whether `hostname` (a URL's, with IPv6 in brackets, or as given on a command line) names this
 * machine: what crosses no network.
 *
 * @example This machine, and another
 * ```ts
 * import { isLoopbackHost } from "./loopback.ts";
 * console.log(isLoopbackHost("[::1]"), isLoopbackHost("10.0.0.5")); // true false
 * ```
 */
export function isLoopbackHost(hostname: string): boolean {
  return ["127.0.0.1", "localhost", "::1", "[::1]"].includes(hostname);
}
