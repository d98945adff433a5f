/**
 * The model-based test of the file reader, fast version: a few fixed seeds run on every test
 * run. `deno task fuzz` runs the long version with fresh seeds (tests/fuzz.ts).
 */
import { runModelSequence } from "./model.ts";

const SEEDS = [1, 2, 3, 4, 5, 6];

Deno.test({
  name: "model: random file histories end with every written line on the server exactly once",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    for (const seed of SEEDS) {
      await t.step(`seed ${seed}`, async () => {
        await runModelSequence({ seed, steps: 40, kills: true });
      });
    }
  },
});
