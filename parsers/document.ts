/**
 * Documents for parsers: the part a parse is given, whether the pipeline read the document as
 * records or the caller passed it whole as bytes (which is then parsed here and makes one part
 * holding every record).
 *
 * @module
 */
import type { DocumentPart, DocumentShape, ParseInput, ParseOutput } from "../common/source.ts";
import { isObject, unreadableDocument } from "./json_lines.ts";

const decoder = new TextDecoder();

/**
 * The part to parse: `input.document`, or the whole document in `input.bytes` as one part; else
 * the output that says the bytes are not valid JSON (a file rewritten in place may be read
 * half-written; it is read again when it changes), with the carry untouched.
 *
 * @example A whole document as one part
 * ```ts
 * import { documentPart } from "./document.ts";
 * const part = documentPart({
 *   bytes: new TextEncoder().encode('{"sessionId": "s", "messages": [{"id": "a"}]}'),
 *   firstLine: 1, carry: undefined, file: { path: "s.json", hint: {}, host: "h" },
 * }, { recordKeys: ["messages"], inParts: true }, "a session document", {});
 * console.log("records" in part && part.records.length); // 1
 * ```
 */
export function documentPart<Carry>(
  input: ParseInput<Carry>,
  shape: DocumentShape,
  expected: string,
  fallback: Carry,
): DocumentPart | ParseOutput<Carry> {
  if (input.document) return input.document;
  let doc: unknown;
  try {
    doc = JSON.parse(decoder.decode(input.bytes));
  } catch (error) {
    return unreadableDocument(
      input.carry ?? fallback,
      `invalid JSON (${(error as Error).message}); expected ${expected} ` +
        "(a file rewritten in place may be caught half-written: it is read again when it changes)",
    );
  }
  return wholePart(doc, shape);
}

/**
 * A parsed document as its one part.
 *
 * @example A root array
 * ```ts
 * import { wholePart } from "./document.ts";
 * console.log(wholePart([1, 2], { recordKeys: [], inParts: false }).records); // [1, 2]
 * ```
 */
export function wholePart(doc: unknown, shape: DocumentShape): DocumentPart {
  const part = { index: 0, first: true, last: true };
  if (Array.isArray(doc)) {
    return { ...part, root: "array", header: {}, recordsKey: "", records: doc };
  }
  if (!isObject(doc)) return { ...part, root: "other", header: {}, recordsKey: null, records: [] };
  // As the streaming reader does: the first field that is a record array.
  const key = Object.keys(doc).find((k) => shape.recordKeys.includes(k) && Array.isArray(doc[k]));
  if (key === undefined) {
    return { ...part, root: "object", header: doc, recordsKey: null, records: [] };
  }
  const { [key]: records, ...header } = doc;
  return { ...part, root: "object", header, recordsKey: key, records: records as unknown[] };
}

/**
 * Whether what {@link documentPart} gave is a part (not the output of an unreadable document).
 *
 * @example Tell a part from an output
 * ```ts
 * import { isPart, wholePart } from "./document.ts";
 * console.log(isPart(wholePart({}, { recordKeys: [], inParts: false }))); // true
 * ```
 */
export function isPart<Carry>(got: DocumentPart | ParseOutput<Carry>): got is DocumentPart {
  return "records" in got;
}
