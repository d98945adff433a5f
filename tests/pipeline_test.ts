import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { claudeCodeSource } from "../workers/claude_code/source.ts";
import { assertAllDelivered, rig, setup, withFaults } from "./rig.ts";

Deno.test("pipeline: delivery through server faults", async (t) => {
  await t.step(
    "500 is retried with the same Idempotency-Key",
    () =>
      withFaults(async (fs) => {
        fs.faults.push({ status: 500 }, { status: 502 });
        const s = await setup(fs);
        await s.worker.check();
        await assertAllDelivered(s, fs);
        assertEquals(fs.requests.length, 3);
        assertEquals(new Set(fs.requests.map((r) => r.key)).size, 1);
        s.state.close();
      }),
  );

  await t.step(
    "503 with Retry-After in seconds waits that long",
    () =>
      withFaults(async (fs) => {
        fs.faults.push({ status: 503, headers: { "retry-after": "1" } });
        const s = await setup(fs);
        await s.worker.check();
        await assertAllDelivered(s, fs);
        const gap = fs.requests[1].at - fs.requests[0].at;
        assert(gap >= 990, `second attempt after ${gap} ms, expected ≥ 1000`);
        s.state.close();
      }),
  );

  await t.step(
    "503 with Retry-After as an HTTP-date waits until then",
    () =>
      withFaults(async (fs) => {
        fs.faults.push({
          status: 503,
          headers: { "retry-after": new Date(Date.now() + 2500).toUTCString() },
        });
        const s = await setup(fs);
        await s.worker.check();
        await assertAllDelivered(s, fs);
        const gap = fs.requests[1].at - fs.requests[0].at;
        assert(gap >= 1400, `second attempt after ${gap} ms, expected to wait for the date`);
        s.state.close();
      }),
  );

  await t.step("429 is retried", () =>
    withFaults(async (fs) => {
      fs.faults.push({ status: 429 }, { status: 429 });
      const s = await setup(fs);
      await s.worker.check();
      await assertAllDelivered(s, fs);
      assertEquals(fs.requests.map((r) => r.answered), [429, 429, 200]);
      s.state.close();
    }));

  await t.step("a connection reset mid-answer is retried", () =>
    withFaults(async (fs) => {
      fs.faults.push({ reset: true });
      const s = await setup(fs);
      await s.worker.check();
      await assertAllDelivered(s, fs);
      assertEquals(fs.requests[0].answered, "reset");
      s.state.close();
    }));

  await t.step(
    "a reply slower than server.timeout is retried; the late one changes nothing",
    () =>
      withFaults(async (fs) => {
        fs.faults.push({ slowMs: 1500 });
        const s = await setup(fs);
        await s.worker.check();
        await assertAllDelivered(s, fs);
        assert(fs.requests.length >= 2);
        s.state.close();
      }),
  );

  await t.step(
    "401 pauses with checkpoints frozen, and resumes once the token is fixed",
    () =>
      withFaults(async (fs) => {
        const s = await setup(fs);
        s.sink.options = { ...s.sink.options, token: "wrong" };
        const running = s.worker.check();
        while (!s.pipeline.stats.pausedReason) await new Promise((r) => setTimeout(r, 20));
        assertStringIncludes(s.pipeline.stats.pausedReason, "HTTP 401");
        await new Promise((r) => setTimeout(r, 300)); // a few probes
        for (const path of s.files) {
          assertEquals(s.state.getUnit(path), undefined, "no checkpoint while paused");
        }
        assertEquals(fs.store.stats().total_messages, 0);
        s.sink.options = { ...s.sink.options, token: fs.token };
        s.pipeline.wake();
        await running;
        await assertAllDelivered(s, fs);
        assertEquals(s.pipeline.stats.pausedReason, "");
        s.state.close();
      }),
  );

  await t.step("413 splits the batch until it fits", () =>
    withFaults(async (fs) => {
      const s = await setup(fs, {}, 6);
      await s.worker.check();
      await assertAllDelivered(s, fs);
      assert(
        fs.requests.some((r) => r.answered === 413),
        "the server refused the whole batch first",
      );
      const accepted = fs.requests.filter((r) => r.answered === 200);
      assert(accepted.length >= 2, `split into ${accepted.length} accepted parts`);
      assert(accepted.every((r) => r.bytes <= 100_000));
      assertEquals(s.state.deadLetters(), []);
      s.state.close();
    }, { maxBodyBytes: 100_000 }));

  await t.step(
    "413 for a single message that alone is over the limit dead-letters it",
    () =>
      withFaults(async (fs) => {
        const s = await setup(fs, {}, 6);
        await s.worker.check();
        const dead = s.state.deadLetters();
        assert(dead.length >= 1);
        assert(dead.every((d) => d.status === 413));
        for (const path of s.files) {
          assertEquals(s.state.getUnit(path)?.offset, (await Deno.stat(path)).size);
        }
        assertEquals(fs.store.stats().total_messages, s.expected - dead.length);
        s.state.close();
      }, { maxBodyBytes: 40_000 }),
  );

  await t.step(
    "400 for one conversation dead-letters it and delivers the rest",
    () =>
      withFaults(async (fs) => {
        fs.rejectConversation = "00000001-0000-4000-8000-000000000000";
        const s = await setup(fs);
        await s.worker.check();
        for (const path of s.files) {
          assertEquals(s.state.getUnit(path)?.offset, (await Deno.stat(path)).size);
        }
        const stored = fs.store.listConversations().items.map((c) => c.uuid).sort();
        assertEquals(stored, [
          "00000000-0000-4000-8000-000000000000",
          "00000002-0000-4000-8000-000000000000",
        ]);
        const dead = s.state.deadLetters();
        assertEquals(dead.length, 1);
        assertEquals(dead[0].conversationUuid, fs.rejectConversation);
        assertEquals(dead[0].status, 400);
        assertStringIncludes(dead[0].error, "injected rejection");
        assertEquals(s.pipeline.stats.deadLettered, 1);
        s.state.close();
      }),
  );

  await t.step(
    "400 naming one message sets aside that message alone and delivers the rest",
    () =>
      withFaults(async (fs) => {
        const s = await setup(fs);
        const lines = (await Deno.readTextFile(s.files[1])).trim().split("\n");
        const culprit = lines.map((l) => JSON.parse(l)).filter((l) => l.uuid)[2].uuid as string;
        fs.rejectMessage = culprit;
        await s.worker.check();
        for (const path of s.files) {
          assertEquals(s.state.getUnit(path)?.offset, (await Deno.stat(path)).size);
        }
        const dead = s.state.deadLetters();
        assertEquals(dead.length, 1);
        assertEquals(dead[0].conversationUuid, "00000001-0000-4000-8000-000000000000");
        const kept = JSON.parse(s.state.deadLetterById(dead[0].id)!.payload);
        assertEquals(kept.messages.map((m: { uuid: string }) => m.uuid), [culprit]);
        assertEquals(fs.store.stats().total_messages, s.expected - 1);
        s.state.close();
      }),
  );

  await t.step("a second check sends nothing", () =>
    withFaults(async (fs) => {
      const s = await setup(fs);
      await s.worker.check();
      const before = fs.requests.length;
      await s.worker.check();
      assertEquals(fs.requests.length, before);
      s.state.close();
    }));
});

