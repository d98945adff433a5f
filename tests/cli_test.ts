/**
 * What a new user meets on a worker's command line: exit codes that say what happened, a `--once`
 * that always ends, a named config that must exist, a dry run that leaves nothing behind, a
 * summary that reads well on a terminal, and messages that name the cause and the fix.
 */
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { sessionLines, writeCorpus } from "../bench/corpus.ts";
import {
  freePort,
  REPO,
  runWorker,
  scratch,
  serverUuids,
  spawnWorker,
  startServer,
  workerArgs,
} from "./helpers.ts";
import { StateStore } from "../common/state/state.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

async function withSession(data: string, id = "0c1c0000-0000-4000-8000-000000000001") {
  await Deno.mkdir(`${data}/-p`, { recursive: true });
  const lines = sessionLines({ sessionId: id, turns: 3, seed: 4 });
  await Deno.writeTextFile(`${data}/-p/${id}.jsonl`, lines.join("\n") + "\n");
  return { id, messages: lines.length - 1 };
}

Deno.test({
  name: "cli: --once ends in bounded time in every state, with the reason and the fix",
  ...opts,
  fn: async (t) => {
    const server = await startServer();
    try {
      await t.step("a wrong token (401) fails at once; checkpoints untouched", async () => {
        const s = await scratch(server, { token: "wrong-token-value" });
        await withSession(s.data);
        const started = performance.now();
        const out = await runWorker([...s.base, "--once"]);
        const seconds = (performance.now() - started) / 1000;
        assertEquals(out.code, 1);
        assert(seconds < 15, `--once took ${seconds.toFixed(1)} s`);
        assertStringIncludes(out.stderr, "delivery paused (checkpoints untouched, nothing lost)");
        assertStringIncludes(out.stderr, "HTTP 401");
        assertStringIncludes(out.stderr, "fix: set security.worker_token");
        const state = new StateStore(`${s.state}/claude_code.state.db`);
        assertEquals(state.listUnits().filter((u) => u.offset > 0), []);
        state.close();
        assertEquals(serverUuids(server).length, 0);
      });
      await t.step("a server that is not there: the cause and the URL", async () => {
        const s = await scratch(null);
        const port = freePort();
        await Deno.writeTextFile(
          s.cfg,
          `server:\n  base_url: http://127.0.0.1:${port}\n  timeout: 2\nsecurity:\n  worker_token: t\n` +
            "worker:\n  retry_base_ms: 10\n  retry_max_ms: 20\n",
        );
        await withSession(s.data);
        const out = await runWorker([...s.base, "--once"]);
        assertEquals(out.code, 1);
        assertStringIncludes(
          out.stderr,
          `cannot reach http://127.0.0.1:${port}/internal/v1/sync/batch`,
        );
        assertStringIncludes(out.stderr, "connection refused");
      });
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "cli: exit codes: 0 with malformed lines, 2 for a config named but missing",
  ...opts,
  fn: async (t) => {
    await t.step("malformed lines are named on stderr and exit 0", async () => {
      const s = await scratch(null);
      const { id } = await withSession(s.data);
      await Deno.writeTextFile(`${s.data}/-p/${id}.jsonl`, "{not json\n", { append: true });
      const out = await runWorker([...s.base, "--once"]);
      assertEquals(out.code, 0, out.stderr);
      assertStringIncludes(out.stderr, `${id}.jsonl:`);
      assertStringIncludes(out.stderr, "invalid JSON");
      const summary = JSON.parse(out.stdout);
      assertEquals([summary.source, summary.errors], ["claude_code", 0]);
      assert(summary.skipped >= 1);
    });
    await t.step("a --config that does not exist is an error, not the defaults", async () => {
      const s = await scratch(null);
      for (const command of [[], ["doctor"], ["status"]]) {
        const out = await runWorker([...command, "--config", `${s.dir}/nope.yaml`, "--once"]);
        assertEquals(out.code, 2, `${command.join(" ")}: ${out.stderr}`);
        assertStringIncludes(out.stderr, `${s.dir}/nope.yaml: no such file`);
      }
    });
    await t.step("--help says what the exit codes mean", async () => {
      const out = await runWorker(["--help"]);
      assertEquals(out.code, 0);
      assertStringIncludes(out.stdout, "malformed or over-long lines are skipped");
      assertStringIncludes(out.stdout, "with --once\n     a pause is a failure");
    });
  },
});

Deno.test({
  name: "cli: a dry run records nothing and leaves nothing behind",
  ...opts,
  fn: async () => {
    const s = await scratch(null);
    await withSession(s.data);
    const out = await runWorker([...s.base, "--dry-run"]);
    assertEquals(out.code, 0, out.stderr);
    assertStringIncludes(out.stdout, '"source_type":"claude_code"');
    let exists = true;
    try {
      await Deno.stat(s.state);
    } catch {
      exists = false;
    }
    assertEquals(exists, false, "no state directory, no state database");
    // After a real run, a dry run shows what is new and still writes nothing.
    assertEquals((await runWorker([...s.base, "--once"])).code, 0);
    const before = (await Deno.stat(`${s.state}/claude_code.state.db`)).mtime?.getTime();
    const again = await runWorker([...s.base, "--dry-run"]);
    assertEquals(again.stdout.trim(), "", "nothing new to send");
    assertEquals((await Deno.stat(`${s.state}/claude_code.state.db`)).mtime?.getTime(), before);
  },
});

Deno.test({
  name: "cli: --once on a terminal shows progress and a summary table; piped, one JSON line",
  ignore: !hasScript(),
  ...opts,
  fn: async () => {
    const s = await scratch(null);
    await writeCorpus(s.data, 20e6, { turnsPerSession: 40, seed: 2 });
    const command = [Deno.execPath(), ...workerArgs([...s.base, "--once"])].map(shellQuote)
      .join(" ");
    const tty = await new Deno.Command("script", {
      args: ["-qfec", command, "/dev/null"],
      env: { COLUMNS: "120" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(tty.stdout);
    assertEquals(tty.code, 0, text);
    assertStringIncludes(text, "claude_code  [#", "a progress bar while it works");
    assert(
      /source\s+conversations\s+messages\s+tokens\s+skipped\s+errors/.test(text),
      `a summary table:\n${text}`,
    );
    assert(/claude_code\s+35\s+9,800\s/.test(text), "one row: 35 conversations, 9,800 messages");
    assertStringIncludes(text, "delivered to embedded store");
  },
});

Deno.test({
  name: "cli: a worker started without its permission flags says which ones",
  ...opts,
  fn: async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", `${REPO}/workers/claude_code/main.ts`, "--once"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assertEquals(out.code, 2);
    assertStringIncludes(stderr, "missing permission");
    assertStringIncludes(stderr, "--allow-env=");
    assert(!stderr.includes("usage:"), "not a usage error with the whole usage");
  },
});

Deno.test({
  name: "cli: doctor says plainly when there is no config file and what the engine may do",
  ...opts,
  fn: async () => {
    const s = await scratch(null);
    await withSession(s.data);
    const out = await runWorker(["doctor", "--state-dir", s.state, "--projects-dir", s.data], {
      HOME: s.dir,
      XDG_CONFIG_HOME: `${s.dir}/config`,
    });
    assertEquals(out.code, 0, out.stdout);
    assertStringIncludes(
      out.stdout,
      "config: no config file; the defaults and the environment apply",
    );
    assertStringIncludes(out.stdout, "connect to nothing");
    assert(!out.stdout.includes("false"), out.stdout);
  },
});

Deno.test({
  name: "cli: stopping says it finishes a batch only when one is in flight",
  ...opts,
  fn: async () => {
    const server = await startServer();
    try {
      const s = await scratch(server);
      await withSession(s.data);
      const worker = spawnWorker(s.base);
      await worker.waitFor("backfill done");
      assertEquals(await worker.stop(), 0);
      assertStringIncludes(worker.stderr(), '"stopping"');
      assert(!worker.stderr().includes("finishing the in-flight batch"));
    } finally {
      await server.stop();
    }
  },
});

function hasScript(): boolean {
  try {
    return new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    console.log("skipping the terminal test: `script` (util-linux) is not installed");
    return false;
  }
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", "'\\''")}'`;
}
