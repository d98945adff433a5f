/**
 * `deno task start`: help and version, one status port per worker, summaries labelled by
 * source in a stable order, and a service for all sources.
 */
import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { sessionLines } from "../bench/corpus.ts";
import { delay, eventually, freePort, REPO } from "./helpers.ts";
import { isTransientDeno } from "../common/cli/service.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** A home with Claude Code, Codex and Gemini CLI history, as the tools keep it. */
async function home(): Promise<string> {
  const dir = await Deno.makeTempDir();
  const fixtures = `${REPO}/tests/fixtures`;
  await Deno.mkdir(`${dir}/.claude/projects/-p`, { recursive: true });
  const id = "05a40000-0000-4000-8000-000000000001";
  await Deno.writeTextFile(
    `${dir}/.claude/projects/-p/${id}.jsonl`,
    sessionLines({ sessionId: id, turns: 2, seed: 5 }).join("\n") + "\n",
  );
  await Deno.mkdir(`${dir}/.codex/sessions`, { recursive: true });
  const rollout = "rollout-2026-11-20T10-00-00-019a0000-0000-7000-8000-000000000171.jsonl";
  await Deno.copyFile(`${fixtures}/codex/${rollout}`, `${dir}/.codex/sessions/${rollout}`);
  await Deno.mkdir(`${dir}/.gemini/tmp/proj/chats`, { recursive: true });
  const chat = "session-2026-11-22T15-00-5e551011.jsonl";
  await Deno.copyFile(`${fixtures}/gemini_cli/${chat}`, `${dir}/.gemini/tmp/proj/chats/${chat}`);
  return dir;
}