Deno.test("pipeline: batches are bounded by count and bytes", async (t) => {
  await t.step("batch_size conversations", () =>
    withFaults(async (fs) => {
      const s = await setup(fs, { batchSize: 1 });
      await s.worker.check();
      await assertAllDelivered(s, fs);
      assertEquals(fs.requests.length, 3);
      assert(fs.requests.every((r) => r.conversations.length === 1));
    }));
  await t.step("batch_max_bytes", () =>
    withFaults(async (fs) => {
      const s = await setup(fs, { batchMaxBytes: 1000 });
      await s.worker.check();
      await assertAllDelivered(s, fs);
      assertEquals(fs.requests.length, 3);
    }));
});

Deno.test("pipeline: a batch recorded before a crash is re-sent with its key and ids", () =>
  withFaults(async (fs) => {
    const s = await setup(fs);
    // First run: the server is down for good; the pipeline is stopped mid-retry, as a crash would.
    fs.faults.push(...Array.from({ length: 100 }, () => ({ status: 503 })));
    const running = s.worker.check().catch((e) => e);
    while (fs.requests.length < 2) await new Promise((r) => setTimeout(r, 10));
    s.pipeline.stop();
    await running;
    const firstKey = fs.requests[0].key;
    assertEquals(s.state.pendingBatches().map((b) => b.key), [firstKey]);
    for (const path of s.files) assertEquals(s.state.getUnit(path), undefined);
    s.state.close();
    // Restart on the same state: the pending batch goes out again with the same key.
    fs.faults.length = 0;
    const again = await setup(fs);
    again.state.close();
    const { state, worker } = rig(fs, claudeCodeSource, s.root, `${s.root}/state.db`);
    await worker.check();
    const resent = fs.requests.filter((r) => r.answered === 200);
    assertEquals(resent[0].key, firstKey);
    assertEquals(state.pendingBatches(), []);
    await assertAllDelivered({ ...s, state }, fs);
    state.close();
  }));

