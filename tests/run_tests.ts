/**
 * `deno task test`: `deno test` over the repository, with every temporary file and folder the
 * tests make (stores, homes, servers' data, the processes they start) under one folder of the
 * run's own (`TMPDIR`), removed when the run ends. Tests that stop half-way, and the processes they
 * start, then leave nothing behind in the system's temporary folder. A run that fails keeps the
 * folder and says where, for a look at what the failing test left.
 *
 * ```
 * deno task test                      # everything
 * deno task test --filter "store"     # more `deno test` flags, passed on
 * ```
 *
 * @module
 */
import { fileURLToPath } from "node:url";

/** Where `deno test` looks: the tests, and the doc examples of every module. */
export const TEST_PATHS = [
  "tests/",
  "common/",
  "store/",
  "server/",
  "parsers/",
  "workers/",
  "bench/",
  "mod.ts",
] as const;

/**
 * The `deno test` arguments of a run, with `extra` flags given on the command line.
 *
 * @example The default run
 * ```ts
 * import { testArgs } from "./run_tests.ts";
 * console.log(testArgs([]).slice(0, 4)); // ["test", "-A", "--unstable-worker-options", "--doc"]
 * ```
 */
export function testArgs(extra: readonly string[]): string[] {
  return ["test", "-A", "--unstable-worker-options", "--doc", ...TEST_PATHS, ...extra];
}

if (import.meta.main) {
  const root = Deno.makeTempDirSync({ prefix: "ai-sync-tests-" });
  // Traversable like the system's temporary folder: the IMAP server's mail processes run as
  // another user, and its test folder inside is opened up to them.
  Deno.chmodSync(root, 0o755);
  const child = new Deno.Command(Deno.execPath(), {
    args: testArgs(Deno.args),
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    env: { TMPDIR: root },
    stdin: "inherit",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn();
  // Ctrl-C reaches the whole process group; this process waits for the tests to stop.
  Deno.addSignalListener("SIGINT", () => {});
  const { code } = await child.status;
  if (code === 0) {
    try {
      Deno.removeSync(root, { recursive: true });
    } catch (error) {
      console.error(`could not remove the tests' temporary folder ${root}: ${error}`);
    }
  } else console.error(`the tests' temporary files are kept in ${root}`);
  Deno.exit(code);
}
