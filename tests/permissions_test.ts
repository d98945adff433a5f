import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import {
  compileArgs,
  enginePermissions,
  mainPermissionFlags,
  netHost,
  PROCESS_ENV,
} from "../common/permissions.ts";
import { sourceSpec } from "../workers/registry.ts";
import { engineLaunch } from "../common/cli/launch.ts";
import { parseCli } from "../common/cli/context.ts";
import { parseConfig } from "../common/config.ts";
import { sessionLines } from "../bench/corpus.ts";
import { delay, REPO, runWorker, spawnWorker, startServer } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const spec = sourceSpec("claude_code");

Deno.test("permissions: one table drives run, compile and the engine", async (t) => {
  await t.step("the main thread gets no subprocess, no FFI, only named variables", () => {
    const flags = mainPermissionFlags(spec);
    assert(flags.includes("--deny-run") && flags.includes("--deny-ffi"));
    const env = flags.find((f) => f.startsWith("--allow-env="))!;
    assertStringIncludes(env, "CLAUDE_CONFIG_DIR");
    assert(
      !flags.includes("--allow-env") && !flags.includes("-A") && !flags.includes("--allow-all"),
    );
    assert(flags.includes("--unstable-worker-options"));
  });
  await t.step("the engine is confined to its paths and the API host", () => {
    const p = enginePermissions(spec, {
      dataDir: "/d",
      stateDir: "/s",
      configFile: "/c/config.yaml",
      baseUrl: "https://sync.example.com",
      statusPort: 9464,
    });
    assertEquals(p, {
      read: ["/d", "/s", "/c/config.yaml"],
      write: ["/s"],
      net: ["sync.example.com:443", "127.0.0.1:9464"],
      env: ["LOG_TOKENS", "LOG_STREAM"],
      sys: false,
      run: false,
      ffi: false,
      import: false,
    });
    assertEquals(enginePermissions(spec, { dataDir: "/d", stateDir: "/s" }).net, false);
  });
  await t.step("siblings of the data dir: Codex's archive, Gemini CLI's projects.json only", () => {
    const codex = enginePermissions(sourceSpec("codex"), {
      dataDir: "/h/.codex/sessions",
      stateDir: "/s",
    });
    assertEquals(codex.read, ["/h/.codex/sessions", "/h/.codex/archived_sessions", "/s"]);
    const gemini = enginePermissions(sourceSpec("gemini_cli"), {
      dataDir: "/h/.gemini/tmp",
      stateDir: "/s",
    });
    // Not ~/.gemini itself: it holds the CLI's OAuth credentials and settings.
    assertEquals(gemini.read, ["/h/.gemini/tmp", "/h/.gemini/projects.json", "/s"]);
    assertEquals(gemini.write, ["/s"]);
  });
  await t.step("each worker has its binary, source flag and default folder", () => {
    const env = (name: string) => ({ HOME: "/h", CODEX_HOME: undefined }[name]);
    assertEquals(
      ["claude_code", "codex", "gemini_cli"].map((name) => {
        const w = sourceSpec(name);
        return [w.binary, w.sourceFlag, w.defaultDataDir(env)];
      }),
      [
        ["claude-code-sync-worker", "projects-dir", "/h/.claude/projects"],
        ["codex-sync-worker", "sessions-dir", "/h/.codex/sessions"],
        ["gemini-cli-sync-worker", "data-dir", "/h/.gemini/tmp"],
      ],
    );
    assertEquals(
      sourceSpec("codex").defaultDataDir((n) => n === "CODEX_HOME" ? "/ch" : "/h"),
      "/ch/sessions",
    );
    assertStringIncludes(mainPermissionFlags(sourceSpec("codex")).join(" "), "CODEX_HOME");
    // Gemini CLI's own override of its home (its accounts switched by tools that set it).
    assertEquals(
      sourceSpec("gemini_cli").defaultDataDir((n) => n === "GEMINI_CLI_HOME" ? "/g" : "/h"),
      "/g/.gemini/tmp",
    );
    assertStringIncludes(
      mainPermissionFlags(sourceSpec("gemini_cli")).join(" "),
      "GEMINI_CLI_HOME",
    );
  });
  await t.step("net hosts name the port", () => {
    assertEquals(netHost("http://127.0.0.1:8080/x"), "127.0.0.1:8080");
    assertEquals(netHost("http://example.com"), "example.com:80");
  });
  await t.step("compile uses the same flags and embeds the engine", () => {
    const args = compileArgs(spec, "/repo", "/repo/bin");
    for (const flag of mainPermissionFlags(spec)) assert(args.includes(flag), flag);
    assertEquals(args.slice(-3), [
      "--output",
      "/repo/bin/claude-code-sync-worker",
      "/repo/workers/claude_code/main.ts",
    ]);
    assert(args.includes("/repo/workers/claude_code/engine.ts"));
  });
});

