/**
 * Configuration: `config.yaml` validated with zod into errors that name the key and what was
 * expected, with `SYNC_WORKER_TOKEN` and `SYNC_SERVER_URL` overriding the file.
 *
 * @module
 */
import { isLoopbackHost } from "./loopback.ts";
import { z } from "zod";
import { parseDocument } from "yaml";
import { formatIssues } from "./types.ts";
import { LOG_LEVELS } from "./log.ts";
import { ConfinementError, ReadScope } from "./io/guarded_file.ts";
import type { SourceSpec } from "./source_spec.ts";
import { SOURCES } from "../workers/registry.ts";

/** Accepts a number, or a string of digits (as env-style YAML values often are). */
function integer(min: 0 | 1, max = Number.MAX_SAFE_INTEGER, why = "") {
  const error = min === 1 ? "expected a positive integer" : "expected a non-negative integer";
  return z.preprocess(
    (v) => typeof v === "string" && /^\s*\d+\s*$/.test(v) ? Number(v) : v,
    z.number({ error }).int({ error }).min(min, { error }).max(max, {
      error: `expected at most ${max}${why}`,
    }),
  );
}
const MIB = 1024 * 1024;
const positiveInt = integer(1);
const nonNegativeInt = integer(0);

/** Why a server URL cannot be used, or `""`; never repeats the URL (it may hold a password). */
export function serverUrlProblem(value: string): string {
  if (!URL.canParse(value)) return "expected an http(s) URL such as https://example.com";
  const url = new URL(value);
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return "expected an http or https URL";
  }
  if (url.username || url.password) {
    return "must not contain a user name or password (user:password@): the worker sends " +
      "security.worker_token as a bearer token, and a password in a URL ends up in logs";
  }
  return "";
}

/**
 * What a plain-HTTP server URL to another machine exposes, or `""`: over `http:` the worker
 * token and every conversation cross the network in clear (fine on this machine).
 *
 * @example Plain HTTP across the network, and to this machine
 * ```ts
 * import { cleartextWarning } from "./config.ts";
 * console.log(cleartextWarning("http://10.0.0.5:8080") !== ""); // true
 * console.log(cleartextWarning("http://127.0.0.1:8080")); // ""
 * ```
 */
export function cleartextWarning(value: string): string {
  if (!URL.canParse(value)) return "";
  const url = new URL(value);
  if (url.protocol !== "http:" || isLoopbackHost(url.hostname)) {
    return "";
  }
  return `server.base_url is plain HTTP to ${url.host}: the worker token and the conversations ` +
    `cross the network unencrypted; use https:// (a reverse proxy with TLS in front of the server)`;
}

const serverSchema = z.strictObject({
  base_url: z.string().default("").superRefine((v, ctx) => {
    const problem = v === "" ? "" : serverUrlProblem(v);
    if (problem) ctx.addIssue({ code: "custom", message: problem, input: undefined });
  }),
  timeout: positiveInt.default(60),
  compress: z.boolean().default(false),
}).prefault({});

const workerSchema = z.strictObject({
  check_interval: positiveInt.default(300),
  watch: z.boolean().default(true),
  poll_interval: positiveInt.default(10),
  batch_size: positiveInt.default(100),
  batch_max_bytes: integer(1, 16 * MIB, " (16 MiB)").default(2 * MIB),
  debounce_ms: nonNegativeInt.default(300),
  retry_base_ms: positiveInt.default(1000),
  retry_max_ms: positiveInt.default(60_000),
  probe_interval: positiveInt.default(30),
  shutdown_timeout: positiveInt.default(10),
  max_line_bytes: integer(
    1,
    16 * MIB,
    " (16 MiB): a longer line would not fit the worker's memory budget",
  ).default(16 * MIB),
  max_decompressed_bytes: positiveInt.default(1024 * MIB),
  max_document_bytes: positiveInt.default(1024 * MIB),
  max_export_member_bytes: positiveInt.default(4096 * MIB),
  export_settle_seconds: nonNegativeInt.default(5),
  chunk_bytes: positiveInt.default(1024 * 1024),
}).prefault({});

/**
 * The whole configuration file, every key with its default.
 *
 * @example Defaults of an empty file
 * ```ts
 * import { ConfigSchema } from "./config.ts";
 * ConfigSchema.parse({}).worker.batch_size === 100;
 * ```
 */
export const ConfigSchema = z.strictObject({
  server: serverSchema,
  worker: workerSchema,
  security: z.strictObject({ worker_token: z.string().default("") }).prefault({}),
  status: z.strictObject({
    port: nonNegativeInt.default(0),
    token: z.string().default(""),
  }).prefault({}),
  log: z.strictObject({
    level: z.enum(LOG_LEVELS).default("info"),
    format: z.enum(["auto", "json", "text"]).default("auto"),
    file: z.string().default(""),
  }).prefault({}),
  // Each source's section, from its spec.
  ...Object.fromEntries(SOURCES.map((s) => [s.name, s.config.prefault({})])),
});
/** A validated configuration: the common sections, and one section per source. */
export type Config = z.infer<typeof ConfigSchema> & Record<string, unknown>;

