/**
 * Service definitions: a systemd unit runs the command it was given, whatever the characters of
 * its paths (checked by `systemd-analyze verify` where systemd is installed).
 */
import { serviceDefinition } from "../common/cli/service.ts";
import { assert, assertStringIncludes } from "./assert.ts";

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

Deno.test({
  name: "service: a systemd unit runs a command whose paths hold %, $ and spaces",
  ignore: !analyze,
  fn: async () => {
    // systemd reads `%d` as a specifier and `$HOME` as a variable: a folder named `100%done`
    // had the unit run another path.
    const dir = `${await Deno.makeTempDir()}/100%done $HOME x`;
    await Deno.mkdir(dir);
    const tool = `${dir}/worker`;
    await Deno.copyFile("/bin/true", tool);
    await Deno.chmod(tool, 0o755);
    const unit = serviceDefinition(
      { name: "t", description: "a test", command: [tool, "--projects-dir", `${dir}/p`] },
      "linux",
    );
    // `$` in the program's path is taken as it is, in an argument as a variable.
    assertStringIncludes(unit.text, `100%%done $HOME x/worker" --projects-dir "`);
    assertStringIncludes(unit.text, `100%%done $$HOME x/p"`);
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
  },
});
