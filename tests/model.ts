/**
 * A model-based test of the file reader (after Vector's file-watcher experiment): random
 * sequences of what can happen to session files (appends, partial lines, truncation, a rewrite
 * of the same size, a file renamed over another, deletion and re-creation, a symlink swapped in,
 * compression), of syncs by full check and by the watcher's path, of restarts and of SIGKILLs
 * of a worker process, checked after every sync against a model of what the server must hold:
 *
 * - every line that was complete in a file at a sync is on the server;
 * - the server holds nothing that was never a complete line inside the root, nothing from
 *   outside it, and each line exactly once.
 *
 * The Codex source is used, since it has all three file kinds' worth of transitions (lines
 * appended, compressed copies, files moved); each written line carries a unique marker text.
 * A sequence is fixed by its seed: a failure names the seed and the steps, to replay.
 *
 * @module
 */
import { zstdCompressSync } from "node:zlib";
import { dirname } from "node:path";
import { codexSource } from "../workers/codex/source.ts";
import { type FaultServer, startFaultServer } from "./fault_server.ts";
import { type Rig, rig } from "./rig.ts";
import type { CodexCarry, CodexHint } from "../parsers/codex.ts";
import { delay, spawnWorker, workerConfig } from "./helpers.ts";
import { rng } from "../bench/corpus.ts";

/** How one sequence runs. */
export interface ModelOptions {
  seed: number;
  /** Operations in the sequence. */
  steps: number;
  /** Whether SIGKILLs of a worker process are among them (a second or so each). */
  kills: boolean;
}

/** A model violation: the message names the seed and the steps that led to it. */
export class ModelViolation extends Error {
  override name = "ModelViolation";
}

interface FileModel {
  name: string;
  thread: string;
  /** Complete lines (the session_meta first), as written. */
  lines: string[];
  /** Bytes of an unfinished last line, and the line it will be. */
  partial?: { written: string; line: string };
  compressed: boolean;
  link: boolean;
}

const META_TIME = "2026-11-20T10:00:00.000Z";

function metaLine(thread: string): string {
  return JSON.stringify({ timestamp: META_TIME, type: "session_meta", payload: { id: thread } });
}

function promptLine(text: string): string {
  return JSON.stringify({
    timestamp: "2026-11-20T10:00:01.000Z",
    type: "response_item",
    payload: { type: "message", role: "user", content: [{ type: "input_text", text }] },
  });
}

