/**
 * Whole-process figures of the Claude Code worker, run as its binary runs (the permission
 * table's flags), read from `/proc` (Linux):
 *
 * 1. peak RSS (VmHWM) during a cold `--once` backfill of generated corpora;
 * 2. incremental: with 5,000 sessions backfilled and the worker watching, the delay from
 *    appending one line to its acknowledgement, and the bytes the worker read for it;
 * 3. idle: CPU seconds the watching worker uses over an idle period.
 *
 * ```
 * deno task bench:system [--mb 200,1000] [--shape realistic|large] [--as hand|service]
 *                         [--sessions 5000] [--idle 60]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { CORPUS_SHAPES, sessionLines, writeCorpus } from "./corpus.ts";
import { PROCESS_ENV } from "../common/permissions.ts";
import { derivedUuid } from "../common/hash.ts";
import { delay, peakRss, procCpuSeconds, procStatusBytes, workerArgs } from "../tests/helpers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    mb: { type: "string", default: "200" },
    sessions: { type: "string", default: "5000" },
    idle: { type: "string", default: "60" },
    shape: { type: "string", default: "realistic" },
    // `service`: with the environment `start` and the services give a worker (PROCESS_ENV).
    as: { type: "string", default: "hand" },
  },
});

if (!(values.shape in CORPUS_SHAPES) || !["hand", "service"].includes(values.as)) {
  console.error(
    `--shape: expected one of ${Object.keys(CORPUS_SHAPES).join(", ")}; --as: hand or service`,
  );
  Deno.exit(2);
}

function spawn(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: workerArgs(args),
    env: values.as === "service" ? { ...PROCESS_ENV } : {},
    stdout: "null",
    stderr: "piped",
  }).spawn();
}

async function backfillPeak(mb: number): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ai-sync-rss-" });
  const corpus = await writeCorpus(`${dir}/projects`, mb * 1e6, {
    turnsPerSession: CORPUS_SHAPES[values.shape],
    seed: 5,
  });
  const t0 = performance.now();
  const child = spawn([
    "--projects-dir",
    `${dir}/projects`,
    "--state-dir",
    `${dir}/state`,
    "--once",
  ]);
  child.stderr.pipeTo(new WritableStream()).catch(() => {});
  const peak = await peakRss(child);
  const status = await child.status;
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    `| ${(corpus.bytes / 1e6).toFixed(0)} MB, ${corpus.files.length} sessions | ${
      (peak / 1e6).toFixed(0)
    } MB | ` +
      `${seconds.toFixed(1)} s | ${
        (corpus.bytes / 1e6 / seconds).toFixed(1)
      } MB/s | exit ${status.code} |`,
  );
  await Deno.remove(dir, { recursive: true });
}

async function status(port: number, token: string): Promise<Record<string, number>> {
  const headers = { authorization: `Bearer ${token}` };
  return await (await fetch(`http://127.0.0.1:${port}/status`, { headers })).json();
}

async function incrementalAndIdle(sessions: number, idleSeconds: number): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ai-sync-incr-" });
  const files: string[] = [];
  for (let i = 0; i < sessions; i++) {
    const project = `${dir}/projects/-home-dev-p${i % 50}`;
    if (i < 50) await Deno.mkdir(project, { recursive: true });
    const id = derivedUuid("incremental", i);
    const path = `${project}/${id}.jsonl`;
    await Deno.writeTextFile(
      path,
      sessionLines({ sessionId: id, turns: 2, seed: i + 1 }).join("\n") + "\n",
    );
    files.push(path);
  }
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = spawn([
    "--projects-dir",
    `${dir}/projects`,
    "--state-dir",
    `${dir}/state`,
    "--status-port",
    String(port),
  ]);
  let err = "";
  const decoder = new TextDecoder();
  child.stderr.pipeTo(new WritableStream({ write: (c) => void (err += decoder.decode(c)) })).catch(
    () => {},
  );
  const t0 = performance.now();
  while (!err.includes("backfill done")) await delay(50);
  console.log(
    `backfill of ${sessions} sessions: ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  await delay(1000);
  const token = (await Deno.readTextFile(`${dir}/state/claude_code.status-token`)).trim();
  const latencies: number[] = [];
  const reads: number[] = [];
  for (let i = 0; i < 5; i++) {
    const before = await status(port, token);
    const path = files[(i * 997) % files.length];
    const id = path.split("/").pop()!.replace(".jsonl", "");
    const line = JSON.stringify({
      type: "user",
      uuid: derivedUuid("appended", i),
      parentUuid: null,
      sessionId: id,
      timestamp: new Date().toISOString(),
      message: { role: "user", content: `appended line ${i}` },
    }) + "\n";
    const start = performance.now();
    await Deno.writeTextFile(path, line, { append: true });
    let after = before;
    while (after.synced_since_start === before.synced_since_start) {
      await delay(10);
      after = await status(port, token);
      if (performance.now() - start > 10_000) throw new Error("no delivery within 10 s");
    }
    latencies.push(performance.now() - start);
    reads.push(after.bytes_read - before.bytes_read);
    console.log(
      `append ${i + 1}: delivered in ${Math.round(latencies.at(-1)!)} ms, read ${
        reads.at(-1)
      } bytes (line ${line.length} bytes)`,
    );
    await delay(500);
  }
  latencies.sort((a, b) => a - b);
  console.log(
    `incremental: median ${Math.round(latencies[2])} ms, max ${
      Math.round(latencies[4])
    } ms after backfilling ${sessions} sessions`,
  );
  const cpu0 = procCpuSeconds(child.pid);
  await delay(idleSeconds * 1000);
  const cpu1 = procCpuSeconds(child.pid);
  console.log(
    `idle: ${
      (cpu1 - cpu0).toFixed(2)
    } CPU seconds over ${idleSeconds} s watching ${sessions} sessions; RSS ${
      (procStatusBytes(child.pid, "VmRSS") / 1e6).toFixed(0)
    } MB`,
  );
  child.kill("SIGTERM");
  await child.status;
  await Deno.remove(dir, { recursive: true });
}

console.log("| corpus | peak RSS | backfill time | throughput | result |\n|---|---|---|---|---|");
for (const mb of values.mb.split(",").map(Number)) await backfillPeak(mb);
await incrementalAndIdle(Number(values.sessions), Number(values.idle));