Deno.test("pipeline: a conversation spread over sub-agent files is sent with their summed counts", () =>
  withFaults(async (fs) => {
    const root = await Deno.makeTempDir();
    const fixture = new URL("./fixtures/claude_code/", import.meta.url).pathname;
    await new Deno.Command("cp", { args: ["-r", `${fixture}-home-dev-shop`, root] }).output();
    const { state, worker } = rig(fs, claudeCodeSource, root, `${root}/state.db`);
    const session = "11111111-1111-4111-8111-111111111111";
    const agreed = () => {
      const conversation = fs.store.listConversations().items.find((c) => c.uuid === session)!;
      const messages = fs.store.listMessages(session, 1, 1000)!.items;
      const usage = conversation.metadata.usage as Record<string, number>;
      const sum = (key: string) =>
        messages.reduce((n, m) => n + ((m.usage as Record<string, number>)?.[key] ?? 0), 0);
      assertEquals(conversation.metadata.message_count, messages.length);
      assertEquals(conversation.message_count, messages.length);
      for (const key of ["input", "output", "cache_read", "cache_write", "total"]) {
        assertEquals(usage[key], sum(key), `usage.${key}`);
      }
      assert(messages.some((m) => m.metadata?.agent_id), "sub-agent messages are there");
      return messages.length;
    };
    await worker.check();
    const before = agreed();
    // A sub-agent file grows: the conversation's counts follow.
    const agent = `${root}/-home-dev-shop/${session}/subagents/agent-a7c3.jsonl`;
    await Deno.writeTextFile(
      agent,
      JSON.stringify({
        isSidechain: true,
        sessionId: "agent-a7c3",
        agentId: "a7c3",
        type: "assistant",
        uuid: "sa-late",
        parentUuid: "sa1",
        requestId: "req_late",
        timestamp: "2025-11-20T10:05:00.000Z",
        message: {
          id: "msg_late",
          role: "assistant",
          model: "claude-sonnet-4-5",
          content: [{ type: "text", text: "done" }],
          usage: { input_tokens: 7, output_tokens: 11 },
        },
      }) + "\n",
      { append: true },
    );
    await worker.check();
    assertEquals(agreed(), before + 1);
    // A fresh start with the same state sends nothing new and keeps them agreeing.
    state.close();
    const again = rig(fs, claudeCodeSource, root, `${root}/state.db`);
    await again.worker.check();
    assertEquals(agreed(), before + 1);
    again.state.close();
  }));
