/**
 * The Gemini CLI worker's engine, run in a narrowed Web Worker by `main.ts`.
 *
 * @module
 */
import { runEngine } from "../../common/engine/run.ts";
import { geminiCliSource } from "./source.ts";

runEngine(geminiCliSource);
