/**
 * The Claude Code worker's engine, run in a narrowed Web Worker by `main.ts`.
 *
 * @module
 */
import { runEngine } from "../../common/engine/run.ts";
import { claudeCodeSource } from "./source.ts";

runEngine(claudeCodeSource);