/**
 * A source's section of a configuration (validated by its spec's schema when the config was).
 *
 * @example The Claude Code section's defaults
 * ```ts
 * import { ConfigSchema, sourceSection } from "./config.ts";
 * import { sourceSpec } from "../workers/registry.ts";
 * sourceSection(ConfigSchema.parse({}), sourceSpec("claude_code")).projects_dir === "";
 * ```
 */
export function sourceSection(config: Config, spec: SourceSpec): Record<string, unknown> {
  const section = config[spec.name];
  return typeof section === "object" && section !== null ? section as Record<string, unknown> : {};
}

/**
 * A configuration that cannot be used; its message names the file, the key and what was
 * expected, one problem per line.
 *
 * @example Catch a config error
 * ```ts
 * import { ConfigError, parseConfig } from "./config.ts";
 * try { parseConfig("worker: {batch_size: abc}", "config.yaml"); } catch (e) {
 *   if (e instanceof ConfigError) console.log(e.message);
 * }
 * ```
 */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Environment overrides for secrets and the server address. */
export interface ConfigEnv {
  /** Overrides `security.worker_token`. */
  SYNC_WORKER_TOKEN?: string;
  /** Overrides `server.base_url`. */
  SYNC_SERVER_URL?: string;
}

/**
 * Parses and validates YAML text; `label` names the file in errors. Environment overrides are
 * applied before validation, and a server without a token is refused.
 *
 * @example Parse a config
 * ```ts
 * import { parseConfig } from "./config.ts";
 * const config = parseConfig("worker:\n  batch_size: 10\n", "config.yaml");
 * console.log(config.worker.batch_size);
 * ```
 */
export function parseConfig(text: string, label: string, env: ConfigEnv = {}): Config {
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    const err = doc.errors[0];
    const where = err.linePos?.[0] ? `:${err.linePos[0].line}:${err.linePos[0].col}` : "";
    throw new ConfigError(`${label}${where}: invalid YAML: ${err.message.split("\n")[0]}`);
  }
  let raw: unknown;
  try {
    // Aliases are expanded here, and a file that expands them into millions is refused.
    raw = doc.toJS() ?? {};
  } catch (error) {
    throw new ConfigError(`${label}: invalid YAML: ${(error as Error).message}`);
  }
  if (typeof raw !== "object" || Array.isArray(raw)) {
    throw new ConfigError(`${label}: expected a mapping of sections (server, worker, ...)`);
  }
  const result = ConfigSchema.safeParse(raw, { reportInput: true });
  if (!result.success) throw new ConfigError(formatIssues(result.error.issues, label));
  const config = result.data;
  if (env.SYNC_SERVER_URL) {
    const problem = serverUrlProblem(env.SYNC_SERVER_URL);
    if (problem) throw new ConfigError(`SYNC_SERVER_URL: ${problem}`);
    config.server.base_url = env.SYNC_SERVER_URL;
  }
  if (env.SYNC_WORKER_TOKEN) config.security.worker_token = env.SYNC_WORKER_TOKEN;
  if (config.server.base_url && !config.security.worker_token) {
    throw new ConfigError(
      `${label}: security.worker_token: required when server.base_url is set ` +
        `(or set SYNC_WORKER_TOKEN)`,
    );
  }
  return config;
}

/**
 * Reads and validates a config file; without one, the defaults (zero-config). A file that is
 * named must exist: a typo in `--config` must not quietly run on the defaults.
 *
 * @example The defaults, and a named file that is missing
 * ```ts
 * import { ConfigError, loadConfig } from "./config.ts";
 * console.log((await loadConfig(undefined)).server.base_url === "");
 * const error = await loadConfig("/nonexistent/config.yaml").catch((e) => e);
 * console.log(error instanceof ConfigError); // true
 * ```
 */
export async function loadConfig(path: string | undefined, env: ConfigEnv = {}): Promise<Config> {
  if (!path) return parseConfig("", "(defaults)", env);
  let text: string;
  try {
    // A regular file of at most 1 MiB: a FIFO or a device given as the config does not hang.
    text = await new ReadScope([path]).readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new ConfigError(`${path}: no such file (a config file that is named must exist)`);
    }
    if (error instanceof ConfinementError) throw new ConfigError(error.message);
    throw new ConfigError(`${path}: cannot read: ${(error as Error).message}`);
  }
  return parseConfig(text, path, env);
}
