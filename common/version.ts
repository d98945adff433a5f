/**
 * The version of ai-sync, as `deno.json` gives it: what every binary reports, and what an
 * export imported with errors was read by (it is read again by another version).
 *
 * @module
 */
import denoJson from "../deno.json" with { type: "json" };

/**
 * The version every binary reports.
 *
 * @example Print it
 * ```ts
 * import { VERSION } from "./version.ts";
 * console.log(VERSION); // e.g. 0.1.0
 * ```
 */
export const VERSION: string = denoJson.version;
