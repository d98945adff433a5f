/**
 * Test helpers that start real processes: the reference server and workers, with the flags of
 * the permission table and `Deno.execPath()`.
 *
 * @module
 */
import { DatabaseSync } from "node:sqlite";
import { denoRunArgs } from "../common/permissions.ts";
import { sourceSpec } from "../workers/registry.ts";
import { StateStore, type UnitState } from "../common/state/state.ts";
import type { Conversation, Message } from "../common/types.ts";

/** The repository root. */
export const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
/** Where the optional public fixtures live. */
export const SHARED_FIXTURES = `${REPO}/../shared/fixtures`;

/** Whether `../shared/fixtures/<name>` exists; says so when it does not. */
export function sharedFixturesPresent(name: string): boolean {
  try {
    Deno.statSync(`${SHARED_FIXTURES}/${name}`);
    return true;
  } catch {
    console.log(
      `skipping: ${SHARED_FIXTURES}/${name} is not present (the public fixtures are optional)`,
    );
    return false;
  }
}

/** A running reference server. */
export interface ServerProcess {
  url: string;
  port: number;
  token: string;
  db: string;
  child: Deno.ChildProcess;
  stop(): Promise<void>;
  get(path: string): Promise<unknown>;
}

async function readLine(
  stream: ReadableStream<Uint8Array>,
  match: RegExp,
): Promise<{ line: string; rest: ReadableStream<Uint8Array> }> {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`stream ended before ${match}: ${text}`);
    text += decoder.decode(value);
    const line = text.split("\n").find((l) => match.test(l));
    if (line) {
      reader.releaseLock();
      return { line, rest: stream };
    }
  }
}

/** Starts `server/main.ts` on a free port with a fresh database. */
export async function startServer(
  opts: { token?: string; db?: string; args?: string[] } = {},
): Promise<ServerProcess> {
  const token = opts.token ?? "test-token";
  const db = opts.db ?? `${await Deno.makeTempDir()}/server.db`;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-net",
      "--allow-env=SYNC_SERVER_TOKEN",
      `${REPO}/server/main.ts`,
      "--port",
      "0",
      "--db",
      db,
      "--token",
      token,
      ...(opts.args ?? []),
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const { line, rest } = await readLine(child.stdout, /listening on/);
  rest.pipeTo(new WritableStream()).catch(() => {});
  const url = line.match(/http:\/\/[^ ]+/)![0];
  const port = Number(new URL(url).port);
  return {
    url,
    port,
    token,
    db,
    child,
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // Already gone.
      }
      await child.status;
    },
    async get(path: string) {
      const response = await fetch(`${url}${path}`, {
        headers: { authorization: `Bearer ${token}` },
      });
      if (!response.ok) {
        throw new Error(`GET ${path}: HTTP ${response.status} ${await response.text()}`);
      }
      return await response.json();
    },
  };
}

/** The argv that starts a worker (Claude Code by default) as its binary would run. */
export function workerArgs(args: string[], worker = "claude_code"): string[] {
  return [...denoRunArgs(sourceSpec(worker), REPO), ...args];
}

/** Output of a finished worker process. */
export interface WorkerResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a worker (Claude Code by default) to completion. */
export async function runWorker(
  args: string[],
  env: Record<string, string> = {},
  worker = "claude_code",
): Promise<WorkerResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: workerArgs(args, worker),
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** A worker process left running, with its stderr collected. */
export interface RunningWorker {
  child: Deno.ChildProcess;
  /** stderr so far. */
  stderr(): string;
  /** Resolves when stderr contains `pattern`, or rejects after `timeoutMs`. */
  waitFor(pattern: RegExp | string, timeoutMs?: number): Promise<void>;
  /** Waits for exit and returns the code. */
  exit(): Promise<number>;
  /** Sends SIGTERM and waits for the exit code. */
  stop(): Promise<number>;
}

