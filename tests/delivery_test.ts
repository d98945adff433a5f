/**
 * Only a real acknowledgement moves a checkpoint, and only evidence about a conversation sets
 * it aside: the delivery rules against servers and proxies that lie, redirect, refuse
 * everything or echo secrets.
 */
import { assert, assertEquals, assertRejects, assertStringIncludes } from "./assert.ts";
import { DeliveryError } from "../common/delivery/delivery.ts";
import { assertAllDelivered, setup, withFaults } from "./rig.ts";
import type { Setup } from "./rig.ts";

const counts = {
  inserted_conversations: 0,
  inserted_messages: 0,
  updated_conversations: 0,
  updated_messages: 0,
};

async function until(condition: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function assertNothingMoved(s: Setup): void {
  for (const path of s.files) {
    assertEquals(s.state.getUnit(path), undefined, `no checkpoint for ${path}`);
  }
}

Deno.test("delivery: only a real acknowledgement moves a checkpoint", async (t) => {
  await t.step('200 {"success": false} is not an acknowledgement', () =>
    withFaults(async (fs) => {
      const refusal = { status: 200, body: '{"success":false,"message":"database locked"}' };
      fs.faults.push(...Array.from({ length: 10 }, () => refusal));
      const s = await setup(fs, { maxAttempts: 3 });
      const error = await assertRejects(() => s.worker.check());
      assert(error instanceof DeliveryError, `${error}`);
      assertStringIncludes(error.message, '"success" is false: database locked');
      assertNothingMoved(s);
      assertEquals(s.state.deadLetters(), []);
      fs.faults.length = 0;
      await s.worker.check();
      await assertAllDelivered(s, fs);
      s.state.close();
    }));

  await t.step(
    "a redirect is not followed: it pauses and says where it pointed",
    () =>
      withFaults(async (fs) => {
        fs.faults.push(
          ...Array.from({ length: 4 }, () => ({
            status: 302,
            headers: { location: "/acknowledged" },
          })),
        );
        const s = await setup(fs, { maxAttempts: 2 });
        const error = await assertRejects(() => s.worker.check());
        assert(error instanceof DeliveryError, `${error}`);
        assertStringIncludes(error.message, `redirects to ${fs.url}/acknowledged`);
        assertEquals(
          fs.requests.filter((r) => r.path === "/acknowledged").length,
          0,
          "the redirect target was never asked",
        );
        assertNothingMoved(s);
        s.state.close();
      }),
  );

  await t.step(
    "answers that are not acknowledgements are retried, never set aside",
    () =>
      withFaults(async (fs) => {
        fs.faults.push(
          { status: 202, body: JSON.stringify({ success: true, ...counts }) },
          { status: 204 },
          { status: 300 },
          { status: 200, body: '{"code":"0","message":"ok","data":{}}' },
          { status: 200, body: "<html>login</html>" },
          { echo: true },
        );
        const s = await setup(fs);
        await s.worker.check();
        await assertAllDelivered(s, fs);
        assertEquals(s.state.deadLetters(), [], "nothing was set aside");
        assertEquals(
          fs.requests.map((r) => r.answered).slice(0, 7),
          [202, 204, 300, 200, 200, "echo", 200],
        );
        s.state.close();
      }),
  );

  await t.step("an answer of gigabytes is not read whole", () =>
    withFaults(async (fs) => {
      fs.faults.push({ hugeBytes: 3_000_000_000 });
      const s = await setup(fs);
      // The default server.timeout: a client that reads on would have a minute to do it.
      s.sink.options = { ...s.sink.options, timeoutMs: 60_000 };
      const before = Deno.memoryUsage().rss;
      const started = performance.now();
      await s.worker.check();
      await assertAllDelivered(s, fs);
      const grew = (Deno.memoryUsage().rss - before) / 1e6;
      assert(grew < 200, `resident size grew by ${grew.toFixed(0)} MB`);
      assert(performance.now() - started < 10_000, "no time was spent reading the answer");
      s.state.close();
    }));
});

Deno.test("delivery: setting data aside needs evidence about the conversation", async (t) => {
  await t.step(
    "400 for every batch pauses; nothing is set aside; a fixed server gets all",
    () =>
      withFaults(async (fs) => {
        fs.rejectAll = true;
        const s = await setup(fs);
        const running = s.worker.check();
        await until(() => s.pipeline.stats.pausedReason.includes("accepts nothing"), "the pause");
        await new Promise((r) => setTimeout(r, 300)); // a few probes
        // The server is fixed while the worker waits after a refused probe, not between a
        // refusal and its probe (a server that accepts the probe then says the data is at fault).
        await until(() => {
          const last = fs.requests.at(-1);
          return last?.conversations.length === 0 && last.answered === 400;
        }, "a refused probe");
        assertEquals(s.state.deadLetters(), []);
        assertNothingMoved(s);
        fs.rejectAll = false;
        s.pipeline.wake();
        await running;
        await assertAllDelivered(s, fs);
        assertEquals(s.pipeline.stats.pausedReason, "");
        s.state.close();
      }),
  );

  await t.step(
    "a server that breaks mid-run: a few set aside, then the breaker pauses",
    () =>
      withFaults(async (fs) => {
        fs.rejectAll = true;
        fs.acceptFirst = 3;
        const s = await setup(fs, { batchSize: 1 }, 1, 12);
        const running = s.worker.check();
        await until(
          () => s.pipeline.stats.pausedReason.includes("refused 5 of the last"),
          "breaker",
        );
        const setAside = s.state.deadLetters().length;
        assert(setAside <= 4, `${setAside} conversations set aside before the breaker opened`);
        fs.rejectAll = false;
        s.pipeline.wake();
        await running;
        assertEquals(fs.store.stats().total_conversations, 12 - setAside);
        s.state.close();
      }),
  );

  await t.step(
    "a refusal that names nothing, by a server that works: set aside",
    () =>
      withFaults(async (fs) => {
        fs.faults.push({ status: 400, body: '{"code":400,"message":"bad request"}' });
        const s = await setup(fs, {}, 2, 1);
        await s.worker.check();
        const dead = s.state.deadLetters();
        assertEquals(dead.length, 1, "the empty control batch was accepted: the data is at fault");
        assertEquals(fs.requests.filter((r) => r.conversations.length === 0).length, 1);
        s.state.close();
      }),
  );
});

Deno.test("delivery: what a server echoes never carries the token out", () =>
  withFaults(async (fs) => {
    fs.echoAuthorization = true;
    fs.rejectConversation = "00000001-0000-4000-8000-000000000000";
    fs.faults.push({ status: 500 }, { status: 401 });
    const s = await setup(fs);
    await s.worker.check();
    const dead = s.state.deadLetters();
    assertEquals(dead.length, 1);
    assertStringIncludes(dead[0].error, "[redacted]", "the echo was there, masked");
    for (const text of [dead[0].error, s.pipeline.stats.lastError]) {
      assert(!text.includes(fs.token), `the token leaked: ${text}`);
    }
    s.state.close();
  }));
