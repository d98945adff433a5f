/**
 * Service definitions: a systemd unit runs the command it was given, whatever the characters of
 * its paths (checked by `systemd-analyze verify` where systemd is installed).
 */
import { serviceDefinition, ServiceWordError } from "../common/cli/service.ts";
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";

const analyze = (() => {
  try {
    return new Deno.Command("systemd-analyze", { args: ["--version"], stdout: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

if (!analyze) {
  console.warn("service_test: systemd-analyze is not installed; the unit is not verified");
}

/**
 * A unit running a copy of `/bin/true` in a folder named `name` on `<a folder named arg>/p`, and
 * what systemd says of it.
 */
async function verified(name: string, arg = name): Promise<{ dir: string; text: string }> {
  const dir = `${await Deno.makeTempDir()}/${name}`;
  await Deno.mkdir(dir);
  const tool = `${dir}/worker`;
  await Deno.copyFile("/bin/true", tool);
  await Deno.chmod(tool, 0o755);
  const unit = serviceDefinition(
    { name: "t", description: "a test", command: [tool, "--projects-dir", `${arg}/p`] },
    "linux",
  );
  const file = `${await Deno.makeTempDir()}/t.service`;
  await Deno.writeTextFile(file, unit.text);
  const out = await new Deno.Command("systemd-analyze", {
    args: ["verify", file],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const said = new TextDecoder().decode(out.stderr);
  assert(!said.includes("not executable"), said);
  assert(out.success, said);
  return { dir, text: unit.text };
}

Deno.test({
  name: "service: a systemd unit runs a command whose paths hold %, $ and spaces",
  ignore: !analyze,
  fn: async () => {
    // systemd reads `%d` as a specifier and `$HOME` as a variable: a folder named `100%done`
    // had the unit run another path.
    const { dir, text } = await verified("100%done $HOME x");
    assertStringIncludes(text, `ExecStart="${dir.replaceAll("%", "%%")}/worker"`);
    // `$` in the program's path is taken as it is, in an argument as a variable.
    assertStringIncludes(text, `100%%done $HOME x/worker" --projects-dir "`);
    assertStringIncludes(text, `100%%done $$HOME x/p"`);
  },
});

Deno.test({
  name: "service: an apostrophe in an argument is kept (systemd quotes with it too)",
  ignore: !analyze,
  fn: async () => {
    // Unquoted, systemd took `'` for a quote and dropped it: `/home/me/Bobs/p`.
    const { text } = await verified("worker", "/home/me/Bob's");
    assertStringIncludes(text, `--projects-dir "/home/me/Bob's/p"`);
  },
});

Deno.test("service: a word a service cannot carry is refused with its reason", () => {
  const words: [string, number, typeof Deno.build.os][] = [
    ['/opt/a"b/worker', 0, "linux"],
    ["/opt/a\\b/worker", 0, "linux"],
    ["/opt/a\tb/worker", 0, "linux"],
    ["/opt/Bob's/worker", 0, "linux"],
    ["/opt/w", 2, "linux"],
    ["/opt/w", 2, "darwin"],
  ];
  for (const [program, at, os] of words) {
    const command = [program, "--projects-dir", at === 2 ? "/p\nExecStartPre=/bin/sh" : "/p"];
    let thrown: unknown;
    try {
      serviceDefinition({ name: "t", description: "d", command }, os);
    } catch (error) {
      thrown = error;
    }
    assert(thrown instanceof ServiceWordError, `${os} ${JSON.stringify(command)}`);
    assertEquals(thrown.word, command[at]);
    assertStringIncludes(thrown.message, at === 0 ? "the program's path" : "the argument");
  }
  // launchd's plist carries quotes and backslashes.
  serviceDefinition({ name: "t", description: "d", command: ['/opt/a"b\\c/worker'] }, "darwin");
});