/** Starts a worker (Claude Code by default) and keeps it running. */
export function spawnWorker(
  args: string[],
  env: Record<string, string> = {},
  worker = "claude_code",
): RunningWorker {
  const child = new Deno.Command(Deno.execPath(), {
    args: workerArgs(args, worker),
    env,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let err = "";
  const decoder = new TextDecoder();
  const pump = child.stderr.pipeTo(
    new WritableStream({ write: (c) => void (err += decoder.decode(c)) }),
  );
  child.stdout.pipeTo(new WritableStream()).catch(() => {});
  return {
    child,
    stderr: () => err,
    async waitFor(pattern, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      const test = (s: string) =>
        typeof pattern === "string" ? s.includes(pattern) : pattern.test(s);
      while (!test(err)) {
        if (Date.now() > deadline) {
          throw new Error(`timed out waiting for ${pattern}; stderr:\n${err}`);
        }
        await delay(50);
      }
    },
    async exit() {
      const status = await child.status;
      await pump.catch(() => {});
      return status.code;
    },
    stop() {
      try {
        child.kill("SIGTERM");
      } catch {
        // Exited already.
      }
      return this.exit();
    },
  };
}

/** Resolves after `ms`. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `fn` until it returns a truthy value, or fails after `timeoutMs`. */
export async function eventually<T>(
  fn: () => Promise<T> | T,
  timeoutMs = 20_000,
  what = "condition",
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (error) {
      last = error;
    }
    await delay(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

/** Uuids of every message in the server's database. */
export function serverUuids(server: ServerProcess): string[] {
  const db = new DatabaseSync(server.db, { readOnly: true });
  try {
    return (db.prepare("SELECT uuid FROM messages").all() as { uuid: string }[]).map((r) => r.uuid);
  } finally {
    db.close();
  }
}

/** How {@link assertKillSafe} runs and checks a worker. */
export interface KillTest {
  server: ServerProcess;
  /** The worker's arguments (config, state dir, source dir). */
  args: string[];
  worker: string;
  /** The worker's state database. */
  statePath: string;
  /** When to SIGKILL each run, after the engine started. */
  killAfterMs: number[];
  /** The message uuids of a file's first `offset` bytes. */
  uuidsUpTo(path: string, offset: number): string[];
  /** Every message uuid of the corpus. */
  expected: Set<string>;
}

/**
 * SIGKILLs a worker at several points of a backfill; after each kill, no stored checkpoint may
 * be ahead of what the server holds; a final `--once` must leave every message there exactly
 * once.
 */
export async function assertKillSafe(k: KillTest): Promise<void> {
  for (const killAfter of k.killAfterMs) {
    const worker = spawnWorker(k.args, {}, k.worker);
    await worker.waitFor("syncing", 10_000);
    await delay(killAfter);
    worker.child.kill("SIGKILL");
    await worker.exit();
    const onServer = new Set(serverUuids(k.server));
    const state = new StateStore(k.statePath);
    try {
      for (const unit of state.listUnits()) {
        for (const uuid of k.uuidsUpTo(unit.path, unit.offset)) {
          if (!onServer.has(uuid)) {
            throw new Error(
              `checkpoint of ${unit.path} at ${unit.offset} is ahead of the server (${uuid})`,
            );
          }
        }
      }
    } finally {
      state.close();
    }
  }
  const finish = await runWorker([...k.args, "--once"], {}, k.worker);
  if (finish.code !== 0) throw new Error(`--once exited ${finish.code}: ${finish.stderr}`);
  const uuids = serverUuids(k.server);
  if (uuids.length !== k.expected.size || uuids.some((u) => !k.expected.has(u))) {
    throw new Error(
      `the server holds ${uuids.length} messages, expected each of ${k.expected.size} exactly once`,
    );
  }
}

/** Options of {@link scratch}. */
export interface ScratchOptions {
  /** The source directory flag (`projects-dir` by default). */
  flag?: string;
  /** More lines for the config's `worker:` section. */
  extra?: string;
  /** The token to configure instead of the server's. */
  token?: string;
  /** `worker.check_interval` in seconds (2 by default). */
  checkInterval?: number;
}

/** A config file's text with test timings, delivering to `server` (or the embedded store). */
export function workerConfig(
  server: { url: string; token: string } | null,
  opts: ScratchOptions = {},
): string {
  const serverPart = server
    ? `server:\n  base_url: ${server.url}\n  timeout: 5\nsecurity:\n  worker_token: ${
      opts.token ?? server.token
    }\n`
    : "";
  return `${serverPart}worker:\n  debounce_ms: 100\n  check_interval: ${
    opts.checkInterval ?? 2
  }\n  retry_base_ms: 50\n  retry_max_ms: 500\n  probe_interval: 1\n${opts.extra ?? ""}`;
}

/** A fresh directory with an empty data folder, a config file and the worker arguments for them. */
export async function scratch(
  server: { url: string; token: string } | null,
  opts: ScratchOptions = {},
) {
  const dir = await Deno.makeTempDir();
  const data = `${dir}/data`;
  await Deno.mkdir(data);
  const cfg = `${dir}/config.yaml`;
  await Deno.writeTextFile(cfg, workerConfig(server, opts));
  return {
    dir,
    data,
    cfg,
    state: `${dir}/state`,
    base: [
      "--config",
      cfg,
      "--state-dir",
      `${dir}/state`,
      `--${opts.flag ?? "projects-dir"}`,
      data,
    ],
  };
}

/** A field of `/proc/<pid>/status` in bytes (`VmHWM`, `VmRSS`); 0 when absent. */
export function procStatusBytes(pid: number, field: string): number {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = text.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  return match ? Number(match[1]) * 1024 : 0;
}

/** CPU seconds a process has used so far, all its threads (utime + stime of `/proc/<pid>/stat`). */
export function procCpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // clock ticks, USER_HZ = 100
}

/**
 * The peak resident size (VmHWM) and the CPU seconds of a running process, polled every 50 ms
 * until it exits (the CPU time as last read, within 50 ms of the exit): the whole process, both
 * threads and native buffers.
 */
export async function processUsage(
  child: Deno.ChildProcess,
): Promise<{ peak: number; cpu: number }> {
  let peak = 0;
  let cpu = 0;
  let finished = false;
  child.status.then(() => finished = true);
  while (!finished) {
    try {
      peak = Math.max(peak, procStatusBytes(child.pid, "VmHWM"));
      cpu = procCpuSeconds(child.pid);
    } catch {
      break; // Exited between the check and the read.
    }
    await delay(50);
  }
  return { peak, cpu };
}

/** The peak resident size (VmHWM) of a running process: see {@link processUsage}. */
export async function peakRss(child: Deno.ChildProcess): Promise<number> {
  return (await processUsage(child)).peak;
}

/** The median of `xs` (the upper one of an even count). */
export function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[xs.length >> 1];
}

/** A port that was free a moment ago on 127.0.0.1, with the `consecutive - 1` ports after it. */
export function freePort(consecutive = 1): number {
  while (true) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    // The ports after it must be free too (a base port of several workers): another try if not.
    const next: Deno.Listener[] = [];
    try {
      for (let i = 1; i < consecutive; i++) {
        next.push(Deno.listen({ hostname: "127.0.0.1", port: port + i }));
      }
      return port;
    } catch {
      // One of them is taken.
    } finally {
      listener.close();
      for (const l of next) l.close();
    }
  }
}

/**
 * A test against a fresh reference server, stopped when it ends (sanitizers off: workers run as
 * processes).
 */
export function serverTest(
  name: string,
  fn: (server: ServerProcess, t: Deno.TestContext) => Promise<void>,
): void {
  Deno.test({
    name,
    sanitizeOps: false,
    sanitizeResources: false,
    fn: async (t) => {
      const server = await startServer();
      try {
        await fn(server, t);
      } finally {
        await server.stop();
      }
    },
  });
}

/** The time of the messages and conversations below. */
export const TEST_TIME = "2025-01-01T00:00:00Z";

/** A user message with this content and text (a text block of `text` by default). */
export function textMessage(
  uuid: string,
  text: string,
  content: Record<string, unknown> = { type: "text", text },
): Message {
  return {
    uuid,
    parent_uuid: "",
    round_index: 1,
    role: "user",
    content_type: "text",
    content,
    content_text: text,
    created_at: TEST_TIME,
  };
}

/** Conversation `c1` holding `messages`. */
export function conversationOf(messages: Message[]): Conversation {
  return {
    uuid: "c1",
    title: "t",
    created_at: TEST_TIME,
    updated_at: TEST_TIME,
    metadata: {},
    messages,
  };
}

/**
 * An array nested `depth` levels deep (built without recursion).
 *
 * @example Three levels
 * ```ts
 * import { nested } from "./helpers.ts";
 * console.log(JSON.stringify(nested(3))); // [[[]]]
 * ```
 */
export function nested(depth: number): unknown[] {
  let value: unknown[] = [];
  for (let level = 1; level < depth; level++) value = [value];
  return value;
}

/** The state of an appended file at `path`, read up to `offset` (`line` lines), inode `ino`. */
export function appendedUnit(path: string, offset = 0, line = 0, ino = 2): UnitState {
  return {
    key: path,
    path,
    kind: "appended",
    dev: 1,
    ino,
    headLen: 0,
    headHash: "",
    offset,
    line,
    tailHash: "",
    carry: "",
    status: "active",
  };
}

/**
 * Writes `content` as a file last changed `ageMs` ago: settled, as an export is once its
 * download ended (read without waiting for `worker.export_settle_seconds`).
 */
export async function dropSettled(
  path: string,
  content: string | Uint8Array,
  ageMs = 60_000,
): Promise<void> {
  if (typeof content === "string") await Deno.writeTextFile(path, content);
  else await Deno.writeFile(path, content);
  const past = new Date(Date.now() - ageMs);
  await Deno.utime(path, past, past);
}