function start(args: string[], homeDir: string) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO}/workers/start.ts`, ...args],
    env: {
      HOME: homeDir,
      XDG_CONFIG_HOME: `${homeDir}/.config`,
      XDG_STATE_HOME: `${homeDir}/.local/state`,
      DENO_DIR: Deno.env.get("DENO_DIR") ?? `${Deno.env.get("HOME")}/.cache/deno`,
    },
    stdout: "piped",
    stderr: "piped",
  });
}

/** `start` running in `homeDir`, its stderr gathered; `stop` sends SIGTERM and gives the code. */
function spawnStart(args: string[], homeDir: string) {
  const child = start(args, homeDir).spawn();
  let err = "";
  const pump = child.stderr.pipeTo(
    new WritableStream({ write: (c) => void (err += new TextDecoder().decode(c)) }),
  );
  child.stdout.pipeTo(new WritableStream()).catch(() => {});
  return {
    stderr: () => err,
    async stop(): Promise<number> {
      child.kill("SIGTERM");
      const { code } = await child.status;
      await pump.catch(() => {});
      return code;
    },
  };
}

/** A config in `homeDir` that looks for folders not there every second. */
async function pollEverySecond(homeDir: string): Promise<void> {
  await Deno.mkdir(`${homeDir}/.config/ai-sync`, { recursive: true });
  await Deno.writeTextFile(
    `${homeDir}/.config/ai-sync/config.yaml`,
    "worker:\n  poll_interval: 1\n",
  );
}

async function run(args: string[], homeDir: string) {
  const out = await start(args, homeDir).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test({
  name: "start: --help, -h and --version; flags are checked once",
  ...opts,
  fn: async () => {
    const dir = await home();
    for (const flag of ["--help", "-h"]) {
      const out = await run([flag], dir);
      assertEquals(out.code, 0, out.stderr);
      assertStringIncludes(out.stdout, "usage: deno task start");
      assertStringIncludes(out.stdout, `claude_code  found     ${dir}/.claude/projects`);
      assertStringIncludes(out.stdout, "--sessions-dir");
      assertStringIncludes(out.stdout, "claude_code on N, codex on N+1, gemini_cli on N+2");
    }
    const version = await run(["--version"], dir);
    assertEquals(version.code, 0);
    assert(/^ai-sync \d+\.\d+\.\d+/.test(version.stdout), version.stdout);
    const bad = await run(["--log-level", "loud", "--once"], dir);
    assertEquals(bad.code, 2);
    assertEquals(bad.stderr.split("--log-level: expected").length - 1, 1, "said once");
    const missing = await run(["--config", `${dir}/nope.yaml`, "--once"], dir);
    assertEquals(missing.code, 2);
    assertStringIncludes(missing.stderr, `${dir}/nope.yaml: no such file`);
  },
});

Deno.test({
  name: "start: --once piped prints one JSON line per source, labelled, in a stable order",
  ...opts,
  fn: async () => {
    const dir = await home();
    const out = await run(["--once"], dir);
    assertEquals(out.code, 0, out.stderr);
    const lines = out.stdout.trim().split("\n").map((l) => JSON.parse(l));
    assertEquals(lines.map((l) => l.source), ["claude_code", "codex", "gemini_cli"]);
    for (const line of lines) {
      assert(line.messages > 0, `${line.source} delivered messages`);
      assertStringIncludes(line.target, `${dir}/.local/state/ai-sync/conversations.db`);
    }
    // The export sources' drop folders do not exist: the user is told how to make one.
    assertStringIncludes(
      out.stderr,
      `no drop folder for ChatGPT exports, skipped: to sync them, mkdir -p ${dir}/ai-sync-exports/chatgpt, put the export there and start again (or --openai-dir DIR)`,
    );
  },
});

Deno.test({
  name:
    "start: Claude Code sessions in ~/.config/claude/projects are found, alone or beside ~/.claude/projects",
  ...opts,
  fn: async (t) => {
    const dir = await Deno.makeTempDir();
    const session = async (folder: string, id: string, seed: number) => {
      const lines = sessionLines({ sessionId: id, turns: 2, seed });
      await Deno.mkdir(`${dir}/${folder}/-p`, { recursive: true });
      await Deno.writeTextFile(`${dir}/${folder}/-p/${id}.jsonl`, lines.join("\n") + "\n");
      return lines.length - 1; // one ai-title line per session
    };
    const claudeCode = (stdout: string) =>
      stdout.trim().split("\n").map((l) => JSON.parse(l)).find((l) => l.source === "claude_code");
    await t.step("only the XDG folder (as Claude Code 1.0.29 on wrote it)", async () => {
      const messages = await session(
        ".config/claude/projects",
        "05b00000-0000-4000-8000-000000000001",
        1,
      );
      const out = await run(["--once"], dir);
      assertEquals(out.code, 0, out.stderr);
      assertStringIncludes(
        out.stderr,
        `starting claude-code-sync-worker on ${dir}/.config/claude/projects`,
      );
      assertEquals(claudeCode(out.stdout)?.messages, messages);
    });
    await t.step("both folders: the new one's sessions are added", async () => {
      const messages = await session(".claude/projects", "05b00000-0000-4000-8000-000000000002", 2);
      const out = await run(["--once"], dir);
      assertEquals(out.code, 0, out.stderr);
      assertStringIncludes(
        out.stderr,
        `on ${dir}/.claude/projects and ${dir}/.config/claude/projects`,
      );
      assertEquals(claudeCode(out.stdout)?.messages, messages, "only the new session");
      const db = new DatabaseSync(`${dir}/.local/state/ai-sync/conversations.db`, {
        readOnly: true,
      });
      try {
        assertEquals(db.prepare("SELECT count(*) AS n FROM conversations").get()?.n, 2);
      } finally {
        db.close();
      }
    });
    await t.step("a folder given on the command line is the only one read", async () => {
      const out = await run(["--once", "--projects-dir", `${dir}/.claude/projects`], dir);
      assertEquals(out.code, 0, out.stderr);
      assertStringIncludes(
        out.stderr,
        `starting claude-code-sync-worker on ${dir}/.claude/projects\n`,
      );
    });
  },
});

Deno.test({
  name: "start: resync makes every source's next run send everything again",
  ...opts,
  fn: async () => {
    const dir = await home();
    const sent = (stdout: string) =>
      Object.fromEntries(
        stdout.trim().split("\n").map((l) => JSON.parse(l)).map((l) => [l.source, l.messages]),
      );
    const first = await run(["--once"], dir);
    assertEquals(first.code, 0, first.stderr);
    const again = await run(["--once"], dir);
    assertEquals(sent(again.stdout), { claude_code: 0, codex: 0, gemini_cli: 0 });
    const resync = await run(["resync"], dir);
    assertEquals(resync.code, 0, resync.stderr);
    assertStringIncludes(resync.stdout, "codex: its next run reads the whole history again");
    assertStringIncludes(resync.stdout, "openai: nothing delivered yet");
    const after = await run(["--once"], dir);
    assertEquals(sent(after.stdout), sent(first.stdout));
  },
});

Deno.test({
  name: "start: each worker gets its own status port",
  ...opts,
  fn: async () => {
    const dir = await home();
    // Claude Code, Codex and Gemini CLI take the base port and the two after it.
    const base = freePort(3);
    const running = spawnStart(["--status-port", String(base)], dir);
    try {
      const state = `${dir}/.local/state/ai-sync`;
      for (const [i, worker] of ["claude_code", "codex", "gemini_cli"].entries()) {
        const status = await eventually(
          async () => {
            const token = (await Deno.readTextFile(`${state}/${worker}.status-token`)).trim();
            const response = await fetch(`http://127.0.0.1:${base + i}/status`, {
              headers: { authorization: `Bearer ${token}` },
            });
            return response.ok ? await response.json() : undefined;
          },
          20_000,
          `${worker}'s status on ${base + i}`,
        );
        assertEquals(status.worker, worker);
      }
      assert(!running.stderr().includes("in use"), running.stderr());
      // `start status` asks each of them, under its name, or as one object by source.
      const text = await run(["status", "--status-port", String(base)], dir);
      assertEquals(text.code, 0, text.stderr);
      for (const worker of ["claude_code", "codex", "gemini_cli"]) {
        assertStringIncludes(text.stdout, `${worker} (`);
        assertStringIncludes(text.stdout, `${worker} 0.`);
      }
      assertStringIncludes(text.stdout, "openai: not found in");
      const json = await run(["status", "--status-port", String(base), "--json"], dir);
      const answers = JSON.parse(json.stdout);
      assertEquals(Object.keys(answers), ["claude_code", "codex", "gemini_cli"]);
      assertEquals(answers.codex.worker, "codex");
      assertEquals(answers.codex.running, true);
      // Without the port, each says what its state database holds, beside the running worker.
      const stored = await run(["status", "--json"], dir);
      assertEquals(stored.code, 0, stored.stderr);
      const held = JSON.parse(stored.stdout);
      assertEquals(held.codex.running, true);
      assertStringIncludes(held.codex.held_by, "pid ");
      assert(held.codex.total_synced > 0, stored.stdout);
      assertEquals(held.codex.files, 1);
    } finally {
      await running.stop();
    }
    // Not running: asked on its port, each says why, and the run fails; from its state, it
    // says it is not running, and what it delivered.
    const stopped = await run(["status", "--status-port", String(base)], dir);
    assertEquals(stopped.code, 1);
    assertStringIncludes(stopped.stdout, "claude_code (");
    const portless = await run(["status"], dir);
    assertEquals(portless.code, 0, portless.stderr);
    assertStringIncludes(portless.stdout, "codex: not running");
    assertStringIncludes(portless.stdout, "messages in all");
    assertStringIncludes(portless.stdout, "--status-port N");
    await delay(0);
  },
});

