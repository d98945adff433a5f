/**
 * Fingerprints: long text is hashed in pieces, to the same fingerprint as its UTF-8 bytes, and
 * without leaving the hasher's memory as large as the longest text it ever saw.
 */
import { Fingerprint64, fingerprint64 } from "../common/hash.ts";
import { assert, assertEquals } from "./assert.ts";
import { REPO } from "./helpers.ts";

const encoder = new TextEncoder();

Deno.test("hash: long text has the fingerprint of its UTF-8 bytes", async (t) => {
  await t.step("surrogate pairs and lone surrogates at every place a piece may end", () => {
    const piece = 1 << 18;
    for (const at of [piece - 2, piece - 1, piece, piece + 1]) {
      for (const odd of ["😀", "\ud800", "\udc00", "é", "\ud83d\ud83d"]) {
        const text = "a".repeat(at) + odd + "b".repeat(piece + 7);
        const bytes = encoder.encode(text);
        const what = `${JSON.stringify(odd)} at ${at}`;
        assertEquals(fingerprint64(text), fingerprint64(bytes), what);
        assertEquals(new Fingerprint64().update(text).digest(), fingerprint64(bytes), what);
      }
    }
  });

  await t.step("a 16 MiB text leaves the hasher's memory small", async () => {
    // In a process of its own: the memory taken is the process's resident size.
    const code = `import { fingerprint64 } from "${REPO}/common/hash.ts";
      // Made flat (a joined string is flattened, in full, when it is first cut).
      const text = new TextDecoder().decode(new TextEncoder().encode("€" + "x".repeat(1 << 24)));
      fingerprint64("warm up");
      const before = Deno.memoryUsage().rss;
      fingerprint64(text);
      console.log(Deno.memoryUsage().rss - before);`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", "--config", `${REPO}/deno.json`, code],
      stderr: "inherit",
    }).output();
    assertEquals(out.code, 0);
    const grown = Number(new TextDecoder().decode(out.stdout).trim());
    // Measured: 4.6 MB; hashed whole, the text was copied into the hasher's memory: 21 MB more,
    // kept for good.
    assert(grown < 10e6, `resident size grew by ${(grown / 1e6).toFixed(1)} MB`);
  });
});
