/**
 * The Gemini CLI worker's engine, run in a narrowed Web Worker by `main.ts`.
 *
 * @module
 */
import { runEngine } from "../../common/engine.ts";
import { geminiCliSource } from "./source.ts";

runEngine(geminiCliSource);
