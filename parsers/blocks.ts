/**
 * Content blocks shared by the parsers: the canonical block shapes (`text`, `thinking`,
 * `tool_use`, `tool_result`, `image`, `multipart`), their plain text for search, and how a list
 * of blocks becomes a message's `content` and `content_type`.
 *
 * @module
 */
import type { Message } from "../common/types.ts";
import { isObject, type Json, str } from "./json_lines.ts";

/** A message's content, content type and plain text. */
export interface MappedContent {
  content: Json;
  contentType: Message["content_type"];
  text: string;
}

/**
 * The plain text of one block, for `content_text`.
 *
 * @example Text of a tool call
 * ```ts
 * import { blockText } from "./blocks.ts";
 * blockText({ type: "tool_use", name: "ls", input: {} }) === "ls {}";
 * ```
 */
export function blockText(block: Json): string {
  switch (block.type) {
    case "text":
      return str(block.text);
    case "thinking":
      return str(block.thinking);
    case "tool_use":
      return `${str(block.name)} ${JSON.stringify(block.input ?? {})}`;
    case "tool_result":
      if (typeof block.content === "string") return block.content;
      if (Array.isArray(block.content)) return fromBlocks(block.content.filter(isObject)).text;
      if (isObject(block.content)) {
        // Tool responses are mostly {output} or {error}: their text is what a search wants.
        const { output, error } = block.content;
        if (typeof output === "string" && typeof error !== "string") return output;
        if (typeof error === "string" && output === undefined) return error;
      }
      return block.content === undefined || block.content === null
        ? ""
        : JSON.stringify(block.content);
    default:
      return "";
  }
}

/**
 * A message's content from its blocks: one block stands alone (its type decides the content
 * type), several make a `multipart`, none an empty text.
 *
 * @example Two blocks make a multipart message
 * ```ts
 * import { fromBlocks } from "./blocks.ts";
 * fromBlocks([{ type: "text", text: "a" }, { type: "text", text: "b" }]).contentType === "multipart";
 * ```
 */
export function fromBlocks(blocks: Json[]): MappedContent {
  if (blocks.length === 0) {
    return { content: { type: "text", text: "" }, contentType: "text", text: "" };
  }
  // Concatenation, not join: V8 links long strings instead of copying them.
  let text = "";
  for (const block of blocks) {
    const part = blockText(block);
    if (part) text = text ? `${text}\n${part}` : part;
  }
  if (blocks.length === 1) {
    const t = blocks[0].type;
    return {
      content: blocks[0],
      contentType: t === "tool_use" ? "tool_use" : t === "tool_result" ? "tool_result" : "text",
      text,
    };
  }
  return { content: { type: "multipart", parts: blocks }, contentType: "multipart", text };
}
