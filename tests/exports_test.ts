/**
 * End to end for the export workers: worker processes started with their binary's permission
 * flags, the reference server as a process, exports dropped into the folder as a user would
 * (whole, copied in slowly, corrupt, cut short, hostile), and SIGKILL in the middle.
 */
import { DatabaseSync } from "node:sqlite";
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import {
  claudeConversation,
  geminiRecord,
  gptConversation,
  gptExportZip,
  gptUuids,
} from "../bench/export_corpus.ts";
import { zipBytes } from "../bench/zip_writer.ts";
import {
  assertKillSafe,
  delay,
  dropSettled,
  eventually,
  freePort,
  runWorker,
  scratch,
  type ServerProcess,
  serverTest,
  serverUuids,
  spawnWorker,
} from "./helpers.ts";

const HEX = "a".repeat(64);

const uuidsOf = gptUuids;

const gptId = (n: number) => `6925e174-0000-8000-8000-${String(n).padStart(12, "0")}`;

function summaryOf(stdout: string): { messages: number; exports?: string[] } {
  return JSON.parse(stdout.trim().split("\n").at(-1)!);
}

async function once(s: { base: string[] }, worker = "openai") {
  const out = await runWorker([...s.base, "--once", "--json"], {}, worker);
  assertEquals(out.code, 0, out.stderr);
  return { ...out, summary: summaryOf(out.stdout) };
}

function assertExactly(server: ServerProcess, expected: readonly string[]): void {
  const held = serverUuids(server);
  assertEquals(held.length, new Set(held).size, "each message once");
  assertEquals(new Set(held), new Set(expected));
}

serverTest(
  "exports e2e: v1, then v2 with a grown and a new conversation, then copies",
  async (server, t) => {
    const s = await scratch(server, { flag: "data-dir" });
    const v1 = [1, 2, 3].map((n) => gptConversation(gptId(n), { turns: 4, sharded: true }));
    await dropSettled(
      `${s.data}/${HEX}-2026-11-01-10-00-00.zip`,
      gptExportZip(v1, { shardSize: 2 }),
    );
    await t.step("the first export delivers every message", async () => {
      const { summary } = await once(s);
      assertEquals(summary.messages, 12);
      assertExactly(server, uuidsOf(v1));
    });
    const v2 = [
      gptConversation(gptId(1), { turns: 6, sharded: true }),
      v1[1],
      v1[2],
      gptConversation(gptId(4), { turns: 2, sharded: true }),
    ];
    const v2Zip = gptExportZip(v2, { shardSize: 2 });
    await dropSettled(`${s.data}/${HEX}-2026-11-08-10-00-00.zip`, v2Zip);
    await t.step("a newer export sends exactly the new messages", async () => {
      const { summary } = await once(s);
      assertEquals(summary.messages, 2 + 2);
      assertStringIncludes(summary.exports![0], "1 new, 1 changed, 2 unchanged, 4 messages sent");
      assertExactly(server, uuidsOf(v2));
    });
    await t.step(
      "the same export again, or a copy under another name, sends nothing",
      async () => {
        await dropSettled(`${s.data}/my copy.zip`, v2Zip);
        const { summary, stderr } = await once(s);
        assertEquals(summary.messages, 0);
        assertStringIncludes(stderr, "was imported before; nothing to send");
        assertExactly(server, uuidsOf(v2));
      },
    );
    await t.step("the user's files are left as they were", () => {
      const names = [...Deno.readDirSync(s.data)].map((e) => e.name).sort();
      assertEquals(names, [
        `${HEX}-2026-11-01-10-00-00.zip`,
        `${HEX}-2026-11-08-10-00-00.zip`,
        "my copy.zip",
      ]);
    });
  },
);

