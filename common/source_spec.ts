/**
 * What a source is, as the rest of the program needs to know it without loading its parser: a
 * {@link SourceSpec}. Each source declares one in `workers/<name>/spec.ts`, and the registry
 * (`workers/registry.ts`) lists them; the config schema, the permission table, `start`,
 * `doctor`, `compile` and `install-service` all derive from that list.
 *
 * @module
 */
import type { z } from "zod";
import type { SourceType } from "./types.ts";

/** One source: its names, where its data is, its config section and what it may touch. */
export interface SourceSpec {
  /** Its folder under `workers/` and its config section. */
  name: string;
  /** The `source_type` of its batches. */
  sourceType: SourceType;
  /** The compiled binary's name. */
  binary: string;
  /** What its data is, for messages ("Claude Code sessions"). */
  label: string;
  /** The flag that names its data folder, without dashes (`projects-dir`). */
  sourceFlag: string;
  /** The key of its data folder in its config section (`projects_dir`). */
  configKey: string;
  /** Environment variables that locate its default data folder. */
  locatorEnv: string[];
  /** Its default data folder, from those variables. */
  defaultDataDir(env: (name: string) => string | undefined): string;
  /**
   * The schema of its config section: a strict object whose keys have defaults, one of them
   * `configKey`, a string (empty: the default folder).
   */
  config: z.ZodType<Record<string, unknown>>;
  /** `sys` names a library needs inside the engine (imapflow: hostname). */
  sys: string[];
  /**
   * Paths beside the data folder (in its parent) it also reads: folders it watches as further
   * roots (`watch: true`), or single files it consults.
   */
  siblings?: readonly { name: string; watch: boolean }[];
  /** Hosts besides the API host its engine may reach (`host:port`), from its config section. */
  hosts?(section: Record<string, unknown>): string[];
}
