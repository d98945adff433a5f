import { DatabaseSync } from "node:sqlite";
import { assertEquals } from "./assert.ts";
import { writeCorpus } from "../bench/corpus.ts";
import { jsonlFiles } from "../bench/bare_scan.ts";
import { storeFloor } from "../bench/store_floor.ts";

Deno.test("store floor: stores every line of the corpus, and with its key each message once", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const corpus = await writeCorpus(`${dir}/projects`, 300_000, { seed: 3 });
    // The same sessions twice: a key on the id keeps each message once, no key keeps both.
    const files = [...jsonlFiles(`${dir}/projects`), ...jsonlFiles(`${dir}/projects`)];
    const rows = (db: string) => {
      const store = new DatabaseSync(db);
      const { n, texts } = store.prepare(
        "SELECT COUNT(*) AS n, SUM(length(text) > 0) AS texts FROM messages",
      ).get() as { n: number; texts: number };
      store.close();
      return { n, texts };
    };
    await t.step("with the key", () => {
      const figures = storeFloor(files, `${dir}/key.db`, { key: true });
      assertEquals(figures, { messages: 2 * corpus.lines, bytes: 2 * corpus.bytes });
      const { n, texts } = rows(`${dir}/key.db`);
      assertEquals(n, corpus.lines);
      assertEquals(texts > 0, true, "the messages' texts are stored");
    });
    await t.step("without it", () => {
      storeFloor(files, `${dir}/nokey.db`, { key: false });
      assertEquals(rows(`${dir}/nokey.db`).n, 2 * corpus.lines);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
