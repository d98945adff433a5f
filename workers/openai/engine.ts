/**
 * The openai worker's engine, run in a narrowed Web Worker by `main.ts`.
 *
 * @module
 */
import { runEngine } from "../../common/engine/run.ts";
import { openaiSource } from "./source.ts";

runEngine(openaiSource);