serverTest(
  "exports e2e: a shard missing, a corrupt zip, a cut-short JSON; replaced, they are read",
  async (server, t) => {
    const s = await scratch(server, { flag: "data-dir" });
    const convs = [1, 2, 3, 4].map((n) => gptConversation(gptId(n), { turns: 2, sharded: true }));
    await t.step(
      "a shard the manifest lists and the zip lacks is named; the rest arrives",
      async () => {
        await dropSettled(
          `${s.data}/partial.zip`,
          gptExportZip(convs, { shardSize: 2, missingShards: [1] }),
        );
        const { summary, stderr } = await once(s);
        assertStringIncludes(stderr, "the export lacks conversations-001.json");
        assertStringIncludes(
          summary.exports![0],
          "missing from the export: conversations-001.json",
        );
        assertExactly(server, uuidsOf(convs.slice(0, 2)));
        await Deno.remove(`${s.data}/partial.zip`);
      },
    );
    await t.step("a corrupt zip sends nothing, not even its good shard", async () => {
      const zip = gptExportZip(convs, { shardSize: 2 });
      // Damage the second shard's data: its CRC no longer matches.
      const at = new TextDecoder("latin1").decode(zip).indexOf("conversations-001.json") + 60;
      const bad = zip.slice();
      bad[at] ^= 0xff;
      bad[at + 1] ^= 0xff;
      await dropSettled(`${s.data}/export.zip`, bad);
      const { summary, stderr } = await once(s);
      assertStringIncludes(stderr, "export.zip: not imported:");
      assertStringIncludes(stderr, "conversations-001.json");
      assertEquals(summary.messages, 0);
      assertExactly(server, uuidsOf(convs.slice(0, 2)));
    });
    await t.step("the corrupt zip is read once replaced", async () => {
      await dropSettled(`${s.data}/export.zip`, gptExportZip(convs, { shardSize: 2 }));
      await once(s);
      assertExactly(server, uuidsOf(convs));
    });
    await t.step("a cut-short conversations.json sends nothing until it is whole", async () => {
      const more = [5, 6].map((n) => gptConversation(gptId(n), { turns: 2 }));
      const json = new TextEncoder().encode(JSON.stringify(more));
      await Deno.mkdir(`${s.data}/extracted`);
      await dropSettled(
        `${s.data}/extracted/conversations.json`,
        json.subarray(0, json.length - 40),
      );
      const { stderr } = await once(s);
      assertStringIncludes(stderr, "conversations.json: not imported:");
      assertExactly(server, uuidsOf(convs));
      await dropSettled(`${s.data}/extracted/conversations.json`, json);
      await once(s);
      assertExactly(server, uuidsOf([...convs, ...more]));
    });
  },
);

serverTest(
  "exports e2e: a zip copied in slowly is read only once complete; status reports it",
  async (server) => {
    const s = await scratch(server, { flag: "data-dir", extra: "  export_settle_seconds: 2\n" });
    const convs = [1, 2, 3].map((n) => gptConversation(gptId(n), { turns: 40, words: 200 }));
    const zip = gptExportZip(convs);
    const port = freePort();
    const worker = spawnWorker([...s.base, "--status-port", String(port)], {}, "openai");
    try {
      await worker.waitFor("syncing");
      const path = `${s.data}/${HEX}-2026-11-01-10-00-00.zip`;
      const file = await Deno.open(path, { write: true, create: true });
      const step = Math.ceil(zip.length / 8);
      for (let at = 0; at < zip.length; at += step) {
        await file.write(zip.subarray(at, at + step));
        await delay(300);
      }
      file.close();
      await eventually(
        () => serverUuids(server).length === 120 || undefined,
        20_000,
        "the export",
      );
      assert(!worker.stderr().includes("not imported"), worker.stderr());
      assertExactly(server, uuidsOf(convs));
      const token = (await Deno.readTextFile(`${s.state}/openai.status-token`)).trim();
      const status = await eventually(
        async () => {
          const response = await fetch(`http://127.0.0.1:${port}/status`, {
            headers: { authorization: `Bearer ${token}` },
          });
          const body = await response.json();
          return body.exports?.length ? body : undefined;
        },
        10_000,
        "status",
      );
      assertEquals(
        [status.exports[0].conversations, status.exports[0].new, status.exports[0].complete],
        [3, 3, true],
      );
    } finally {
      await worker.stop();
    }
  },
);

