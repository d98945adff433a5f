/**
 * The search module's passages: the window with the most query words, matched as the index
 * matches them (case and diacritics folded, the last word a prefix), marked, cut with `…`, and
 * bounded in time and memory on a huge message.
 */
import { snippetOf } from "../store/search.ts";
import { assert, assertEquals } from "./assert.ts";

/** The markers as brackets, for reading. */
const shown = (s: string) => s.replaceAll("\u0001", "[").replaceAll("\u0002", "]");

Deno.test("search: snippets", async (t) => {
  await t.step("marks every query word; the last one as a prefix", () => {
    assertEquals(
      shown(snippetOf("rounding the cart, then rounds again", "cart roun")),
      "[rounding] the [cart], then [rounds] again",
    );
    assertEquals(shown(snippetOf("a cartwheel", "cart rounding")), "a cartwheel");
  });

  await t.step("folds case and diacritics as the index does", () => {
    assertEquals(shown(snippetOf("Ein CAFÉ am Markt", "cafe")), "Ein [CAFÉ] am Markt");
  });

  await t.step("picks the window holding the most distinct words, cut with …", () => {
    const text = `${"filler ".repeat(30)}tax once ${"more ".repeat(30)}tax and rounding here ${
      "tail ".repeat(30)
    }`;
    const s = shown(snippetOf(text, "tax rounding", 6));
    assertEquals(s, "…[tax] and [rounding] here tail tail…");
  });

  await t.step("a match at the very end keeps context before it", () => {
    assertEquals(shown(snippetOf("one two three four five", "five", 3)), "…three four [five]");
  });

  await t.step("no match (a tokenizer difference) shows the beginning", () => {
    assertEquals(
      shown(snippetOf("nothing matches here at all", "zzz", 3)),
      "nothing matches here…",
    );
  });

  await t.step("a huge message full of matches costs little", () => {
    const huge = "word ".repeat(500_000);
    const t0 = performance.now();
    const s = shown(snippetOf(huge, "word"));
    assert(performance.now() - t0 < 500, `took ${performance.now() - t0} ms`);
    assert(s.startsWith("[word] [word]") && s.endsWith("…"), s.slice(0, 80));
  });

  await t.step("a word at the end of a 10 MB message is found without splitting it all", () => {
    const huge = `${"word ".repeat(2_000_000)}the Needle`;
    const t0 = performance.now();
    const s = shown(snippetOf(huge, "needle"));
    assert(performance.now() - t0 < 500, `took ${performance.now() - t0} ms`);
    assert(s.startsWith("…") && s.endsWith("the [Needle]"), s);
  });
});
