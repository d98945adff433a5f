/**
 * What a source is, as the rest of the program needs to know it without loading its parser: a
 * {@link SourceSpec}. Each source declares one in `workers/<name>/spec.ts`, and the registry
 * (`workers/registry.ts`) lists them; the config schema, the permission table, `start`,
 * `doctor`, `compile` and `install-service` all derive from that list.
 *
 * @module
 */
import { z } from "zod";
import type { SourceType } from "./types.ts";

/** One source: its names, where its data is, its config section and what it may touch. */
export interface SourceSpec {
  /** Its folder under `workers/` and its config section. */
  name: string;
  /** The `source_type` of its batches. */
  sourceType: SourceType;
  /** The compiled binary's name. */
  binary: string;
  /** Its parser's module under `parsers/` when not named as the source (`chatgpt`). */
  parser?: string;
  /** What its data is, for messages ("Claude Code sessions"). */
  label: string;
  /** The flag that names its data folder, without dashes (`projects-dir`). */
  sourceFlag: string;
  /**
   * The flag `deno task start` takes for its data folder when `sourceFlag` is another
   * source's too (`openai-dir` for the openai worker's `--data-dir`); `sourceFlag` when absent.
   */
  startFlag?: string;
  /** The key of its data folder in its config section (`projects_dir`). */
  configKey: string;
  /** Environment variables that locate its default data folder. */
  locatorEnv: string[];
  /** Its default data folder, from those variables. */
  defaultDataDir(env: (name: string) => string | undefined): string;
  /**
   * Other folders its tool writes the same data to in some versions, read too when no flag or
   * config key names the data folder (Claude Code's `~/.config/claude/projects`); the first of
   * them all that exists is the data folder, the others further roots.
   */
  otherDefaultDirs?(env: (name: string) => string | undefined): string[];
  /**
   * The schema of its config section: a strict object whose keys have defaults, one of them
   * `configKey`, a string (empty: the default folder).
   */
  config: z.ZodType<Record<string, unknown>>;
  /** `sys` names a library needs inside the engine (imapflow: hostname). */
  sys: string[];
  /** More checks `doctor` makes (the openai worker's mailbox), each with a fix when it fails. */
  checks?(section: Record<string, unknown>): Promise<{ ok: boolean; what: string; fix?: string }[]>;
  /** Environment variables a library probes inside the engine (none secret). */
  engineEnv?: string[];
  /**
   * Paths beside the data folder (in its parent) it also reads: folders it watches as further
   * roots (`watch: true`), or single files it consults.
   */
  siblings?: readonly { name: string; watch: boolean }[];
  /**
   * Its data folder is one the user drops files into (exports), not one a tool writes: `doctor`
   * then says to create it and put the files there.
   */
  dropFolder?: boolean;
  /** Hosts besides the API host its engine may reach (`host:port`), from its config section. */
  hosts?(section: Record<string, unknown>): string[];
  /**
   * Environment variables its main thread reads and hands to its engine: credentials, never
   * logged (the log masks their values) nor stored.
   */
  secretEnv?: string[];
  /**
   * It has an intake that fetches files (`FileSource.intake`) into `<state>/<name>-downloads`,
   * which its engine may then write, read and watch.
   */
  downloads?: boolean;
  /**
   * Further folders its config section lists (`extra_dirs`: `~/Downloads`), watched and read
   * besides its data folder; only files named like its own are touched there.
   */
  extraDirs?(section: Record<string, unknown>): string[];
}

/** What differs between export sources (see {@link exportSpec}). */
export type ExportSpecFields = Pick<SourceSpec, "name" | "sourceType" | "binary" | "label"> & {
  /** Its drop folder under `~/ai-sync-exports/`. */
  folder: string;
  /** Its parser's module under `parsers/`, when not named as the source. */
  parser?: string;
  /** More keys of its config section besides `data_dir` and `extra_dirs`. */
  section?: z.ZodRawShape;
} & Partial<Pick<SourceSpec, "hosts" | "secretEnv" | "downloads" | "sys" | "engineEnv" | "checks">>;

/**
 * The spec of a source of exports: a drop folder (`--data-dir`, `--<name>-dir` under `start`)
 * under `~/ai-sync-exports/`, and a config section with `data_dir` and `extra_dirs`.
 *
 * @example A source of exports
 * ```ts
 * import { exportSpec } from "./source_spec.ts";
 * const spec = exportSpec({ name: "demo", sourceType: "gpt", binary: "demo-sync-worker", label: "demo exports", folder: "demo" });
 * console.log(spec.startFlag); // demo-dir
 * ```
 */
export function exportSpec(fields: ExportSpecFields): SourceSpec {
  const { folder, section, ...rest } = fields;
  return {
    sys: [],
    ...rest,
    sourceFlag: "data-dir",
    startFlag: `${fields.name}-dir`,
    dropFolder: true,
    configKey: "data_dir",
    locatorEnv: [],
    defaultDataDir: (env) => `${env("HOME") ?? "."}/ai-sync-exports/${folder}`,
    config: z.strictObject({
      data_dir: z.string().default(""),
      extra_dirs: z.array(z.string()).default([]),
      ...section,
    }),
    extraDirs: (section) => section.extra_dirs as string[],
  };
}