Deno.test({
  name: "start: doctor checks each source found, as its worker runs",
  ...opts,
  fn: async () => {
    const dir = await home();
    const ok = await run(["doctor"], dir);
    assertEquals(ok.code, 0, ok.stdout + ok.stderr);
    for (const worker of ["claude_code", "codex", "gemini_cli"]) {
      assertStringIncludes(ok.stdout, `${worker} (`);
    }
    assertEquals(ok.stdout.split("all checks passed").length - 1, 3);
    assertStringIncludes(ok.stdout, "claude: not found in");
    // A state directory the workers cannot write fails the check of each, naming it.
    const state = `${dir}/state`;
    await Deno.writeTextFile(state, "a file, not a folder");
    const bad = await run(["doctor", "--state-dir", state], dir);
    assertEquals(bad.code, 1, bad.stdout);
    assertStringIncludes(bad.stdout, state);
    const unknown = await run(["stats"], dir);
    assertEquals(unknown.code, 2);
    assertStringIncludes(unknown.stderr, 'unknown command "stats": expected status, doctor,');
    assert(!unknown.stderr.includes("could not be read"), unknown.stderr);
  },
});

Deno.test({
  name: "start: a source that appears while it runs is started then",
  ...opts,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const id = "05c00000-0000-4000-8000-000000000001";
    await Deno.mkdir(`${dir}/.claude/projects/-p`, { recursive: true });
    await Deno.writeTextFile(
      `${dir}/.claude/projects/-p/${id}.jsonl`,
      sessionLines({ sessionId: id, turns: 1 }).join("\n") + "\n",
    );
    await pollEverySecond(dir);
    const running = spawnStart([], dir);
    try {
      await eventually(
        () => running.stderr().includes("starting claude-code-sync-worker"),
        20_000,
        "claude",
      );
      assertStringIncludes(running.stderr(), "not found, skipped: Codex rollouts");
      assertStringIncludes(
        running.stderr(),
        "put the export there and it is picked up (or --openai-dir DIR)",
      );
      // Codex is used for the first time: its sessions folder appears.
      const rollout = "rollout-2026-11-20T10-00-00-019a0000-0000-7000-8000-000000000171.jsonl";
      await Deno.mkdir(`${dir}/.codex/sessions`, { recursive: true });
      await Deno.copyFile(
        `${REPO}/tests/fixtures/codex/${rollout}`,
        `${dir}/.codex/sessions/${rollout}`,
      );
      await eventually(
        () => running.stderr().includes("starting codex-sync-worker"),
        10_000,
        "codex started",
      );
      const db = `${dir}/.local/state/ai-sync/conversations.db`;
      await eventually(
        () => {
          const store = new DatabaseSync(db, { readOnly: true });
          try {
            const row = store.prepare(
              "SELECT count(*) AS n FROM conversations WHERE source_type = 'codex'",
            ).get();
            return row?.n === 1;
          } finally {
            store.close();
          }
        },
        20_000,
        "the rollout delivered",
      );
    } finally {
      assertEquals(await running.stop(), 0, running.stderr());
    }
  },
});

