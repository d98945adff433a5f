/**
 * `deno task fuzz`: the model-based test of the file reader (tests/model.ts) with fresh random
 * seeds, for as long as asked; prints how many sequences ran, and for a failure the seed and the
 * steps to replay it (`deno task fuzz --seed N`).
 *
 * ```
 * deno task fuzz [--minutes 10] [--steps 60] [--seed N]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { ModelViolation, runModelSequence } from "./model.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    minutes: { type: "string", default: "10" },
    steps: { type: "string", default: "60" },
    seed: { type: "string" },
  },
});
const steps = Number(values.steps);
if (values.seed !== undefined) {
  const { steps: trace } = await runModelSequence({
    seed: Number(values.seed),
    steps,
    kills: true,
  });
  console.log(`seed ${values.seed}: ok after ${trace.length} steps`);
  Deno.exit(0);
}
const deadline = Date.now() + Number(values.minutes) * 60_000;
let sequences = 0;
let operations = 0;
const failures: string[] = [];
while (Date.now() < deadline) {
  const seed = Math.floor(Math.random() * 2 ** 31);
  try {
    const { steps: trace } = await runModelSequence({ seed, steps, kills: true });
    operations += trace.length;
  } catch (error) {
    if (!(error instanceof ModelViolation)) throw error;
    failures.push(error.message);
    console.error(error.message);
  }
  sequences++;
  if (sequences % 10 === 0) console.log(`${sequences} sequences, ${operations} operations`);
}
console.log(
  `fuzz: ${sequences} sequences of ${steps} steps (${operations} operations), ` +
    `${failures.length} failed`,
);
Deno.exit(failures.length === 0 ? 0 : 1);