Deno.test({
  name:
    "permissions: the worker started on X reads only X, its config and state, and reaches only the API host",
  ...opts,
  fn: async (t) => {
    const server = await startServer();
    const dir = await Deno.makeTempDir();
    const projects = `${dir}/projects`;
    const outside = `${dir}/outside`;
    await Deno.mkdir(`${projects}/-p`, { recursive: true });
    await Deno.mkdir(`${outside}/-q`, { recursive: true });
    const inId = "20000000-0000-4000-8000-000000000001";
    const outId = "20000000-0000-4000-8000-000000000002";
    await Deno.writeTextFile(
      `${projects}/-p/${inId}.jsonl`,
      sessionLines({ sessionId: inId, turns: 1 }).join("\n") + "\n",
    );
    await Deno.writeTextFile(
      `${outside}/-q/${outId}.jsonl`,
      sessionLines({ sessionId: outId, turns: 1 }).join("\n") + "\n",
    );
    // Links that would lead the worker outside X: a file and a whole project folder.
    await Deno.symlink(`${outside}/-q/${outId}.jsonl`, `${projects}/-p/${outId}.jsonl`);
    await Deno.symlink(`${outside}/-q`, `${projects}/-linked`);
    const cfg = `${dir}/config.yaml`;
    const conf = (url: string) =>
      `server:\n  base_url: ${url}\nsecurity:\n  worker_token: ${server.token}\nworker:\n  debounce_ms: 100\n`;
    await Deno.writeTextFile(cfg, conf(server.url));
    const base = ["--config", cfg, "--state-dir", `${dir}/state`, "--projects-dir", projects];
    try {
      await t.step("the engine verifies its own confinement", async () => {
        const out = await runWorker([...base, "--once", "--log-level", "debug"]);
        assertEquals(out.code, 0, out.stderr);
        const line = out.stderr.split("\n").find((l) => l.includes("sandbox:"))!;
        const record = JSON.parse(line);
        assertEquals(
          record.msg,
          "sandbox: engine confined to its data, config and state paths and the API host",
        );
        assert(
          record.read_outside !== "granted" && record.net_other_host !== "granted" &&
            record.env !== "granted",
        );
      });
      await t.step(
        "links out of X are refused with a clear message, and nothing from outside is sent",
        async () => {
          const out = await runWorker([...base, "--once"]);
          assertStringIncludes(
            out.stderr,
            `${projects}/-p/${outId}.jsonl: skipped: it links to ${outside}/-q/${outId}.jsonl, outside ${projects}`,
          );
          assertStringIncludes(
            out.stderr,
            `${projects}/-linked: skipped: it links to ${outside}/-q, outside ${projects}`,
          );
          const list = await server.get("/api/v1/conversations") as { items: { uuid: string }[] };
          assertEquals(list.items.map((c) => c.uuid), [inId]);
        },
      );
      await t.step(
        "a new server host in the config needs a restart; the engine keeps its one host",
        async () => {
          const worker = spawnWorker(base);
          try {
            await worker.waitFor("backfill done");
            await Deno.writeTextFile(cfg, conf("http://127.0.0.2:1"));
            await worker.waitFor("server.base_url changed; restart the worker to apply it");
            const id = "20000000-0000-4000-8000-000000000003";
            await Deno.writeTextFile(
              `${projects}/-p/${id}.jsonl`,
              sessionLines({ sessionId: id, turns: 1 }).join("\n") + "\n",
            );
            let delivered = false;
            for (let i = 0; i < 100 && !delivered; i++) {
              const list = await server.get("/api/v1/conversations") as {
                items: { uuid: string }[];
              };
              delivered = list.items.some((c) => c.uuid === id);
              await delay(100);
            }
            assert(delivered, "still delivers to the host it started with");
          } finally {
            await worker.stop();
          }
        },
      );
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name:
    "permissions: a data folder and a config file reached through links (another disk, a dotfiles manager) are read",
  ...opts,
  fn: async (t) => {
    const server = await startServer();
    const dir = await Deno.makeTempDir();
    const disk = `${dir}/disk/projects`;
    const id = "20000000-0000-4000-8000-000000000011";
    await Deno.mkdir(`${disk}/-p`, { recursive: true });
    await Deno.writeTextFile(
      `${disk}/-p/${id}.jsonl`,
      sessionLines({ sessionId: id, turns: 1 }).join("\n") + "\n",
    );
    await Deno.mkdir(`${dir}/home`);
    await Deno.symlink(disk, `${dir}/home/projects`);
    await Deno.mkdir(`${dir}/dotfiles`);
    const conf = (debounce: number) =>
      `server:\n  base_url: ${server.url}\nsecurity:\n  worker_token: ${server.token}\n` +
      `worker:\n  debounce_ms: ${debounce}\n`;
    await Deno.writeTextFile(`${dir}/dotfiles/config.yaml`, conf(100));
    await Deno.symlink(`${dir}/dotfiles/config.yaml`, `${dir}/home/config.yaml`);
    const base = [
      "--config",
      `${dir}/home/config.yaml`,
      "--state-dir",
      `${dir}/state`,
      "--projects-dir",
      `${dir}/home/projects`,
    ];
    try {
      await t.step("the engine may read where the links lead", () => {
        const ctx = parseCli(spec, base);
        const { permissions } = engineLaunch(ctx, parseConfig("", "x"));
        const read = permissions.read as string[];
        for (const path of [`${dir}/home/projects`, disk, `${dir}/dotfiles/config.yaml`]) {
          assert(read.includes(path), `${path} in ${read.join(", ")}`);
        }
      });
      await t.step("the sessions behind the linked folder are delivered", async () => {
        const out = await runWorker([...base, "--once"]);
        assertEquals(out.code, 0, out.stderr);
        const list = await server.get("/api/v1/conversations") as { items: { uuid: string }[] };
        assertEquals(list.items.map((c) => c.uuid), [id]);
      });
      await t.step("an edit of the linked config file is applied", async () => {
        const worker = spawnWorker(base);
        try {
          await worker.waitFor("backfill done");
          await Deno.writeTextFile(`${dir}/dotfiles/config.yaml`, conf(150));
          await worker.waitFor(`configuration reloaded from ${dir}/home/config.yaml`);
          assert(!worker.stderr().includes("cannot read"), worker.stderr());
        } finally {
          await worker.stop();
        }
      });
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "permissions: install-service writes a unit with the table's flags",
  ...opts,
  fn: async () => {
    const home = await Deno.makeTempDir();
    const env = { HOME: home, XDG_CONFIG_HOME: `${home}/.config` };
    const printed = await runWorker([
      "install-service",
      "--print",
      "--projects-dir",
      "/data/p",
      "--state-dir",
      "/data/s",
    ], env);
    assertEquals(printed.code, 0, printed.stderr);
    assertStringIncludes(printed.stdout, "ExecStart=");
    for (const flag of mainPermissionFlags(spec)) assertStringIncludes(printed.stdout, flag);
    for (const [name, value] of Object.entries(PROCESS_ENV)) {
      assertStringIncludes(printed.stdout, `Environment=${name}=${value}\n`);
    }
    assertStringIncludes(
      printed.stdout,
      `${REPO}/workers/claude_code/main.ts run --state-dir /data/s --projects-dir /data/p`,
    );
    const written = await runWorker(["install-service", "--projects-dir", "/data/p"], env);
    assertEquals(written.code, 0, written.stderr);
    const unit = `${home}/.config/systemd/user/claude-code-sync-worker.service`;
    assertStringIncludes(await Deno.readTextFile(unit), "Restart=on-failure");
    assertStringIncludes(written.stdout, "systemctl --user daemon-reload");
    const removed = await runWorker(["uninstall-service"], env);
    assertEquals(removed.code, 0);
    assertEquals(await Deno.stat(unit).catch(() => null), null);
  },
});

Deno.test({
  name: "permissions: deno task compile builds a working binary (needs DENORT_BIN)",
  ignore: !Deno.env.get("DENORT_BIN"),
  ...opts,
  fn: async () => {
    const out = await Deno.makeTempDir();
    const result = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${REPO}/workers/compile.ts`, "--out", out],
    }).output();
    assertEquals(result.code, 0, new TextDecoder().decode(result.stderr));
    const version = await new Deno.Command(`${out}/claude-code-sync-worker`, {
      args: ["--version"],
    }).output();
    assertStringIncludes(new TextDecoder().decode(version.stdout), "claude-code-sync-worker");
    const projects = await Deno.makeTempDir();
    const once = await new Deno.Command(`${out}/claude-code-sync-worker`, {
      args: [
        "--projects-dir",
        projects,
        "--state-dir",
        `${out}/state`,
        "--once",
        "--log-level",
        "debug",
      ],
    }).output();
    assertEquals(once.code, 0, new TextDecoder().decode(once.stderr));
    assertStringIncludes(new TextDecoder().decode(once.stderr), "sandbox: engine confined");
  },
});

if (!Deno.env.get("DENORT_BIN")) {
  console.log(
    "skipping the compile smoke test: set DENORT_BIN to a denort binary of Deno 2.9.6 to run it",
  );
}

Deno.test("permissions: the openai engine reaches its IMAP and download hosts only when email is on", () => {
  const spec = sourceSpec("openai");
  const ctx = parseCli(spec, ["--data-dir", "/d", "--state-dir", "/s"]);
  const off = engineLaunch(ctx, parseConfig("", "c")).permissions;
  assertEquals(off.net, false);
  const on = engineLaunch(
    ctx,
    parseConfig(
      "openai:\n  email:\n    enabled: true\n    host: imap.example.com\n" +
        "    download_hosts: [chatgpt.com]\n    redirect_hosts: [click.example.com]\n",
      "c",
    ),
  );
  assertEquals(on.permissions.net, ["imap.example.com:993", "chatgpt.com", "click.example.com"]);
  // Downloads land in the state directory, which it reads and writes, and watches.
  assert(on.init.extraRoots.includes("/s/openai-downloads"));
  assertEquals(on.permissions.write, ["/s"]);
  for (const name of ["OPENAI_EMAIL_PASSWORD", "OPENAI_SESSION_TOKEN"]) {
    assert(mainPermissionFlags(spec).join(" ").includes(name), name);
    assert(!(on.permissions.env as string[]).includes(name), `the engine reads no ${name}`);
  }
});
