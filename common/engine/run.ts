/**
 * An engine's Web Worker: the messages from the main thread (start, stop, the embedded store's
 * answers) and the exit code back. The main thread narrowed this worker's permissions to the
 * data directory, the config file, the state directory and the API host (`enginePermissions`).
 *
 * @module
 */
import { errorMessage } from "../log.ts";
import { ChannelSink, embeddedStorePath } from "../delivery/store_sinks.ts";
import type { FileSource } from "../watch/source_worker.ts";
import { Engine } from "./engine.ts";
import type { EngineCommand, EngineInit, EngineReply } from "./protocol.ts";

/** This module runs as a Web Worker: `self` is the worker scope. */
const scope = self as unknown as {
  postMessage(message: EngineReply): void;
  onmessage: ((event: MessageEvent<EngineCommand>) => void) | null;
};

/**
 * Runs `source` as this Web Worker's engine; call it from the worker module.
 *
 * @example Start a worker's engine module, which calls this, and wait until it is ready
 * ```ts
 * // workers/codex/engine.ts is `runEngine(codexSource)`.
 * const engine = new Worker(new URL("../../workers/codex/engine.ts", import.meta.url), {
 *   type: "module",
 * });
 * const first = await new Promise((resolve) => engine.onmessage = (e) => resolve(e.data));
 * console.log(first); // { type: "ready" }
 * engine.terminate();
 * ```
 */
export function runEngine<Carry, Hint>(source: FileSource<Carry, Hint>): void {
  const post = (reply: EngineReply) => scope.postMessage(reply);
  /** Where the embedded store's answers go: the channel its batches went out on. */
  let channel: ChannelSink | undefined;
  let engine: Engine<Carry, Hint> | undefined;
  let stopRequested = false;
  let stopped: () => void = () => {};
  const stoppedPromise = new Promise<void>((resolve) => stopped = resolve);
  const stopOnce = () => {
    // One pass stops its delivery; a watching engine winds down from `watch`.
    if (engine?.init.once || engine?.init.dryRun) engine.stop();
  };
  scope.onmessage = (event) => {
    const command = event.data;
    if (command.type === "init") {
      const init = command.init;
      channel = new ChannelSink(`embedded store ${embeddedStorePath(init.stateDir)}`, post);
      run(source, init, channel, (built) => {
        engine = built;
        if (stopRequested) stopOnce();
      }, stoppedPromise).then((code) => post({ type: "done", code }), (error) => {
        console.error(`fatal: ${errorMessage(error)}`);
        post({ type: "done", code: 1 });
      });
    } else if (command.type === "stop") {
      stopRequested = true;
      stopped();
      stopOnce();
    } else if (command.type === "stored") {
      channel?.receive(command);
    }
  };
  // A source's modules may finish loading only after a top-level await (a WebAssembly hasher):
  // a message sent before this handler existed would be lost, so the main thread waits for this.
  post({ type: "ready" });
}

async function run<Carry, Hint>(
  source: FileSource<Carry, Hint>,
  init: EngineInit,
  channel: ChannelSink,
  built: (engine: Engine<Carry, Hint>) => void,
  stopped: Promise<void>,
): Promise<number> {
  const engine = Engine.open(source, init, channel);
  if (typeof engine === "number") return engine;
  built(engine);
  return init.once || init.dryRun ? await engine.once() : await engine.watch(stopped);
}
