/**
 * What an engine takes from the configuration for its parts: the delivery settings, and the
 * timing of watching. Read at each use, so a reload applies at once.
 *
 * @module
 */
import type { Config } from "../config.ts";
import type { DeliverySettings } from "../delivery/delivery.ts";
import type { SourceWorkerTiming } from "../watch/source_worker.ts";

/**
 * The delivery settings of a configuration; `once` limits attempts per batch (`--once`).
 *
 * @example The defaults
 * ```ts
 * import { ConfigSchema } from "../config.ts";
 * import { deliverySettings } from "./settings.ts";
 * console.log(deliverySettings(ConfigSchema.parse({}), false).batchSize); // 100
 * ```
 */
export function deliverySettings(config: Config, once: boolean): DeliverySettings {
  const w = config.worker;
  return {
    batchSize: w.batch_size,
    batchMaxBytes: w.batch_max_bytes,
    chunkBytes: w.chunk_bytes,
    maxLineBytes: w.max_line_bytes,
    maxDecompressedBytes: w.max_decompressed_bytes,
    maxDocumentBytes: w.max_document_bytes,
    maxMemberBytes: w.max_export_member_bytes,
    settleMs: w.export_settle_seconds * 1000,
    retryBaseMs: w.retry_base_ms,
    retryMaxMs: w.retry_max_ms,
    probeIntervalMs: w.probe_interval * 1000,
    shutdownTimeoutMs: w.shutdown_timeout * 1000,
    maxAttempts: once ? 5 : undefined,
    failOnPause: once,
  };
}

/**
 * The watching timing of a configuration, read through `current` at each use.
 *
 * @example Debounce from the defaults
 * ```ts
 * import { ConfigSchema } from "../config.ts";
 * import { watchTiming } from "./settings.ts";
 * const config = ConfigSchema.parse({});
 * console.log(watchTiming(() => config).debounceMs()); // 300
 * ```
 */
export function watchTiming(current: () => Config): SourceWorkerTiming {
  return {
    debounceMs: () => current().worker.debounce_ms,
    checkIntervalMs: () => current().worker.check_interval * 1000,
    retryMs: () => current().worker.probe_interval * 1000,
    watch: () => current().worker.watch,
    pollIntervalMs: () => current().worker.poll_interval * 1000,
  };
}