serverTest(
  "exports e2e: SIGKILL in the middle of an import, then restart: each message once",
  async (server) => {
    const s = await scratch(server, { flag: "data-dir", extra: "  batch_size: 5\n" });
    const convs = Array.from(
      { length: 300 },
      (_, n) => gptConversation(gptId(n + 1), { turns: 10, regenerated: n % 3 === 0 }),
    );
    const path = `${s.data}/${HEX}-2026-11-01-10-00-00.zip`;
    await dropSettled(path, gptExportZip(convs, { shardSize: 100 }));
    const all = uuidsOf(convs);
    const size = (await Deno.stat(path)).size;
    await assertKillSafe({
      server,
      args: s.base,
      worker: "openai",
      statePath: `${s.state}/openai.state.db`,
      killAfterMs: [300, 700, 1200],
      uuidsUpTo: (_p, offset) => offset >= size ? all : [],
      expected: new Set(all),
    });
  },
);

serverTest(
  "exports e2e: a zip bomb, a climbing member name, a JSON nested 100,000 deep",
  async (server, t) => {
    const s = await scratch(server, {
      flag: "data-dir",
      extra: "  max_export_member_bytes: 10000000\n",
    });
    await t.step("a member inflating to gigabytes is refused under the limit", async () => {
      const bomb = zipBytes([{
        name: "conversations.json",
        data: new Uint8Array(60_000_000),
        declaredSize: 1000,
      }]);
      await dropSettled(`${s.data}/bomb.zip`, bomb);
      const { stderr, summary } = await once(s);
      assertStringIncludes(stderr, "bomb.zip: not imported: conversations.json: inflates beyond");
      assertEquals(summary.messages, 0);
      await dropSettled(
        `${s.data}/declared.zip`,
        zipBytes([{ name: "conversations.json", data: "[]", declaredSize: 4_000_000_000 }]),
      );
      const second = await once(s);
      assertStringIncludes(
        second.stderr,
        "over the limit of 10000000 (worker.max_export_member_bytes)",
      );
    });
    await t.step(
      "a member named ../../<dir>/... is only a name; nothing is written",
      async () => {
        const climb = `ai-sync-climb-${crypto.randomUUID()}`;
        const good = gptConversation(gptId(9), { turns: 2 });
        const deep = "[".repeat(100_000) + "]".repeat(100_000);
        const zip = zipBytes([
          {
            name: `../../${climb}/conversations.json`,
            data: `[${JSON.stringify(good)}, {"id": "z", "mapping": ${deep}}]`,
          },
        ]);
        await dropSettled(`${s.data}/climb.zip`, zip);
        const { stderr } = await once(s);
        assertStringIncludes(stderr, "record 1 is nested 100001 levels deep");
        assertExactly(server, uuidsOf([good]));
        for (
          const path of [`${s.data}/../../${climb}`, `${s.dir}/../${climb}`, `${s.dir}/${climb}`]
        ) {
          assert(!(await Deno.stat(path).then(() => true, () => false)), path);
        }
      },
    );
  },
);

