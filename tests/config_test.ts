import { assertEquals, assertRejects, assertStringIncludes, assertThrows } from "./assert.ts";
import { cleartextWarning, ConfigError, loadConfig, parseConfig } from "../common/config.ts";

Deno.test("config: errors name the file, the key and what was expected", async (t) => {
  const cases: [string, string, string][] = [
    [
      "a non-integer",
      "worker:\n  batch_size: abc\n",
      'config.yaml: worker.batch_size: expected a positive integer, got "abc"',
    ],
    [
      "a negative number",
      "server:\n  timeout: -5\n",
      "config.yaml: server.timeout: expected a positive integer, got -5",
    ],
    ["an unknown key", "worker:\n  batch_sise: 3\n", "config.yaml: worker: unknown key batch_sise"],
    ["an unknown section", "wrker: {}\n", "config.yaml: (root): unknown key wrker"],
    [
      "a bad enum",
      "log:\n  level: loud\n",
      'config.yaml: log.level: expected one of "debug", "info", "warn", "error", got "loud"',
    ],
    ["invalid YAML with its position", "worker: [\n", "config.yaml:2:1: invalid YAML"],
    ["not a mapping", "- a\n- b\n", "config.yaml: expected a mapping of sections"],
    [
      "aliases that expand into millions of nodes",
      "a: &a [x, x, x, x, x, x, x, x, x, x]\n" +
      ["b", "c", "d", "e", "f", "g", "h"].map((k, i) =>
        `${k}: &${k} [${Array(10).fill(`*${"abcdefg"[i]}`).join(", ")}]\n`
      ).join(""),
      "config.yaml: invalid YAML: Excessive alias count",
    ],
    [
      "a server without token",
      "server:\n  base_url: https://x.example\n",
      "config.yaml: security.worker_token: required when server.base_url is set",
    ],
    [
      "plain IMAP to another machine",
      "openai:\n  email:\n    host: imap.example.com\n    port: 143\n    security: plain\n",
      'config.yaml: openai.email.security: "plain" sends the password unencrypted, so it is ' +
      "only for a server on this machine (127.0.0.1, localhost, ::1), not imap.example.com",
    ],
    [
      "a non-http URL",
      "server:\n  base_url: ftp://x\nsecurity:\n  worker_token: t\n",
      "server.base_url: expected an http or https URL",
    ],
  ];
  for (const [name, text, message] of cases) {
    await t.step(name, () => {
      const error = assertThrows(() => parseConfig(text, "config.yaml"));
      assertEquals(error instanceof ConfigError, true);
      assertStringIncludes(error.message, message);
    });
  }
  await t.step("several problems are all listed", () => {
    const error = assertThrows(() =>
      parseConfig("worker:\n  batch_size: x\n  check_interval: y\n", "c.yaml")
    );
    assertEquals(error.message.split("\n").length, 2);
  });
});

Deno.test("config: defaults, numbers as strings, and the environment", async (t) => {
  await t.step("an empty file gives every default", () => {
    const c = parseConfig("", "c.yaml");
    assertEquals(c.server.base_url, "");
    assertEquals(c.worker.batch_size, 100);
    assertEquals(c.worker.check_interval, 300);
    assertEquals(c.status.port, 0);
  });
  await t.step("digits in quotes are numbers", () => {
    assertEquals(parseConfig('worker:\n  batch_size: "25"\n', "c.yaml").worker.batch_size, 25);
  });
  await t.step("SYNC_WORKER_TOKEN and SYNC_SERVER_URL override the file", () => {
    const c = parseConfig(
      "server:\n  base_url: http://a:1\nsecurity:\n  worker_token: file\n",
      "c.yaml",
      {
        SYNC_WORKER_TOKEN: "env-token",
        SYNC_SERVER_URL: "http://b:2",
      },
    );
    assertEquals(c.security.worker_token, "env-token");
    assertEquals(c.server.base_url, "http://b:2");
  });
  await t.step("the token may come only from the environment", () => {
    const c = parseConfig("server:\n  base_url: http://a:1\n", "c.yaml", {
      SYNC_WORKER_TOKEN: "t",
    });
    assertEquals(c.security.worker_token, "t");
  });
  await t.step("a config file that is named must exist", async () => {
    const error = await assertRejects(() => loadConfig("/nonexistent/config.yaml"));
    assertEquals(error instanceof ConfigError, true);
    assertStringIncludes(error.message, "/nonexistent/config.yaml: no such file");
  });
  await t.step("no file at all means defaults", async () => {
    assertEquals((await loadConfig(undefined)).worker.batch_size, 100);
  });
  await t.step("config.yaml.example is valid", async () => {
    const text = await Deno.readTextFile(new URL("../config.yaml.example", import.meta.url));
    const c = parseConfig(text, "config.yaml.example", { SYNC_WORKER_TOKEN: "t" });
    assertEquals(c.worker.batch_size > 0, true);
  });
});

