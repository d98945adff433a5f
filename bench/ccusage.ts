/**
 * ccusage, the token counter Claude Code users know, as a reference: installing its native
 * build from npm (once, into a cache), running it on a folder of sessions, and
 * `deno task bench:ccusage`, which compares its totals with the Claude Code parser's on the same
 * files and says where they differ.
 *
 * ```
 * deno task bench:ccusage [--projects DIR] [--mb 20]
 * ```
 *
 * Without `--projects`, a generated corpus of `--mb` megabytes is used, with the repo's own
 * fixture; `--projects DIR` compares on any folder of real sessions instead.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { parseClaudeCode } from "../parsers/claude_code.ts";
import { claudeCodeSource } from "../workers/claude_code/source.ts";
import { writeCorpus } from "./corpus.ts";
import { jsonlFiles } from "./bare_scan.ts";
import type { Usage } from "../parsers/usage.ts";

/** The version whose native build the registry has for linux-x64 (20.0.26 has none). */
export const CCUSAGE_VERSION = "20.0.24";

/**
 * The ccusage native binary, installed with npm into `~/.cache/ai-sync-bench/ccusage-VERSION`
 * if not there yet.
 *
 * @example Find or install ccusage (defined here, not run: it may install it)
 * ```ts
 * import { ensureCcusage } from "./ccusage.ts";
 * async function ccusage(): Promise<string> {
 *   return await ensureCcusage();
 * }
 * ```
 */
