/**
 * One token-usage shape for every source, at the message and the conversation level:
 *
 * | key | what it counts |
 * | --- | --- |
 * | `input` | prompt tokens neither read from nor written to a cache |
 * | `cache_read` | prompt tokens read from a cache |
 * | `cache_write` | prompt tokens written to a cache (Anthropic's cache creation) |
 * | `output` | generated tokens, reasoning included |
 * | `reasoning` | the reasoning ("thinking") part of `output`; 0 when the source does not say |
 * | `total` | `input + cache_read + cache_write + output` |
 *
 * Each source's own counts map onto it (see `toUsage` in each parser): Anthropic's `input_tokens`
 * exclude the cache, OpenAI's and Gemini's include the cached part, and Gemini counts thoughts
 * apart from the answer.
 *
 * @module
 */

/** Token usage in the shape every parser delivers (a type alias, so it fits a JSON record). */
export type Usage = {
  input: number;
  output: number;
  cache_read: number;
  cache_write: number;
  reasoning: number;
  total: number;
};

/**
 * A usage record from its parts; `total` is their sum.
 *
 * @example Anthropic's counts
 * ```ts
 * import { usage } from "./usage.ts";
 * usage({ input: 10, cache_read: 100, cache_write: 5, output: 20 }).total === 135;
 * ```
 */
export function usage(parts: Partial<Omit<Usage, "total">>): Usage {
  const u = {
    input: parts.input ?? 0,
    output: parts.output ?? 0,
    cache_read: parts.cache_read ?? 0,
    cache_write: parts.cache_write ?? 0,
    reasoning: parts.reasoning ?? 0,
    total: 0,
  };
  u.total = u.input + u.cache_read + u.cache_write + u.output;
  return u;
}

/**
 * The sum of usage records.
 *
 * @example Two responses
 * ```ts
 * import { sumUsage, usage } from "./usage.ts";
 * sumUsage([usage({ output: 1 }), usage({ output: 2 })]).output === 3;
 * ```
 */
export function sumUsage(records: readonly Usage[]): Usage {
  const out = usage({});
  for (const r of records) {
    out.input += r.input;
    out.output += r.output;
    out.cache_read += r.cache_read;
    out.cache_write += r.cache_write;
    out.reasoning += r.reasoning;
    out.total += r.total;
  }
  return out;
}
