/**
 * Tokens and passwords appear at no exit: a worker is run against a server that echoes the
 * `Authorization` header in every error answer, through retries, a pause, a refusal set aside,
 * status, doctor, dead-letters and config errors; then every output, log file and state file of
 * those runs is searched for the secrets used.
 */
import { assert, assertEquals } from "./assert.ts";
import { sessionLines } from "../bench/corpus.ts";
import { startFaultServer } from "./fault_server.ts";
import { delay, eventually, freePort, runWorker, scratch, spawnWorker } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

function randomSecret(prefix: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The forms a secret could leak in. */
function forms(secret: string): string[] {
  return [secret, encodeURIComponent(secret), btoa(secret)];
}

/** Every file under `dir`, except the status token file whose job is to hold that token. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...await filesUnder(path));
    else if (entry.isFile && !entry.name.endsWith(".status-token")) out.push(path);
  }
  return out;
}

Deno.test({
  name: "secrets: no token or password in any log, status, state database or error",
  ...opts,
  fn: async () => {
    const token = randomSecret("wtok-");
    const statusToken = randomSecret("stok-");
    const password = randomSecret("pw-");
    const fs = startFaultServer({ token });
    fs.echoAuthorization = true;
    const outputs: Record<string, string> = {};
    try {
      const s = await scratch(fs, {
        extra: "",
        checkInterval: 3600,
      });
      const logFile = `${s.dir}/worker.log`;
      await Deno.writeTextFile(
        s.cfg,
        (await Deno.readTextFile(s.cfg)) +
          `log:\n  file: ${logFile}\nstatus:\n  port: ${freePort()}\n  token: ${statusToken}\n`,
      );
      const refused = "5ec7e700-0000-4000-8000-000000000001";
      await Deno.mkdir(`${s.data}/-p`);
      for (const id of [refused, "5ec7e700-0000-4000-8000-000000000002"]) {
        const lines = sessionLines({ sessionId: id, turns: 2, seed: 6 });
        await Deno.writeTextFile(`${s.data}/-p/${id}.jsonl`, lines.join("\n") + "\n");
      }
      fs.rejectConversation = refused;
      // A retry, then a pause on 401, each answer echoing the token.
      fs.faults.push({ status: 500 }, { status: 401 });
      const worker = spawnWorker(s.base);
      await delay(200);
      outputs["status while paused"] =
        (await runWorker(["status", "--config", s.cfg, "--state-dir", s.state])).stdout;
      await eventually(
        async () => (await Deno.readTextFile(logFile)).includes("kept in the dead-letter table"),
        20_000,
        "the refused conversation set aside",
      );
      await delay(300);
      for (
        const args of [["status"], ["status", "--json"], ["dead-letters"], [
          "dead-letters",
          "show",
          "1",
        ], ["doctor", ...s.base.slice(-2)]]
      ) {
        const out = await runWorker([...args, "--config", s.cfg, "--state-dir", s.state]);
        outputs[args.join(" ")] = out.stdout + out.stderr;
      }
      const port = /port: (\d+)/.exec(await Deno.readTextFile(s.cfg))![1];
      outputs["/status"] = await (await fetch(`http://127.0.0.1:${port}/status`, {
        headers: { authorization: `Bearer ${statusToken}` },
      })).text();
      outputs["/metrics"] = await (await fetch(`http://127.0.0.1:${port}/metrics`, {
        headers: { authorization: `Bearer ${statusToken}` },
      })).text();
      outputs["worker stderr"] = worker.stderr();
      await worker.stop();
      // A wrong token: doctor and a run both report the refusal.
      const wrong = await scratch(fs, { token: randomSecret("wrong-") });
      outputs["doctor with a wrong token"] = (await runWorker(["doctor", ...wrong.base])).stdout;
      // Config errors that involve secrets.
      const bad = `${s.dir}/bad.yaml`;
      await Deno.writeTextFile(
        bad,
        `security:\n  worker_token: ${password.length}${"7".repeat(20)}\n`,
      );
      outputs["numeric token"] = (await runWorker(["--config", bad, "--once"])).stderr;
      await Deno.writeTextFile(
        bad,
        `server:\n  base_url: https://user:${password}@example.test\nsecurity:\n  worker_token: x\n`,
      );
      outputs["credentials in base_url"] = (await runWorker(["--config", bad, "--once"])).stderr;
      outputs["credentials in SYNC_SERVER_URL"] = (await runWorker(["--once", ...s.base], {
        SYNC_SERVER_URL: `http://user:${password}@127.0.0.1:1`,
      })).stderr;
      outputs["log file"] = await Deno.readTextFile(logFile);
      for (const path of await filesUnder(s.state)) {
        outputs[path] = new TextDecoder("latin1").decode(await Deno.readFile(path));
      }
    } finally {
      await fs.close();
    }
    assert(
      Object.values(outputs).some((text) => text.includes("[redacted]")),
      "the echoed token was seen, and masked",
    );
    const leaks: string[] = [];
    for (const [where, text] of Object.entries(outputs)) {
      for (const secret of [token, statusToken, password]) {
        for (const form of forms(secret)) if (text.includes(form)) leaks.push(`${where}: ${form}`);
      }
    }
    assertEquals(leaks, [], "secrets found");
  },
});
