/**
 * ai-sync as a library: the canonical conversation schema, the source parsers, and the
 * delivery client, for programs that want to parse AI conversation history or talk to the
 * batch API without running a worker.
 *
 * @example Parse Claude Code lines and validate the batch
 * ```ts
 * import { BatchSchema, parseClaudeCode } from "./mod.ts";
 * const line = JSON.stringify({
 *   type: "user", uuid: "u1", parentUuid: null, sessionId: "s1",
 *   timestamp: "2025-01-01T00:00:00.000Z", message: { role: "user", content: "hello" },
 * }) + "\n";
 * const out = parseClaudeCode({
 *   bytes: new TextEncoder().encode(line), firstLine: 1, carry: undefined,
 *   file: { path: "s1.jsonl", hint: { kind: "session", sessionId: "s1" }, host: "laptop" },
 * });
 * BatchSchema.parse({ source_type: "claude_code", conversations: out.conversations });
 * ```
 *
 * @module
 */
export * from "./common/types.ts";
export type { FileContext, LineIssue, ParseInput, ParseOutput, Parser } from "./common/source.ts";
export {
  type ClaudeCodeCarry,
  initialCarry as initialClaudeCodeCarry,
  parseClaudeCode,
} from "./parsers/claude_code.ts";
export { type CodexCarry, initialCodexCarry, parseCodex } from "./parsers/codex.ts";
export { type GeminiCarry, initialGeminiCarry, parseGeminiCli } from "./parsers/gemini_cli.ts";
export { decompressZstd, ZstdError } from "./common/io/zstd.ts";
export {
  backoffDelay,
  classifyStatus,
  type OutgoingBatch,
  parseRetryAfter,
  type SendOutcome,
  type Sink,
} from "./common/delivery/sink.ts";
export { EmbeddedSink } from "./common/delivery/store_sinks.ts";
export { HttpSink, type HttpSinkOptions } from "./common/delivery/http_sink.ts";
export { ConversationStore } from "./store/store.ts";
