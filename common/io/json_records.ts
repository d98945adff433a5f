/**
 * A JSON document read as a stream of records, so that a document of any size is never held
 * whole: the elements of its record array (the root array, or the array under one of the
 * top-level keys named) come out one by one as their own bytes, to be parsed each with
 * `JSON.parse`; the root object's other fields come out as theirs. Only the structure of the
 * top two levels is checked here, byte by byte and without recursion (a value nested 100,000
 * deep costs a counter); each value's own syntax is checked when it is parsed.
 *
 * @module
 */
import { concatBytes } from "./bytes.ts";
import { backslashesBefore, isSpace, nextQuote, QUOTE } from "./json_bytes.ts";

/** What the splitter found, in document order. */
export type JsonEvent =
  /** The root value's kind (`other`: neither an object nor an array; nothing else follows). */
  | { type: "root"; kind: "object" | "array" | "other" }
  /** A field of the root object that is not a record array, with its value's bytes. */
  | { type: "field"; key: string; value: Uint8Array }
  /** A record array begins (`""`: the root array). */
  | { type: "records"; key: string }
  /** A record: the bytes of one element of a record array (none when not kept), its size. */
  | { type: "record"; index: number; bytes: Uint8Array; size: number }
  /** A record passed over: over the size limit, or nested deeper than allowed (`why`). */
  | { type: "refused"; index: number; size: number; why: string };

/**
 * The document is not well-formed where the splitter looks (or ends early); `offset` is the
 * byte where it went wrong.
 *
 * @example A document cut short
 * ```ts
 * import { JsonRecordSplitter, JsonStructureError } from "./json_records.ts";
 * const splitter = new JsonRecordSplitter({ recordKeys: ["messages"] });
 * splitter.push(new TextEncoder().encode('{"messages": [{"a": 1}'));
 * try {
 *   splitter.end();
 * } catch (error) {
 *   console.log(error instanceof JsonStructureError); // true
 * }
 * ```
 */
export class JsonStructureError extends Error {
  override name = "JsonStructureError";
  /** `offset`: the byte of the document where the problem is. */
  constructor(message: string, readonly offset: number) {
    super(`${message} at byte ${offset}`);
  }
}

/** What to split out. */
export interface SplitterOptions {
  /** Top-level keys whose array holds the records (the root array's elements always are). */
  recordKeys: readonly string[];
  /** Records above this many bytes are passed over (`refused`); the default is no limit. */
  maxRecordBytes?: number;
  /**
   * Records nested deeper than this are passed over (`refused`), so that nothing that parses
   * them recursively runs out of stack; the default is no limit.
   */
  maxRecordDepth?: number;
  /** Fields above this many bytes make the document fail; the default is no limit. */
  maxFieldBytes?: number;
  /** Whether to keep the records' bytes (`false`: count them only, `record` has no bytes). */
  keepRecords?: boolean;
  /** Whether to keep the fields' bytes (`false`: no `field` events). */
  keepFields?: boolean;
}

const enum S {
  BeforeRoot,
  ObjectKeyOrEnd,
  ObjectKey,
  Key,
  ObjectColon,
  FieldValue,
  ObjectCommaOrEnd,
  ArrayValueOrEnd,
  ArrayValue,
  ArrayCommaOrEnd,
  Value,
  AfterRoot,
  Done,
}

const decoder = new TextDecoder();

/**
 * Splits a JSON document fed in chunks into records and fields.
 *
 * @example Records of a session document
 * ```ts
 * import { JsonRecordSplitter } from "./json_records.ts";
 * const splitter = new JsonRecordSplitter({ recordKeys: ["messages"] });
 * const text = '{"sessionId": "s1", "messages": [{"id": "a"}, {"id": "b"}]}';
 * const events = [...splitter.push(new TextEncoder().encode(text)), ...splitter.end()];
 * console.log(events.map((e) => e.type)); // ["root", "field", "records", "record", "record"]
 * ```
 */
export class JsonRecordSplitter {
  readonly #keys: ReadonlySet<string>;
  readonly #o: Required<Omit<SplitterOptions, "recordKeys">>;
  #state = S.BeforeRoot;
  /** Bytes of the document before the current chunk. */
  #base = 0;
  /** Whether the record array being read is the root (it closes the document). */
  #rootArray = false;
  #recordsSeen = false;
  #key = "";
  #keyParts: Uint8Array[] = [];
  #recordIndex = 0;
  // The value being read: its nesting, whether in a string, and its bytes so far.
  #depth = 0;
  /** The deepest nesting of the value being read. */
  #deepest = 0;
  #inString = false;
  #escaped = false;
  #scalar = false;
  #isRecord = false;
  #parts: Uint8Array[] = [];
  #size = 0;
  #events: JsonEvent[] = [];

