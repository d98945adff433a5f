/**
 * `sync-server`: the reference sync server.
 *
 * ```
 * deno task serve                       # the embedded store, read-only, on 127.0.0.1
 * deno task serve --port 8080 --db ./data/conversations.db --token T
 * ```
 *
 * The token may come from `SYNC_SERVER_TOKEN` instead of `--token`. With `--port 0` a free port
 * is chosen; the first line on stdout says where it listens.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { dirname } from "node:path";
import { ConversationStore } from "../store/store.ts";
import { SearchIndex } from "../store/search.ts";
import { defaultStateDir } from "../common/cli/context.ts";
import { isLoopbackHost } from "../common/loopback.ts";
import { createHandler, DEFAULT_MAX_BODY_BYTES } from "./server.ts";
import { serveFront } from "./front.ts";

const USAGE = `usage: sync-server [--port N] [--hostname H] [--db FILE] [--token T]
                   [--max-body-bytes N] [--header-timeout S] [--wrapped]
  --port            port to listen on (default 8080; 0 picks a free one)
  --hostname        address to bind (default 127.0.0.1)
  --db              SQLite file to serve and receive batches into (its folder must exist).
                    Without it: the workers' embedded store, read-only (a viewer beside running
                    workers), on 127.0.0.1 only; no token needed unless one is given
  --token           bearer token clients must send (or SYNC_SERVER_TOKEN)
  --max-body-bytes  largest request body, after gzip decoding (default ${DEFAULT_MAX_BODY_BYTES})
  --header-timeout  seconds a connection may take to send its request headers (default 10)
  --wrapped         answer batches as {"code":0,"message":"ok","data":{...}}`;

function isDirectory(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function fail(message: string): never {
  console.error(`sync-server: ${message}\n${USAGE}`);
  Deno.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string", default: "8080" },
      hostname: { type: "string", default: "127.0.0.1" },
      db: { type: "string" },
      token: { type: "string" },
      "max-body-bytes": { type: "string", default: String(DEFAULT_MAX_BODY_BYTES) },
      "header-timeout": { type: "string", default: "10" },
      wrapped: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  }));
} catch (error) {
  fail((error as Error).message);
}
if (values.help) {
  console.log(USAGE);
  Deno.exit(0);
}
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  fail(`--port: expected 0-65535, got "${values.port}"`);
}
const maxBodyBytes = Number(values["max-body-bytes"]);
if (!Number.isInteger(maxBodyBytes) || maxBodyBytes < 1) {
  fail("--max-body-bytes: expected a positive integer");
}
const headerTimeout = Number(values["header-timeout"]);
if (!(headerTimeout > 0)) fail("--header-timeout: expected a positive number of seconds");
const token = values.token ?? Deno.env.get("SYNC_SERVER_TOKEN") ?? "";
/** Without --db: the embedded store of the workers, opened read-only. */
const viewer = values.db === undefined;
const db = values.db ?? `${defaultStateDir()}/conversations.db`;
if (viewer) {
  if (!exists(db)) {
    fail(
      `no embedded store at ${db} yet: run the workers first (deno task start), or pass --db`,
    );
  }
  if (!isLoopbackHost(values.hostname) && !token) {
    fail("--hostname: serving beyond this machine needs --token");
  }
} else {
  if (!token) fail("--token (or SYNC_SERVER_TOKEN) is required");
  if (db !== ":memory:") {
    if (!isDirectory(dirname(db))) {
      fail(`--db: the folder ${dirname(db)} does not exist (a typo?); create it first`);
    }
    if (!exists(db)) console.log(`creating a new, empty database at ${db}`);
  }
}
const store = new ConversationStore(db, { readOnly: viewer });
const search = db === ":memory:" ? undefined : new SearchIndex(db);
let front;
try {
  front = await serveFront(
    {
      hostname: values.hostname,
      port,
      headerTimeoutMs: headerTimeout * 1000,
      onListen: ({ hostname, port }) =>
        console.log(
          `listening on http://${hostname}:${port} (db ${db}${viewer ? ", read-only" : ""})`,
        ),
    },
    createHandler({
      store,
      token,
      maxBodyBytes,
      wrapped: values.wrapped,
      search,
      readOnly: viewer,
    }),
  );
} catch (error) {
  store.close();
  if (error instanceof Deno.errors.AddrInUse) {
    console.error(
      `sync-server: ${values.hostname}:${port} is already in use (another server?); ` +
        `choose another with --port, or --port 0 for a free one`,
    );
    Deno.exit(1);
  }
  throw error;
}
const server = front;
const stop = async () => {
  await server.shutdown();
  search?.close();
  store.close();
  Deno.exit(0);
};
Deno.addSignalListener("SIGINT", stop);
Deno.addSignalListener("SIGTERM", stop);
