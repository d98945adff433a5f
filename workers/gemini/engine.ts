/**
 * The gemini worker's engine, run in a narrowed Web Worker by `main.ts`.
 *
 * @module
 */
import { runEngine } from "../../common/engine/run.ts";
import { geminiSource } from "./source.ts";

runEngine(geminiSource);