serverTest(
  "exports e2e: Claude.ai and Gemini Takeout exports, and exports found in ~/Downloads",
  async (server, t) => {
    await t.step("claude", async () => {
      const s = await scratch(server, { flag: "data-dir" });
      const convs = [1, 2].map((n) =>
        claudeConversation(`c0000000-0000-4000-8000-00000000000${n}`, 4)
      );
      await dropSettled(
        `${s.data}/data-2025-07-06.zip`,
        zipBytes([
          { name: "conversations.json", data: JSON.stringify(convs) },
          { name: "users.json", data: "[]" },
          { name: "projects.json", data: "[]" },
        ]),
      );
      assertEquals((await once(s, "claude")).summary.messages, 8);
      assertEquals((await once(s, "claude")).summary.messages, 0);
    });
    await t.step(
      "claude: project knowledge of megabytes, in projects.json and per file",
      async () => {
        // projects.json was read whole up to 1 MiB: past that every project was lost, with
        // only a warning, and the export recorded as imported.
        const s = await scratch(server, { flag: "data-dir" });
        const named = claudeConversation("c1000000-0000-4000-8000-000000000011", 2);
        named.project_uuid = "f0000000-0000-4000-8000-000000000001";
        const project = (uuid: string, name: string, mb: number) => ({
          uuid,
          name,
          prompt_template: "Be brief.",
          docs: [{
            uuid: `${uuid}-doc`,
            filename: "book.txt",
            content: "lorem ".repeat(mb * 180_000),
          }],
        });
        await dropSettled(
          `${s.data}/data-2025-07-07.zip`,
          zipBytes([
            { name: "conversations.json", data: JSON.stringify([named]) },
            {
              name: "projects.json",
              data: JSON.stringify([project("f0000000-0000-4000-8000-000000000001", "Book", 2)]),
            },
          ]),
        );
        await dropSettled(
          `${s.data}/data-2026-01-07.zip`,
          zipBytes([
            {
              name: "conversations.json",
              data: JSON.stringify([claudeConversation("c2000000-0000-4000-8000-000000000012", 2)]),
            },
            {
              name: "projects/f0000000-0000-4000-8000-000000000002.json",
              data: JSON.stringify(project("f0000000-0000-4000-8000-000000000002", "Notes", 2)),
            },
          ]),
        );
        // Two conversations of 2 messages, two projects of an instruction and a document each.
        assertEquals((await once(s, "claude")).summary.messages, 8);
        const db = new DatabaseSync(server.db, { readOnly: true });
        const rows = db.prepare(
          "SELECT c.uuid, c.title, json_extract(c.metadata, '$.project_name') AS project, " +
            "(SELECT max(length(text)) FROM message_text t WHERE t.conversation_uuid = c.uuid) AS longest " +
            "FROM conversations c WHERE c.uuid NOT LIKE 'c0%' ORDER BY c.uuid",
        ).all() as { uuid: string; title: string; project: string | null; longest: number }[];
        db.close();
        assertEquals(rows.map((r) => [r.uuid.slice(0, 8), r.project]), [
          ["c1000000", "Book"],
          ["c2000000", null],
          ["f0000000", null],
          ["f0000000", null],
        ]);
        assertEquals(rows.filter((r) => r.longest > 2_000_000).map((r) => r.title), [
          "Book",
          "Notes",
        ]);
      },
    );
    await t.step("chatgpt: an attachment named by a map of megabytes", async () => {
      // conversation_asset_file_names.json was read whole up to 1 MiB: past that every
      // attachment of the export was left without its name, without a word.
      const s = await scratch(server, { flag: "data-dir" });
      const assets: Record<string, string> = {};
      for (let i = 0; i < 40_000; i++) {
        assets[`file-${String(i).padStart(8, "0")}.dat`] = `p${i}.png`;
      }
      assets["file_cat-cat.png"] = "cat.png";
      const mapping = {
        r: { id: "r", parent: null, message: null },
        u: {
          id: "u",
          parent: "r",
          message: {
            id: "u",
            author: { role: "user" },
            create_time: 1764090229,
            content: {
              content_type: "multimodal_text",
              parts: [{
                content_type: "image_asset_pointer",
                asset_pointer: "sediment://file_cat",
              }],
            },
          },
        },
      };
      const id = "6925e174-0000-8000-8000-00000000a55e";
      const list = [{ id, title: "cat", create_time: 1764090229, current_node: "u", mapping }];
      await dropSettled(
        `${s.data}/${"c".repeat(64)}-2026-11-29-10-00-00.zip`,
        zipBytes([
          { name: "conversations-000.json", data: JSON.stringify(list) },
          { name: "conversation_asset_file_names.json", data: JSON.stringify(assets) },
        ]),
      );
      assertEquals((await once(s, "openai")).summary.messages, 1);
      const db = new DatabaseSync(server.db, { readOnly: true });
      const row = db.prepare(
        "SELECT json_extract(content, '$.parts[0].file_name') AS name FROM messages " +
          "WHERE conversation_uuid = ?",
      ).get(id) as { name: string };
      db.close();
      assertEquals(row.name, "cat.png");
    });
    await t.step("gemini", async () => {
      const s = await scratch(server, { flag: "data-dir" });
      const records = [
        geminiRecord("2026-03-10T18:14:00.000Z", "and in Rome?"),
        geminiRecord("2026-03-10T18:12:00.000Z", "Weather in Paris?"),
      ];
      await dropSettled(
        `${s.data}/takeout-20260311T000000Z-001.zip`,
        zipBytes([
          {
            name: "Takeout/My Activity/Gemini Apps/MyActivity.json",
            data: JSON.stringify(records),
          },
          {
            name: "Takeout/My Activity/Search/MyActivity.json",
            data: JSON.stringify([geminiRecord("2026-03-10T18:00:00.000Z", "not gemini")]),
          },
        ]),
      );
      assertEquals((await once(s, "gemini")).summary.messages, 4);
    });
    await t.step("gemini: a Takeout .tgz, first cut short, then whole", async () => {
      const s = await scratch(server, { flag: "data-dir" });
      const src = await Deno.makeTempDir();
      await Deno.mkdir(`${src}/Takeout/My Activity/Gemini Apps`, { recursive: true });
      await Deno.writeTextFile(
        `${src}/Takeout/My Activity/Gemini Apps/MyActivity.json`,
        JSON.stringify([
          geminiRecord("2026-03-11T09:01:00.000Z", "and the tides?"),
          geminiRecord("2026-03-11T09:00:00.000Z", "What moves the moon?"),
          // Padding that does not compress, so that half the archive is cut from the records.
          ...Array.from(
            { length: 300 },
            (_, i) =>
              geminiRecord(`2026-03-10T0${i % 10}:00:00.000Z`, crypto.randomUUID().repeat(8)),
          ),
        ]),
      );
      const made = await new Deno.Command("tar", {
        args: ["-czf", `${src}/takeout.tgz`, "-C", src, "Takeout"],
      }).output();
      assert(made.success, "tar");
      const whole = await Deno.readFile(`${src}/takeout.tgz`);
      const path = `${s.data}/takeout-20260311T000000Z-001.tgz`;
      await dropSettled(path, whole.subarray(0, whole.length >> 1));
      const before = serverUuids(server).length;
      const cut = await once(s, "gemini");
      assertEquals(cut.summary.messages, 0);
      assertStringIncludes(cut.stderr, `${path}: not imported: the compressed data ends early`);
      assertEquals(serverUuids(server).length, before, "nothing of it sent");
      await dropSettled(path, whole);
      assertEquals((await once(s, "gemini")).summary.messages, 2 * 302);
    });
    await t.step("gemini: a MyActivity.html larger than worker.max_line_bytes", async () => {
      // The page was read whole, so one past the limit was not imported at all; it is read in
      // parts of whole cells now.
      const s = await scratch(server, {
        flag: "data-dir",
        extra: "  max_line_bytes: 65536\n  chunk_bytes: 32768\n",
      });
      const cells = Array.from({ length: 400 }, (_, i) => {
        const minute = String(59 - Math.floor(i / 10)).padStart(2, "0");
        return `<div class="outer-cell mdl-cell"><div class="content-cell mdl-cell--6-col">` +
          `Prompted&nbsp;question ${i}<br>Mar 10, 2026, 7:${minute}:0${i % 10} PM CET<br>` +
          `<p>${"answer ".repeat(60)}${i}</p></div></div>`;
      });
      const html = `<html><body>${cells.join("")}</body></html>`;
      // Three times the limit, read in parts of about 32 KiB.
      assert(html.length > 3 * 65536, `${html.length} bytes`);
      await dropSettled(
        `${s.data}/takeout-20260312T000000Z-001.zip`,
        zipBytes([{ name: "Takeout/My Activity/Gemini Apps/MyActivity.html", data: html }]),
      );
      assertEquals((await once(s, "gemini")).summary.messages, 800);
    });
    await t.step("extra_dirs: only files named as the service names its exports", async () => {
      const downloads = await Deno.makeTempDir();
      const s = await scratch(server, { flag: "data-dir" });
      await Deno.writeTextFile(
        s.cfg,
        `${await Deno.readTextFile(s.cfg)}openai:\n  extra_dirs: ["${downloads}"]\n`,
      );
      const conv = gptConversation(gptId(77), { turns: 2 });
      await dropSettled(`${downloads}/${HEX}-2026-11-20-10-00-00.zip`, gptExportZip([conv]));
      await dropSettled(
        `${downloads}/holiday.zip`,
        gptExportZip([gptConversation(gptId(78), { turns: 2 })]),
      );
      const { summary, stderr } = await once(s);
      assertEquals(summary.messages, 2);
      assert(!stderr.includes("holiday.zip"), stderr);
    });
  },
);