export async function ensureCcusage(): Promise<string> {
  const dir = join(
    Deno.env.get("HOME") ?? ".",
    ".cache",
    "ai-sync-bench",
    `ccusage-${CCUSAGE_VERSION}`,
  );
  const platform = `@ccusage/ccusage-${Deno.build.os === "darwin" ? "darwin" : "linux"}-${
    Deno.build.arch === "aarch64" ? "arm64" : "x64"
  }`;
  // The native build itself: `.bin/ccusage` is a Node script that starts it as a child, whose
  // time and memory a measurement of the script would miss.
  const bin = join(dir, "node_modules", platform, "bin", "ccusage");
  try {
    // Executable: installed by this function (an install left half-done is done again).
    if ((Deno.statSync(bin).mode ?? 0) & 0o100) return bin;
  } catch {
    // Not installed yet.
  }
  Deno.mkdirSync(dir, { recursive: true });
  const npm = await new Deno.Command("npm", {
    args: [
      "install",
      "--prefix",
      dir,
      `ccusage@${CCUSAGE_VERSION}`,
      `${platform}@${CCUSAGE_VERSION}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!npm.success) {
    throw new Error(`npm install ccusage failed: ${new TextDecoder().decode(npm.stderr)}`);
  }
  // npm unpacks it without its executable bit (ccusage's Node script sets it on first use).
  Deno.chmodSync(bin, 0o755);
  return bin;
}

/** ccusage's totals over every day, in its own keys. */
export interface CcusageTotals {
  inputTokens: number;
  outputTokens: number;
  cacheCreationTokens: number;
  cacheReadTokens: number;
  totalTokens: number;
}

/**
 * Runs `ccusage daily --json --offline` on `configDir` (a folder with `projects/` in it).
 *
 * @example Totals of a folder (defined here, not run: it needs ccusage)
 * ```ts
 * import { runCcusage } from "./ccusage.ts";
 * async function totals(bin: string) {
 *   return await runCcusage(bin, "/tmp/claude");
 * }
 * ```
 */
export async function runCcusage(bin: string, configDir: string): Promise<CcusageTotals> {
  const out = await new Deno.Command(bin, {
    args: ["daily", "--json", "--offline"],
    env: { CLAUDE_CONFIG_DIR: configDir },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`ccusage failed: ${new TextDecoder().decode(out.stderr)}`);
  const report = JSON.parse(new TextDecoder().decode(out.stdout)) as { totals: CcusageTotals };
  return report.totals;
}

/**
 * Totals two ways over every file: as the parser delivers them (each API response counted
 * once, with the usage of its last line), and counting each response's first line, which is
 * what ccusage does.
 */
async function ourTotals(projects: string): Promise<{ delivered: Usage; firstLine: Usage }> {
  const delivered = { input: 0, output: 0, cache_read: 0, cache_write: 0, reasoning: 0, total: 0 };
  const firstLine = { ...delivered };
  for (const path of jsonlFiles(projects)) {
    const bytes = await Deno.readFile(path);
    // The hints the Claude Code source gives (workers/claude_code/source.ts).
    const ref = await claudeCodeSource.classify(path, projects);
    if (!ref) continue;
    const out = parseClaudeCode({
      bytes,
      firstLine: 1,
      carry: undefined,
      file: { path, hint: ref.hint, host: "bench" },
    });
    for (const totals of Object.values(out.totals ?? {})) {
      for (const key of Object.keys(delivered) as (keyof Usage)[]) {
        delivered[key] += (totals.usage as Usage)[key];
      }
    }
    const seen = new Set<string>();
    for (const text of new TextDecoder().decode(bytes).split("\n")) {
      if (!text.includes('"usage"')) continue;
      let line;
      try {
        line = JSON.parse(text);
      } catch {
        continue;
      }
      const usage = line?.message?.usage;
      if (line?.type !== "assistant" || !usage) continue;
      const key = `${line.message.id}|${line.requestId}`;
      if (seen.has(key)) continue;
      seen.add(key);
      firstLine.input += usage.input_tokens ?? 0;
      firstLine.output += usage.output_tokens ?? 0;
      firstLine.cache_read += usage.cache_read_input_tokens ?? 0;
      firstLine.cache_write += usage.cache_creation_input_tokens ?? 0;
    }
  }
  firstLine.total = firstLine.input + firstLine.output + firstLine.cache_read +
    firstLine.cache_write;
  return { delivered, firstLine };
}

/** Project folders are copied as they are; loose session files each get a project folder. */
async function copyProjects(from: string, projects: string): Promise<void> {
  for await (const entry of Deno.readDir(from)) {
    const source = join(from, entry.name);
    if (entry.isDirectory) {
      await new Deno.Command("cp", { args: ["-r", source, projects] }).output();
    } else if (entry.name.endsWith(".jsonl")) {
      const project = join(projects, `-fixtures-${entry.name.slice(0, -6)}`);
      await Deno.mkdir(project, { recursive: true });
      await Deno.copyFile(source, join(project, entry.name));
    }
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { projects: { type: "string" }, mb: { type: "string", default: "20" } },
  });
  const root = await Deno.makeTempDir({ prefix: "ai-sync-ccusage-" });
  const projects = join(root, "projects");
  if (values.projects) {
    await Deno.mkdir(projects);
    await copyProjects(values.projects, projects);
  } else {
    await writeCorpus(projects, Number(values.mb) * 1e6, { turnsPerSession: 40, seed: 3 });
    await copyProjects(
      new URL("../tests/fixtures/claude_code", import.meta.url).pathname,
      projects,
    );
  }
  const bin = await ensureCcusage();
  const ccusage = await runCcusage(bin, root);
  const ours = await ourTotals(projects);
  const rows: [string, number, number, number][] = [
    ["input", ccusage.inputTokens, ours.delivered.input, ours.firstLine.input],
    ["output", ccusage.outputTokens, ours.delivered.output, ours.firstLine.output],
    ["cache read", ccusage.cacheReadTokens, ours.delivered.cache_read, ours.firstLine.cache_read],
    [
      "cache write",
      ccusage.cacheCreationTokens,
      ours.delivered.cache_write,
      ours.firstLine.cache_write,
    ],
    ["total", ccusage.totalTokens, ours.delivered.total, ours.firstLine.total],
  ];
  console.log(`ccusage ${CCUSAGE_VERSION} (native build) and ai-sync on ${projects}`);
  console.log(
    "| tokens | ccusage | ai-sync (last line of a response) | ai-sync counting first lines |",
  );
  console.log("|---|---|---|---|");
  for (const [name, c, d, f] of rows) {
    console.log(
      `| ${name} | ${c.toLocaleString("en-US")} | ${d.toLocaleString("en-US")} | ${
        f.toLocaleString("en-US")
      } |`,
    );
  }
  const same = rows.every(([, c, d]) => c === d);
  const firstLines = rows.every(([, c, , f]) => c === f);
  console.log(
    same
      ? "ccusage and ai-sync agree on every count: both count each API response once, with the " +
        "usage of its last line."
      : firstLines
      ? "ccusage equals ai-sync counting each response's first line: the whole difference is " +
        "that ai-sync keeps a streamed response's final usage."
      : "ccusage differs from both: look at the files.",
  );
}