Deno.test("config: limits that keep the worker inside its memory budget", async (t) => {
  await t.step("max_line_bytes above 16 MiB", () => {
    const error = assertThrows(() =>
      parseConfig("worker:\n  max_line_bytes: 33554432\n", "c.yaml")
    );
    assertStringIncludes(
      error.message,
      "c.yaml: worker.max_line_bytes: expected at most 16777216 (16 MiB)",
    );
  });
  await t.step("batch_max_bytes above 16 MiB", () => {
    const error = assertThrows(() =>
      parseConfig("worker:\n  batch_max_bytes: 99999999\n", "c.yaml")
    );
    assertStringIncludes(
      error.message,
      "worker.batch_max_bytes: expected at most 16777216 (16 MiB)",
    );
  });
});

Deno.test("log: text format for a terminal, secrets masked in both formats", async () => {
  const { Logger } = await import("../common/log.ts");
  const path = await Deno.makeTempFile();
  const log = new Logger("t", "info");
  log.setFile(path);
  log.addSecret("s3cr3t-token");
  log.format = "text";
  log.info("paused: token s3cr3t-token refused", { status: 401, worker_token: "abc" });
  log.format = "json";
  log.warn("again s3cr3t-token");
  log.close();
  const [text, json] = (await Deno.readTextFile(path)).trim().split("\n");
  assertStringIncludes(
    text,
    'info  paused: token [redacted] refused status=401 worker_token="[redacted]"',
  );
  assertEquals(JSON.parse(json).msg, "again [redacted]");
});

Deno.test("config: a FIFO given as the config file is refused at once", async () => {
  const path = `${await Deno.makeTempDir()}/config.yaml`;
  new Deno.Command("mkfifo", { args: [path] }).outputSync();
  const error = await assertRejects(() => loadConfig(path));
  assertEquals(error instanceof ConfigError, true);
  assertStringIncludes(error.message, `${path}: not read: it is a FIFO`);
});

Deno.test("config: secrets never appear in errors; credentials in URLs are refused", async (t) => {
  await t.step("a token of the wrong type is not repeated", () => {
    const error = assertThrows(() =>
      parseConfig("security:\n  worker_token: 987654321987\n", "config.yaml")
    );
    assertStringIncludes(error.message, "security.worker_token: expected string");
    assertEquals(error.message.includes("987654321987"), false, error.message);
  });
  await t.step("a status token of the wrong type is not repeated", () => {
    const error = assertThrows(() => parseConfig("status:\n  token: [s3cr3tvalue]\n", "c.yaml"));
    assertEquals(error.message.includes("s3cr3tvalue"), false, error.message);
  });
  await t.step("a base_url with user:password@ is refused without repeating it", () => {
    const text =
      "server:\n  base_url: https://alice:hunter2pass@sync.example\nsecurity:\n  worker_token: t\n";
    const error = assertThrows(() => parseConfig(text, "config.yaml"));
    assertStringIncludes(
      error.message,
      "server.base_url: must not contain a user name or password",
    );
    assertEquals(error.message.includes("hunter2pass"), false, error.message);
  });
  await t.step("so is SYNC_SERVER_URL", () => {
    const error = assertThrows(() =>
      parseConfig("", "config.yaml", {
        SYNC_SERVER_URL: "https://bob:tops3cretpw@sync.example",
        SYNC_WORKER_TOKEN: "t",
      })
    );
    assertStringIncludes(
      error.message,
      "SYNC_SERVER_URL: must not contain a user name or password",
    );
    assertEquals(error.message.includes("tops3cretpw"), false, error.message);
  });
});

Deno.test("config: a plain-HTTP server on another machine is warned of", () => {
  for (const url of ["http://10.0.0.5:8080", "http://sync.example.com/"]) {
    assertStringIncludes(cleartextWarning(url), "cross the network unencrypted");
  }
  for (const url of ["https://sync.example.com", "http://127.0.0.1:8080", "http://localhost", ""]) {
    assertEquals(cleartextWarning(url), "", url);
  }
});
