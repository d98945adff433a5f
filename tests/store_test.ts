/**
 * The conversation store opened by several processes at once, as the workers `start` launches
 * together open one new embedded store.
 */
import { assertEquals } from "./assert.ts";
import { REPO } from "./helpers.ts";

Deno.test("store: six processes opening one new store at once all succeed", async () => {
  const dir = await Deno.makeTempDir();
  const code = `import { ConversationStore } from "${REPO}/store/store.ts";
    await new Promise((r) => setTimeout(r, Number(Deno.args[0]) - Date.now()));
    new ConversationStore("${dir}/conversations.db").close();`;
  const at = Date.now() + 1500;
  const runs = await Promise.all(
    Array.from({ length: 6 }, () =>
      new Deno.Command(Deno.execPath(), {
        args: ["eval", "--config", `${REPO}/deno.json`, code, String(at)],
        stderr: "piped",
      }).output()),
  );
  assertEquals(
    runs.map((r) => r.code),
    [0, 0, 0, 0, 0, 0],
    runs.map((r) => new TextDecoder().decode(r.stderr)).join("\n"),
  );
  await Deno.remove(dir, { recursive: true });
});