Deno.test({
  name: "start: on a machine with no history yet, --once ends and watching waits for the first",
  ...opts,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    await pollEverySecond(dir);
    const once = await run(["--once"], dir);
    assertEquals(once.code, 0, once.stderr);
    assertStringIncludes(once.stderr, "no AI conversation history found");
    const running = spawnStart([], dir);
    try {
      await eventually(
        () => running.stderr().includes("waiting for one to appear"),
        20_000,
        "waiting",
      );
      const id = "05d00000-0000-4000-8000-000000000001";
      await Deno.mkdir(`${dir}/.claude/projects/-p`, { recursive: true });
      await Deno.writeTextFile(
        `${dir}/.claude/projects/-p/${id}.jsonl`,
        sessionLines({ sessionId: id, turns: 1 }).join("\n") + "\n",
      );
      await eventually(
        () => running.stderr().includes("backfill done: 1 conversations"),
        20_000,
        "claude",
      );
    } finally {
      assertEquals(await running.stop(), 0, running.stderr());
    }
  },
});

Deno.test({
  name: "start: one service for every source; none from the npx cache",
  ...opts,
  fn: async () => {
    const dir = await home();
    const out = await run(["install-service", "--print", "--state-dir", `${dir}/st`], dir);
    assertEquals(out.code, 0, out.stderr);
    assertStringIncludes(out.stdout, `${REPO}/workers/start.ts --state-dir ${dir}/st`);
    assertStringIncludes(out.stdout, "Restart=on-failure");
    assert(isTransientDeno("/home/me/.npm/_npx/9f2e/node_modules/deno/deno"));
    assert(!isTransientDeno("/usr/lib/node_modules/deno/deno"));
    assert(!isTransientDeno("/home/me/.deno/bin/deno"));
  },
});
