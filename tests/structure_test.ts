/**
 * The layout holds, read from the import graph (`deno info --json`): no cycles, nothing in
 * `common/` imports `server/`, parsers import nothing that does I/O, each worker binary loads
 * only its own parser, and no file in `common/` is over 400 lines.
 */
import { assert, assertEquals } from "./assert.ts";
import { REPO } from "./helpers.ts";
import { SOURCES } from "../workers/registry.ts";

interface Info {
  modules: {
    specifier: string;
    dependencies?: { code?: { specifier: string }; type?: { specifier: string } }[];
  }[];
}

/** The repo's own import graph from `entries`: file → files it imports (code and types). */
async function importGraph(entries: string[]): Promise<Map<string, Set<string>>> {
  const graph = new Map<string, Set<string>>();
  for (const entry of entries) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", `${REPO}/${entry}`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert(out.success, new TextDecoder().decode(out.stderr));
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as Info;
    for (const module of info.modules) {
      const from = local(module.specifier);
      if (!from) continue;
      const to = graph.get(from) ?? new Set<string>();
      for (const dependency of module.dependencies ?? []) {
        for (const target of [dependency.code?.specifier, dependency.type?.specifier]) {
          const file = target && local(target);
          if (file) to.add(file);
        }
      }
      graph.set(from, to);
    }
  }
  return graph;
}

/** A repo file's path relative to the repo, or `undefined` for anything else. */
function local(specifier: string): string | undefined {
  const prefix = `file://${REPO}/`;
  return specifier.startsWith(prefix) ? specifier.slice(prefix.length) : undefined;
}

/** Every cycle's files (strongly connected components of more than one file, or a self-loop). */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || graph.get(v)?.has(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** The files `entry` loads, directly or not. */
function reach(graph: Map<string, Set<string>>, entry: string): Set<string> {
  const seen = new Set<string>([entry]);
  const queue = [entry];
  while (queue.length > 0) {
    for (const next of graph.get(queue.pop()!) ?? []) {
      if (!seen.has(next)) {
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return seen;
}

const ENTRIES = [
  "mod.ts",
  "server/main.ts",
  "workers/start.ts",
  "workers/compile.ts",
  ...SOURCES.flatMap((s) => [`workers/${s.name}/main.ts`, `workers/${s.name}/engine.ts`]),
];

/** What a parser may import: the canonical types, the parser contract, hashing, other parsers. */
const PARSER_MAY_IMPORT = /^(common\/(types|source|hash)\.ts|parsers\/[a-z_]+\.ts)$/;

Deno.test("structure: the import graph has the layers it should", async (t) => {
  const graph = await importGraph(ENTRIES);
  const edges = [...graph].flatMap(([from, to]) => [...to].map((file) => [from, file]));

  await t.step("no cycles", () => {
    assertEquals(cycles(graph), []);
  });

  await t.step("nothing in common/ imports server/", () => {
    assertEquals(
      edges.filter(([from, to]) => from.startsWith("common/") && to.startsWith("server/")),
      [],
    );
  });

  await t.step("parsers import only types, the parser contract, hashing and parsers", () => {
    assertEquals(
      edges.filter(([from, to]) => from.startsWith("parsers/") && !PARSER_MAY_IMPORT.test(to)),
      [],
    );
  });

  await t.step("the store is a module of its own: it imports no worker machinery", () => {
    assertEquals(
      edges.filter(([from, to]) =>
        from.startsWith("store/") && !/^(store\/|common\/(types|hash|json_depth)\.ts$)/.test(to)
      ),
      [],
    );
  });

  await t.step("each worker binary loads only its own parser", () => {
    const parserOf = (s: (typeof SOURCES)[number]) => `parsers/${s.parser ?? s.name}.ts`;
    const sourceParsers = new Set(SOURCES.map(parserOf));
    for (const spec of SOURCES) {
      for (const entry of [`workers/${spec.name}/main.ts`, `workers/${spec.name}/engine.ts`]) {
        const parsers = [...reach(graph, entry)].filter((f) => sourceParsers.has(f));
        const own = entry.endsWith("engine.ts") ? [parserOf(spec)] : [];
        assertEquals(parsers, own, entry);
      }
    }
  });
});

Deno.test("structure: no file in common/ is over 400 lines", async () => {
  const over: string[] = [];
  const walk = async (dir: string) => {
    for await (const entry of Deno.readDir(`${REPO}/${dir}`)) {
      const path = `${dir}/${entry.name}`;
      if (entry.isDirectory) await walk(path);
      else if (path.endsWith(".ts")) {
        const lines = (await Deno.readTextFile(`${REPO}/${path}`)).split("\n").length - 1;
        if (lines > 400) over.push(`${path}: ${lines} lines`);
      }
    }
  };
  await walk("common");
  assertEquals(over, []);
});

/**
 * The tables of `markdown` that lack their separator row (`|---|`): `deno fmt` flows such lines
 * into one paragraph, and the page shows a wall of bars. Returns each such table's first line.
 */
function tablesWithoutSeparator(markdown: string): string[] {
  const broken: string[] = [];
  let fenced = false;
  let table: string[] = [];
  const close = () => {
    if (table.length > 0 && !/^\|(\s*:?-{3,}:?\s*\|)+\s*$/.test(table[1] ?? "")) {
      broken.push(table[0].slice(0, 80));
    }
    table = [];
  };
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    if (!fenced && line.startsWith("|")) table.push(line);
    else close();
  }
  close();
  return broken;
}

Deno.test("structure: every table in the README and docs/ has its separator row", async () => {
  const broken: string[] = [];
  const pages = [
    "README.md",
    ...[...Deno.readDirSync(`${REPO}/docs`)].map((e) => `docs/${e.name}`),
  ];
  for (const page of pages.filter((p) => p.endsWith(".md"))) {
    for (const table of tablesWithoutSeparator(await Deno.readTextFile(`${REPO}/${page}`))) {
      broken.push(`${page}: ${table}`);
    }
  }
  assertEquals(broken, []);
});