/** Runs one sequence; throws {@link ModelViolation} when the server departs from the model. */
export async function runModelSequence(opts: ModelOptions): Promise<{ steps: string[] }> {
  const random = rng(opts.seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)];
  const dir = await Deno.makeTempDir({ prefix: `model-${opts.seed}-` });
  const root = `${dir}/sessions`;
  const outside = `${dir}/outside`;
  const stateDir = `${dir}/state`;
  await Promise.all([root, outside, stateDir].map((d) => Deno.mkdir(d)));
  const fs: FaultServer = startFaultServer();
  const trace: string[] = [];
  let counter = 0;
  /** Marker texts of one width, so a rewrite with as many lines keeps the size. */
  const marker = () =>
    `M${opts.seed.toString(36).padStart(7, "0")}-${(counter++).toString().padStart(7, "0")}`;
  const uuid = () => {
    const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16)).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${
      hex.slice(20, 32)
    }`;
  };
  const everComplete = new Set<string>();
  const mustHave = new Set<string>();
  const outsideTexts = new Set<string>();
  const files: FileModel[] = [];
  let touched = new Set<string>();
  const settings = { chunkBytes: 300, batchSize: 3, batchMaxBytes: 4000 };
  let worker: Rig<CodexCarry, CodexHint> = rig(
    fs,
    codexSource,
    root,
    `${stateDir}/codex.state.db`,
    {
      settings,
    },
  );

  const pathOf = (f: FileModel) => `${root}/${f.name}${f.compressed ? ".zst" : ""}`;
  const textOf = (line: string) => /"text":"([^"]+)"/.exec(line)?.[1];
  const complete = (lines: string[]) => {
    for (const line of lines) {
      const text = textOf(line);
      if (text) everComplete.add(text);
    }
  };
  const write = async (f: FileModel) => {
    const body = f.lines.map((l) => l + "\n").join("") + (f.partial?.written ?? "");
    await Deno.writeTextFile(pathOf(f), body);
    touched.add(pathOf(f));
  };
  const freshContent = (f: FileModel, count: number) => {
    f.thread = uuid();
    f.lines = [metaLine(f.thread), ...Array.from({ length: count }, () => promptLine(marker()))];
    f.partial = undefined;
    complete(f.lines);
  };
  const writable = () => files.filter((f) => !f.compressed && !f.link);

  // Outside the root: a rollout the worker must never read.
  const outsideLines = [metaLine(uuid()), ...Array.from({ length: 3 }, () => promptLine(marker()))];
  for (const line of outsideLines) {
    const text = textOf(line);
    if (text) outsideTexts.add(text);
  }
  await Deno.writeTextFile(`${outside}/rollout.jsonl`, outsideLines.join("\n") + "\n");

  const verify = (what: string) => {
    for (const f of files) {
      if (f.link) continue;
      for (const line of f.lines) {
        const text = textOf(line);
        if (text) mustHave.add(text);
      }
    }
    const counts = new Map<string, number>();
    for (const c of fs.store.listConversations("", 1, 1000).items) {
      for (const m of fs.store.listMessages(c.uuid, 1, 1000)!.items) {
        counts.set(m.content_text, (counts.get(m.content_text) ?? 0) + 1);
      }
    }
    const problems: string[] = [];
    for (const text of mustHave) if (!counts.has(text)) problems.push(`missing ${text}`);
    for (const [text, n] of counts) {
      if (n !== 1) problems.push(`${text} stored ${n} times`);
      if (outsideTexts.has(text)) problems.push(`${text} came from outside the root`);
      else if (!everComplete.has(text)) problems.push(`${text} was never a complete line`);
    }
    if (problems.length > 0) {
      throw new ModelViolation(
        `seed ${opts.seed}, after ${what}: ${problems.slice(0, 5).join("; ")}\nsteps:\n  ${
          trace.join("\n  ")
        }`,
      );
    }
  };

  const sync = async (how: "check" | "changes") => {
    if (random() < 0.2) fs.faults.push(pick([{ status: 503 }, { reset: true }, { status: 500 }]));
    if (how === "check") await worker.worker.check();
    else await worker.worker.checkChanges(new Set(touched));
    touched = new Set();
    verify(how);
  };

  try {
    for (let step = 0; step < opts.steps; step++) {
      const roll = random();
      const targets = writable();
      let op: string;
      if (roll < 0.2 || targets.length === 0) {
        const f: FileModel = {
          name: `rollout-2026-11-20T10-00-00-${uuid()}.jsonl`,
          thread: "",
          lines: [],
          compressed: false,
          link: false,
        };
        freshContent(f, 1 + Math.floor(random() * 4));
        files.push(f);
        await write(f);
        op = `create ${f.name} (${f.lines.length} lines)`;
      } else if (roll < 0.35) {
        const f = pick(targets);
        if (f.partial) f.lines.push(f.partial.line), complete([f.partial.line]);
        f.partial = undefined;
        const more = Array.from(
          { length: 1 + Math.floor(random() * 5) },
          () => promptLine(marker()),
        );
        f.lines.push(...more);
        complete(more);
        await write(f);
        op = `append ${more.length} to ${f.name}`;
      } else if (roll < 0.42) {
        const f = pick(targets);
        if (!f.partial) {
          const line = promptLine(marker());
          f.partial = { line, written: line.slice(0, 10 + Math.floor(random() * 40)) };
          op = `partial line in ${f.name}`;
        } else {
          f.lines.push(f.partial.line);
          complete([f.partial.line]);
          f.partial = undefined;
          op = `finish the partial line of ${f.name}`;
        }
        await write(f);
      } else if (roll < 0.48) {
        const f = pick(targets);
        freshContent(f, 1 + Math.floor(random() * 3));
        await write(f);
        op = `truncate and rewrite ${f.name}`;
      } else if (roll < 0.54) {
        const f = pick(targets);
        if (f.partial) {
          f.lines.push(f.partial.line), complete([f.partial.line]), f.partial = undefined;
        }
        freshContent(f, f.lines.length - 1);
        const file = await Deno.open(pathOf(f), { write: true });
        await file.write(new TextEncoder().encode(f.lines.map((l) => l + "\n").join("")));
        file.close();
        touched.add(pathOf(f));
        op = `overwrite ${f.name} in place, same size`;
      } else if (roll < 0.6) {
        const f = pick(targets);
        freshContent(f, 1 + Math.floor(random() * 3));
        const staging = `${root}/.staging-${counter}`;
        await Deno.writeTextFile(staging, f.lines.map((l) => l + "\n").join(""));
        await Deno.rename(staging, pathOf(f));
        touched.add(staging).add(pathOf(f));
        op = `rename a new file over ${f.name}`;
      } else if (roll < 0.65) {
        const f = pick(files);
        await Deno.remove(pathOf(f));
        touched.add(pathOf(f));
        files.splice(files.indexOf(f), 1);
        op = `delete ${f.name}${f.compressed ? ".zst" : ""}`;
      } else if (roll < 0.69) {
        const f = pick(targets);
        const staging = `${root}/.link-${counter}`;
        await Deno.symlink(`${outside}/rollout.jsonl`, staging);
        await Deno.rename(staging, pathOf(f));
        touched.add(staging).add(pathOf(f));
        f.link = true;
        op = `swap a link to outside in for ${f.name}`;
      } else if (roll < 0.74) {
        const f = pick(targets);
        if (f.partial) {
          f.lines.push(f.partial.line), complete([f.partial.line]), f.partial = undefined;
        }
        const plain = pathOf(f);
        await Deno.writeTextFile(plain, f.lines.map((l) => l + "\n").join(""));
        await Deno.writeFile(`${plain}.zst`, zstdCompressSync(await Deno.readFile(plain)));
        await Deno.remove(plain);
        f.compressed = true;
        touched.add(plain).add(`${plain}.zst`);
        op = `compress ${f.name}`;
      } else if (roll < 0.84) {
        op = "sync: full check";
        trace.push(op);
        await sync("check");
        continue;
      } else if (roll < 0.93) {
        op = "sync: the watcher's path";
        trace.push(op);
        await sync("changes");
        continue;
      } else if (roll < 0.97 || !opts.kills) {
        worker.state.close();
        worker = rig(fs, codexSource, root, `${stateDir}/codex.state.db`, { settings });
        op = "restart";
      } else {
        worker.state.close();
        const killAfter = Math.floor(random() * 600);
        await killWorker(fs, root, stateDir, killAfter);
        worker = rig(fs, codexSource, root, `${stateDir}/codex.state.db`, { settings });
        op = `SIGKILL a worker process after ${killAfter} ms`;
      }
      trace.push(op);
    }
    trace.push("sync: full check (final)");
    await sync("check");
    return { steps: trace };
  } finally {
    worker.state.close();
    await fs.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Starts a worker process on the same state and kills it with SIGKILL. */
async function killWorker(
  fs: FaultServer,
  root: string,
  stateDir: string,
  afterMs: number,
): Promise<void> {
  const config = `${dirname(stateDir)}/config.yaml`;
  await Deno.writeTextFile(config, workerConfig(fs, { checkInterval: 3600 }));
  const process = spawnWorker(
    ["--config", config, "--state-dir", stateDir, "--sessions-dir", root],
    {},
    "codex",
  );
  await process.waitFor("syncing", 15_000);
  await delay(afterMs);
  process.child.kill("SIGKILL");
  await process.exit();
}
