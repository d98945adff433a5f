/**
 * Every registered source is complete: its folder and parser, a binary, a flag, a config
 * section (in the schema and in `config.yaml.example`), a permission entry, a place in `start`
 * and in the service files, and a line in the README.
 */
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { REPO } from "./helpers.ts";
import { SOURCES } from "../workers/registry.ts";
import { ConfigSchema, sourceSection } from "../common/config.ts";
import { compileArgs, enginePermissions, mainPermissionFlags } from "../common/permissions.ts";
import { parseCli, usage } from "../common/cli/context.ts";
import { serviceFile } from "../common/cli/service.ts";
import { SOURCE_TYPES } from "../common/types.ts";

function exists(path: string): boolean {
  try {
    Deno.statSync(`${REPO}/${path}`);
    return true;
  } catch {
    return false;
  }
}

Deno.test("registry: every source has everything a source needs", async (t) => {
  const readme = await Deno.readTextFile(`${REPO}/README.md`);
  const example = await Deno.readTextFile(`${REPO}/config.yaml.example`);
  const defaults = ConfigSchema.parse({});
  const start = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO}/workers/start.ts`, "--help"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const startHelp = new TextDecoder().decode(start.stdout);

  await t.step("names, binaries, flags and source types are distinct", () => {
    for (const key of ["name", "binary", "sourceType"] as const) {
      const values = SOURCES.map((s) => s[key]);
      assertEquals(new Set(values).size, values.length, key);
    }
    // `start` takes every source's folder flag at once.
    const startFlags = SOURCES.map((s) => s.startFlag ?? s.sourceFlag);
    assertEquals(new Set(startFlags).size, startFlags.length, "start flags");
    for (const spec of SOURCES) assert(SOURCE_TYPES.includes(spec.sourceType), spec.sourceType);
  });

  for (const spec of SOURCES) {
    await t.step(spec.name, () => {
      for (const file of ["spec.ts", "source.ts", "main.ts", "engine.ts"]) {
        assert(exists(`workers/${spec.name}/${file}`), `workers/${spec.name}/${file}`);
      }
      assert(
        exists(`parsers/${spec.parser ?? spec.name}.ts`),
        `parsers/${spec.parser ?? spec.name}.ts`,
      );
      // A binary, built from its own main with its engine embedded.
      const compile = compileArgs(spec, "/r", "/r/bin");
      assertEquals(compile.slice(-3), [
        "--output",
        `/r/bin/${spec.binary}`,
        `/r/workers/${spec.name}/main.ts`,
      ]);
      assert(compile.includes(`/r/workers/${spec.name}/engine.ts`));
      // A flag that names its data folder, in its usage.
      assertEquals(parseCli(spec, [`--${spec.sourceFlag}`, "/x"]).dataDirFlag, "/x");
      assertStringIncludes(usage(spec), `--${spec.sourceFlag} DIR`);
      // A config section with its folder key, documented in the example file.
      assertEquals(sourceSection(defaults, spec)[spec.configKey], "");
      assert(
        new RegExp(`^${spec.name}:\\n(  .*\\n|\\s*\\n)*?  ${spec.configKey}:`, "m").test(example),
        `config.yaml.example has ${spec.name}.${spec.configKey}`,
      );
      // A permission entry: its locator variables for the main thread, its folder for the engine.
      const flags = mainPermissionFlags(spec).join(" ");
      for (const name of spec.locatorEnv) assertStringIncludes(flags, name);
      const engine = enginePermissions(spec, { dataDir: "/d", stateDir: "/s" });
      assert((engine.read as string[]).includes("/d"));
      // `start` offers it, and a service runs its binary.
      assertStringIncludes(startHelp, `--${spec.startFlag ?? spec.sourceFlag}`);
      const ctx = parseCli(spec, ["--state-dir", "/s"]);
      const service = serviceFile(ctx, new URL(`file:///r/workers/${spec.name}/engine.ts`));
      assertStringIncludes(service.path, spec.binary);
      assertStringIncludes(service.text, `workers/${spec.name}/main.ts`);
      // The README names its binary and its flag.
      assertStringIncludes(readme, spec.binary);
      assertStringIncludes(readme, `--${spec.sourceFlag}`);
    });
  }

  await t.step("the README's table of sources has one row per source", () => {
    const table = readme.split("\n## ")[0];
    const rows = table.split("\n").filter((l) => /^\| [A-Z]/.test(l) && !l.startsWith("| source"));
    assertEquals(rows.length, SOURCES.length, rows.join("\n"));
  });
});
