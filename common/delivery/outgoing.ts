/**
 * A batch as a sink takes it ({@link OutgoingBatch}): its JSON body as text (dry runs) or as bytes
 * joined outside the JavaScript heap (a server), and its rows (the embedded store), each made when
 * the sink asks for it.
 *
 * @module
 */
import type { Item } from "./item.ts";
import type { OutgoingBatch } from "./sink.ts";
import type { SourceType } from "../types.ts";

/**
 * The JSON body of a batch.
 *
 * @example An empty batch
 * ```ts
 * import { batchBody } from "./outgoing.ts";
 * batchBody("codex", []) === '{"source_type":"codex","conversations":[]}';
 * ```
 */
export function batchBody(sourceType: SourceType, items: readonly Item[]): string {
  return `{"source_type":${JSON.stringify(sourceType)},"conversations":[${
    items.map((i) => i.json).join(",")
  }]}`;
}

/**
 * {@link batchBody} as bytes, joined outside the JavaScript heap (a string of a batch holding a
 * 16 MiB line did not fit beside the line's own copies).
 *
 * @example The same JSON as the text
 * ```ts
 * import { batchBlob, batchBody } from "./outgoing.ts";
 * console.log(await batchBlob("codex", []).text() === batchBody("codex", [])); // true
 * ```
 */
export function batchBlob(sourceType: SourceType, items: readonly Item[]): Blob {
  const parts: (string | Uint8Array<ArrayBuffer>)[] = [
    `{"source_type":${JSON.stringify(sourceType)},"conversations":[`,
  ];
  items.forEach((item, i) => {
    if (i > 0) parts.push(",");
    parts.push(item.jsonBytes as Uint8Array<ArrayBuffer>);
  });
  parts.push("]}");
  return new Blob(parts, { type: "application/json" });
}

/**
 * The batch of `items` under `key`, as a sink takes it; its body and rows are each made when the
 * sink asks for them (a server takes the body, the embedded store the rows).
 *
 * @example An empty batch
 * ```ts
 * import { outgoingBatch } from "./outgoing.ts";
 * console.log(outgoingBatch("codex", [], "k").body); // {"source_type":"codex","conversations":[]}
 * ```
 */
export function outgoingBatch(
  sourceType: SourceType,
  items: readonly Item[],
  key: string,
): OutgoingBatch {
  let body: string | undefined;
  let blob: Blob | undefined;
  return {
    get body() {
      return body ??= batchBody(sourceType, items);
    },
    get blob() {
      return blob ??= batchBlob(sourceType, items);
    },
    get rows() {
      return { source_type: sourceType, conversations: items.map((i) => i.takeRows()) };
    },
    batch: { source_type: sourceType, conversations: items.map((i) => i.conversation) },
    key,
  };
}
