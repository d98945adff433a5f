/**
 * The reader of documents rewritten whole (`FileRef.form` `whole`): read again entirely when
 * the file's size, mtime or inode moved, and handed to the parser with the carry of the version
 * delivered before it, so the parser sends only what changed. The content hash spares the parse
 * when only the mtime moved. A recorded range is not replayed but read again: its ids are
 * deterministic and its carry did not move.
 *
 * @module
 */
import { FileTooLargeError } from "../io/guarded_file.ts";
import { fingerprint64 } from "../hash.ts";
import type { SnapshotUnit } from "./cursor.ts";
import type { FileStat } from "./lines.ts";
import {
  type FileRef,
  type ReadContext,
  sameVersion,
  type UnitReader,
  wholeBacklog,
} from "./unit.ts";

/**
 * Reads documents rewritten whole.
 *
 * @example A document changed since its delivery is all to read
 * ```ts
 * import { documentReader } from "./document.ts";
 * const stat = { dev: 1, ino: 2, size: 10, mtimeMs: 6 };
 * console.log(documentReader.backlog(stat, { offset: 9, fileSize: 9, mtimeMs: 5 })); // 10
 * ```
 */
export const documentReader: UnitReader = {
  backlog: wholeBacklog,

  async read<Hint>(ref: FileRef<Hint>, stat: FileStat, ctx: ReadContext<Hint>): Promise<void> {
    const { state } = ctx;
    const known = ctx.pending(ref.path) ?? state.getUnit(ref.path);
    if (known?.status === "active" && sameVersion(known, stat)) return;
    const limit = ctx.limits().maxLineBytes;
    let bytes: Uint8Array;
    let opened: FileStat;
    {
      await using file = await ctx.scope.open(ref.path);
      opened = file.stat;
      try {
        bytes = await file.readAll(limit);
      } catch (error) {
        if (!(error instanceof FileTooLargeError)) throw error;
        ctx.failOnce(
          ref.path,
          stat,
          `${ref.path}: ${opened.size} bytes exceeds worker.max_line_bytes (${limit}), the limit ` +
            `for a document read whole; skipped until it changes`,
        );
        return;
      }
    }
    // Checked at every rewrite of a live file, so a fast hash (xxHash64), not MD5.
    const hash = fingerprint64(bytes);
    const base: SnapshotUnit = {
      key: ref.path,
      path: ref.path,
      kind: "snapshot",
      dev: opened.dev,
      ino: opened.ino,
      offset: 0,
      hash: "",
      // Kept across rewrites, replacements and deletions: it says what the server already has.
      carry: known?.carry ?? "",
      status: "active",
      fileSize: opened.size,
      mtimeMs: opened.mtimeMs,
    };
    if (known?.kind === "snapshot" && known.hash === hash) {
      if (!ctx.pending(ref.path)) {
        state.putUnit({ ...known, ...base, offset: known.offset, hash });
      }
      return;
    }
    const parsed = ctx.parse(ref, base, { bytes, firstLine: 1, whole: true });
    const cursor: SnapshotUnit = { ...base, offset: bytes.length, hash, carry: parsed.carry };
    if (parsed.totals) cursor.totals = parsed.totals;
    ctx.countRead(bytes.length);
    await ctx.add({
      range: { unit: ref.path, from: 0, to: bytes.length, fromLine: 0, form: "whole" },
      ref,
      cursor,
      items: parsed.items,
      messages: parsed.messages,
      bytes: parsed.bytes,
    });
  },

  replay<Hint>(_ref: FileRef<Hint>, range: { unit: string }): Promise<string> {
    return Promise.resolve(`${range.unit} is read whole; it is read again`);
  },
};