  /** Creates a splitter. */
  constructor(options: SplitterOptions) {
    this.#keys = new Set(options.recordKeys);
    this.#o = {
      maxRecordBytes: Infinity,
      maxRecordDepth: Infinity,
      maxFieldBytes: Infinity,
      keepRecords: true,
      keepFields: true,
      ...options,
    };
  }

  /** Feeds the next bytes of the document; returns what they completed. */
  push(chunk: Uint8Array): JsonEvent[] {
    this.#events = [];
    let i = 0;
    const n = chunk.length;
    while (i < n && this.#state !== S.Done) {
      if (this.#state === S.Value) {
        i = this.#value(chunk, i);
        continue;
      }
      if (this.#state === S.Key) {
        i = this.#keyBytes(chunk, i);
        continue;
      }
      const b = chunk[i];
      if (isSpace(b)) {
        i++;
        continue;
      }
      i = this.#structure(b, i);
    }
    this.#base += n;
    return this.#events;
  }

  /** Ends the document; throws {@link JsonStructureError} when it is incomplete. */
  end(): JsonEvent[] {
    this.#events = [];
    if (this.#state === S.Value && this.#scalar && this.#depth === 0) {
      // A scalar ends at the end of input only as the root value, which is `other` anyway.
      this.#state = S.AfterRoot;
    }
    if (this.#state !== S.AfterRoot && this.#state !== S.Done) {
      throw new JsonStructureError(
        this.#state === S.BeforeRoot ? "empty document" : "the document ends early",
        this.#base,
      );
    }
    return this.#events;
  }

  /** One structural byte outside values; returns where to go on. */
  #structure(b: number, i: number): number {
    const fail = (expected: string): never => {
      throw new JsonStructureError(
        `expected ${expected}, found ${JSON.stringify(String.fromCharCode(b))}`,
        this.#base + i,
      );
    };
    switch (this.#state) {
      case S.BeforeRoot:
        if (b === 0x7b) {
          this.#events.push({ type: "root", kind: "object" });
          this.#state = S.ObjectKeyOrEnd;
        } else if (b === 0x5b) {
          this.#events.push({ type: "root", kind: "array" }, { type: "records", key: "" });
          this.#rootArray = true;
          this.#state = S.ArrayValueOrEnd;
        } else {
          this.#events.push({ type: "root", kind: "other" });
          this.#state = S.Done;
        }
        return i + 1;
      case S.ObjectKeyOrEnd:
      case S.ObjectKey:
        if (b === QUOTE) {
          this.#keyParts = [];
          this.#state = S.Key;
        } else if (b === 0x7d && this.#state === S.ObjectKeyOrEnd) this.#state = S.AfterRoot;
        else fail("a key");
        return i + 1;
      case S.ObjectColon:
        if (b !== 0x3a) fail('":"');
        this.#state = S.FieldValue;
        return i + 1;
      case S.FieldValue:
        // Only the first record array holds records (a later one, under a repeated key say,
        // is a field).
        if (b === 0x5b && this.#keys.has(this.#key) && !this.#recordsSeen) {
          this.#recordsSeen = true;
          this.#events.push({ type: "records", key: this.#key });
          this.#rootArray = false;
          this.#state = S.ArrayValueOrEnd;
          return i + 1;
        }
        this.#startValue(false, b);
        return i;
      case S.ObjectCommaOrEnd:
        if (b === 0x2c) this.#state = S.ObjectKey;
        else if (b === 0x7d) this.#state = S.AfterRoot;
        else fail('"," or "}"');
        return i + 1;
      case S.ArrayValueOrEnd:
      case S.ArrayValue:
        if (b === 0x5d && this.#state === S.ArrayValueOrEnd) {
          this.#state = this.#rootArray ? S.AfterRoot : S.ObjectCommaOrEnd;
          return i + 1;
        }
        if (b === 0x5d || b === 0x2c) fail("a value");
        this.#startValue(true, b);
        return i;
      case S.ArrayCommaOrEnd:
        if (b === 0x2c) this.#state = S.ArrayValue;
        else if (b === 0x5d) this.#state = this.#rootArray ? S.AfterRoot : S.ObjectCommaOrEnd;
        else fail('"," or "]"');
        return i + 1;
      default:
        return fail("the end of the document");
    }
  }

  /** The bytes of a key, up to its closing quote. */
  #keyBytes(chunk: Uint8Array, i: number): number {
    const close = this.#closingQuote(chunk, i);
    this.#keyParts.push(chunk.slice(i, close === -1 ? chunk.length : close));
    if (close === -1) return chunk.length;
    const raw = concatBytes(this.#keyParts);
    try {
      this.#key = JSON.parse(`"${decoder.decode(raw)}"`);
    } catch {
      throw new JsonStructureError("malformed key", this.#base + i);
    }
    this.#state = S.ObjectColon;
    return close + 1;
  }

  /**
   * Where the string being read from `i` closes (the index of its quote), or -1 when not in
   * this chunk. `#escaped` carries a backslash that ended the chunk before (it escapes the
   * first byte of this one) and is left saying whether this one ends on such a backslash.
   */
  #closingQuote(chunk: Uint8Array, i: number): number {
    const lo = this.#escaped ? i + 1 : i;
    this.#escaped = false;
    let from = lo;
    while (true) {
      const q = nextQuote(chunk, from);
      if (q === -1) {
        this.#escaped = backslashesBefore(chunk, chunk.length, lo) % 2 === 1;
        return -1;
      }
      // Escaped when an odd run of backslashes stands right before it.
      if (backslashesBefore(chunk, q, lo) % 2 === 0) return q;
      from = q + 1;
    }
  }

  #startValue(isRecord: boolean, b: number): void {
    this.#isRecord = isRecord;
    this.#depth = 0;
    this.#deepest = 0;
    this.#inString = false;
    this.#escaped = false;
    this.#scalar = b !== 0x7b && b !== 0x5b && b !== QUOTE;
    this.#parts = [];
    this.#size = 0;
    this.#state = S.Value;
  }

  /** Reads a value from `i`; returns where it stopped (at its end, or the chunk's). */
  #value(chunk: Uint8Array, start: number): number {
    const n = chunk.length;
    let i = start;
    let done = -1;
    if (this.#scalar) {
      while (i < n) {
        const b = chunk[i];
        if (isSpace(b) || b === 0x2c || b === 0x5d || b === 0x7d) {
          done = i;
          break;
        }
        i++;
      }
    } else {
      // The hot loop of the splitter: nesting in locals, strings skipped with `indexOf`.
      let depth = this.#depth;
      let deepest = this.#deepest;
      while (i < n) {
        if (this.#inString) {
          const close = this.#closingQuote(chunk, i);
          if (close === -1) {
            i = n;
            break;
          }
          this.#inString = false;
          i = close + 1;
          if (depth === 0) {
            done = i;
            break;
          }
        }
        // Outside strings only these five bytes matter; all of them are below 0x7e.
        for (; i < n; i++) {
          const b = chunk[i];
          if (b === QUOTE) break;
          if (b === 0x7b || b === 0x5b) {
            if (++depth > deepest) deepest = depth;
          } else if ((b === 0x7d || b === 0x5d) && --depth === 0) {
            done = i + 1;
            break;
          }
        }
        if (done !== -1) {
          i = done;
          break;
        }
        if (i < n) {
          this.#inString = true;
          i++;
        }
      }
      this.#depth = depth;
      this.#deepest = deepest;
    }
    this.#keep(chunk.subarray(start, done === -1 ? n : done));
    if (done === -1) return n;
    this.#finishValue();
    return done;
  }

  #keep(part: Uint8Array): void {
    this.#size += part.length;
    const limit = this.#isRecord ? this.#o.maxRecordBytes : this.#o.maxFieldBytes;
    const keep = this.#isRecord ? this.#o.keepRecords : this.#o.keepFields;
    if (part.length === 0) return;
    if (!keep || this.#size > limit) {
      this.#parts = [];
      return;
    }
    // A copy: the caller may read the next chunk into the same buffer.
    this.#parts.push(part.slice());
  }

  #finishValue(): void {
    if (this.#isRecord) {
      const index = this.#recordIndex++;
      const size = this.#size;
      const why = size > this.#o.maxRecordBytes
        ? `of ${size} bytes exceeds the limit of ${this.#o.maxRecordBytes}`
        : this.#deepest > this.#o.maxRecordDepth
        ? `is nested ${this.#deepest} levels deep, deeper than ${this.#o.maxRecordDepth}`
        : "";
      const bytes = this.#o.keepRecords ? concatBytes(this.#parts) : new Uint8Array(0);
      this.#events.push(
        why ? { type: "refused", index, size, why } : { type: "record", index, bytes, size },
      );
      this.#state = S.ArrayCommaOrEnd;
    } else {
      if (this.#size > this.#o.maxFieldBytes) {
        throw new JsonStructureError(
          `field ${JSON.stringify(this.#key)} of ${this.#size} bytes is over the limit of ` +
            `${this.#o.maxFieldBytes}`,
          this.#base,
        );
      }
      if (this.#o.keepFields) {
        this.#events.push({ type: "field", key: this.#key, value: concatBytes(this.#parts) });
      }
      this.#state = S.ObjectCommaOrEnd;
    }
    this.#parts = [];
  }
}
