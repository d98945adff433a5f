/**
 * `deno task compile`: one binary per worker plus `sync-server` into `bin/`, with the flags of
 * the permission table. `--print` shows the commands without running them.
 *
 * `deno compile` downloads its `denort` runtime; where that host is unreachable, set
 * `DENORT_BIN` to a local denort binary of the same Deno version.
 *
 * @module
 */
import { compileArgs, serverCompileArgs } from "../common/permissions.ts";
import { SOURCES } from "./registry.ts";

const repo = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const print = Deno.args.includes("--print");
const outIndex = Deno.args.indexOf("--out");
const out = outIndex >= 0 ? Deno.args[outIndex + 1] : `${repo}/bin`;

const jobs = [
  ...SOURCES.map((spec) => compileArgs(spec, repo, out)),
  serverCompileArgs(repo, out),
];
for (const args of jobs) {
  if (print) {
    console.log(["deno", ...args].join(" "));
    continue;
  }
  console.error(`compiling ${args[args.indexOf("--output") + 1]}`);
  const result = await new Deno.Command(Deno.execPath(), {
    args,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!result.success) {
    console.error(
      "deno compile failed. It needs the denort runtime, which it downloads; without network access " +
        "to it, set DENORT_BIN to a denort binary of the same Deno version and run again.",
    );
    Deno.exit(1);
  }
}
