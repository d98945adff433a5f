import { assert, assertEquals, assertStringIncludes, assertThrows } from "./assert.ts";
import { formatStoredStatus, storedStatus } from "../common/cli/stored_status.ts";
import { StateLock } from "../common/state/lock.ts";
import { StateStore } from "../common/state/state.ts";

Deno.test("stored status: what the state database says, without taking the lock", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    await t.step("nothing has run", () => {
      const status = storedStatus(dir, "codex");
      assertEquals(status, {
        worker: "codex",
        running: false,
        total_synced: 0,
        files: 0,
        dead_letters: 0,
        has_state: false,
      });
      assertStringIncludes(formatStoredStatus(status), "nothing delivered yet");
    });
    await t.step("a worker holds the lock: running, and who; the lock stays held", () => {
      const state = new StateStore(`${dir}/codex.state.db`);
      state.addCounter("messages", 42);
      state.close();
      const lock = StateLock.acquire(dir, "codex", "codex-sync-worker");
      try {
        const status = storedStatus(dir, "codex");
        assertEquals(status.running, true);
        assertStringIncludes(status.held_by!, `pid ${Deno.pid} on `);
        assertEquals(status.total_synced, 42);
        assert(status.has_state);
        assertStringIncludes(formatStoredStatus(status), "codex: running (pid ");
        // Asking took nothing: a second worker is still refused.
        let refused = false;
        try {
          StateLock.acquire(dir, "codex", "codex-sync-worker").release();
        } catch {
          refused = true;
        }
        assert(refused, "the lock was still held");
      } finally {
        lock.release();
      }
      assertEquals(storedStatus(dir, "codex").running, false);
    });
    await t.step("FIFOs where the lock and the state belong are reported, not waited on", () => {
      const fifos = Deno.makeTempDirSync();
      try {
        for (const name of ["gemini.lock", "gemini.state.db"]) {
          new Deno.Command("mkfifo", { args: [`${fifos}/${name}`] }).outputSync();
        }
        const error = assertThrows(() => storedStatus(fifos, "gemini"));
        assertStringIncludes(error.message, "gemini.state.db is not a file");
      } finally {
        Deno.removeSync(fifos, { recursive: true });
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
