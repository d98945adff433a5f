/**
 * `dead-letters`: listing, showing and replaying what the server refused, with the worker as a
 * process and a fault-injecting server in front of a real store.
 */
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { sessionLines } from "../bench/corpus.ts";
import { startFaultServer } from "./fault_server.ts";
import { runWorker, scratch } from "./helpers.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

Deno.test({
  name: "dead-letters: list, show and replay what the server refused",
  ...opts,
  fn: async (t) => {
    const fs = startFaultServer();
    try {
      const s = await scratch(fs);
      const refused = "0d1e0000-0000-4000-8000-000000000001";
      const accepted = "0d1e0000-0000-4000-8000-000000000002";
      await Deno.mkdir(`${s.data}/-p`);
      for (const id of [refused, accepted]) {
        const lines = sessionLines({ sessionId: id, turns: 2, seed: 3 });
        await Deno.writeTextFile(`${s.data}/-p/${id}.jsonl`, lines.join("\n") + "\n");
      }
      fs.rejectConversation = refused;
      await runWorker([...s.base, "--once"]);
      const dl = (...args: string[]) =>
        runWorker(["dead-letters", ...args, "--config", s.cfg, "--state-dir", s.state]);

      await t.step("list names the conversation, the status and the reason", async () => {
        const out = await dl();
        assertEquals(out.code, 0);
        assertStringIncludes(out.stdout, `#1  `);
        assertStringIncludes(out.stdout, `HTTP 400  ${refused}  pending`);
        assertStringIncludes(out.stdout, "injected rejection");
        assertStringIncludes(out.stdout, "1 dead letter(s), 1 not replayed");
      });

      await t.step("show prints the conversation as it was sent", async () => {
        const out = await dl("show", "1");
        assertEquals(out.code, 0);
        assertStringIncludes(out.stdout, `"uuid": "${refused}"`);
        assertStringIncludes(out.stdout, "conversation as sent:");
      });

      await t.step("a bad id or action is a usage error", async () => {
        assertEquals((await dl("show", "x")).code, 2);
        assertEquals((await dl("frobnicate")).code, 2);
        assertEquals((await dl("replay")).code, 2, "replay needs an id or --all");
      });

      await t.step("replay, once the server accepts it, delivers it once", async () => {
        const refusedAgain = await dl("replay", "1");
        assertEquals(refusedAgain.code, 1, "still refused: kept");
        assertStringIncludes(refusedAgain.stderr, "#1 not replayed (kept)");
        fs.rejectConversation = undefined;
        const out = await dl("replay", "1");
        assertEquals(out.code, 0, out.stderr);
        assertStringIncludes(out.stdout, `#1 replayed: conversation ${refused}`);
        const stored = fs.store.listConversations().items.map((c) => c.uuid).sort();
        assertEquals(stored, [refused, accepted].sort());
        const again = await dl("replay", "--all");
        assertStringIncludes(again.stdout, "no dead letters to replay");
        assertStringIncludes((await dl("list")).stdout, "0 not replayed");
        assert(fs.store.stats().total_messages > 0);
      });
    } finally {
      await fs.close();
    }
  },
});
