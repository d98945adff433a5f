/**
 * The openai worker's email intake against a real IMAP server (Dovecot on loopback), a local
 * HTTP server standing in for the download host, and the reference server: an export email is
 * seen, its zip downloaded and imported; duplicates, expired links, cut downloads, redirects out,
 * wrong passwords, UIDVALIDITY changes and a restarted server; no secret anywhere it could leak.
 */
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { gptConversation, gptExportZip, gptUuids } from "../bench/export_corpus.ts";
import { dovecotPresent, exportEmail, startDovecot } from "./dovecot.ts";
import { download } from "../common/mail/download.ts";
import {
  eventually,
  freePort,
  runWorker,
  scratch,
  serverTest,
  serverUuids,
  spawnWorker,
  workerConfig,
} from "./helpers.ts";

const SESSION = `session-${crypto.randomUUID()}`;

/** The download host: serves zips to the session cookie, with Range, and some bad answers. */
function startDownloads() {
  const zips = new Map<string, Uint8Array>();
  const hits = new Map<string, number>();
  const cutOnce = new Set<string>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const url = new URL(req.url);
    hits.set(url.pathname, (hits.get(url.pathname) ?? 0) + 1);
    const [, kind, name] = url.pathname.split("/");
    if (kind === "gone") return new Response("gone", { status: 410 });
    if (kind === "out") {
      return new Response(null, {
        status: 302,
        headers: { location: "http://evil.example.com:9/x.zip" },
      });
    }
    if (!req.headers.get("cookie")?.includes(`__Secure-next-auth.session-token=${SESSION}`)) {
      return new Response("no session", { status: 403 });
    }
    const zip = zips.get(name);
    if (!zip) return new Response("no such export", { status: 404 });
    const range = req.headers.get("range")?.match(/^bytes=(\d+)-$/);
    const from = range ? Number(range[1]) : 0;
    const body = zip.slice(from);
    const headers = { "content-length": String(body.length), "content-type": "application/zip" };
    if (kind === "cut" && !cutOnce.has(name)) {
      // Half of it, then the connection breaks.
      cutOnce.add(name);
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(body.subarray(0, body.length >> 1));
          setTimeout(() => controller.error(new Error("cut")), 50);
        },
      });
      return new Response(stream, { status: range ? 206 : 200, headers });
    }
    return new Response(body, { status: range ? 206 : 200, headers });
  });
  const port = (server.addr as Deno.NetAddr).port;
  return { zips, hits, port, base: `http://127.0.0.1:${port}`, stop: () => server.shutdown() };
}

const uuidsOf = gptUuids;

const gptId = (n: number) => `6925e174-0000-8000-8000-${String(n).padStart(12, "0")}`;

if (dovecotPresent()) {
  serverTest(
    "email: export emails are downloaded and imported, once, whatever happens",
    async (server, t) => {
      const imap = await startDovecot();
      const downloads = startDownloads();
      const logs: string[] = [];
      try {
        const s = await scratch(server, { flag: "data-dir" });
        const emailSection = (mailbox: string) =>
          `openai:\n  email:\n    enabled: true\n    host: 127.0.0.1\n    port: ${imap.port}\n` +
          `    security: plain\n    mailbox: ${mailbox}\n    poll_interval: 1\n` +
          `    link_pattern: "^http://127\\\\.0\\\\.0\\\\.1:"\n` +
          `    download_hosts: ["127.0.0.1:${downloads.port}"]\n`;
        const configure = (mailbox = "INBOX", extra = "") =>
          Deno.writeTextFile(s.cfg, workerConfig(server) + emailSection(mailbox) + extra);
        await configure();
        const env = {
          OPENAI_EMAIL_USERNAME: imap.user,
          OPENAI_EMAIL_PASSWORD: imap.password,
          OPENAI_SESSION_TOKEN: SESSION,
        };
        const once = async (expectCode = 0, envOverride: Record<string, string> = {}) => {
          const out = await runWorker(
            [...s.base, "--once", "--json"],
            { ...env, ...envOverride },
            "openai",
          );
          logs.push(out.stdout, out.stderr);
          assertEquals(out.code, expectCode, out.stderr);
          return out;
        };
        const exportOf = (n: number, name: string) => {
          const convs = [gptConversation(gptId(n), { turns: 4 })];
          downloads.zips.set(name, gptExportZip(convs));
          return convs;
        };
        const expected: string[] = [];

        await t.step("an export email: downloaded, imported, the server has it", async () => {
          const convs = exportOf(1, "a.zip");
          await imap.append(
            exportEmail({
              messageId: "<a@openai.com>",
              link: `${downloads.base}/dl/a.zip?sig=1&x=2`,
            }),
          );
          const out = await once();
          expected.push(...uuidsOf(convs));
          assertEquals(new Set(serverUuids(server)), new Set(expected));
          assertStringIncludes(out.stderr, "export downloaded");
        });
        await t.step(
          "the same email again, and a restart: nothing fetched or sent again",
          async () => {
            await imap.append(
              exportEmail({
                messageId: "<a@openai.com>",
                link: `${downloads.base}/dl/a.zip?sig=1&x=2`,
              }),
            );
            const before = downloads.hits.get("/dl/a.zip");
            const out = await once();
            assertEquals(JSON.parse(out.stdout.trim().split("\n").at(-1)!).messages, 0);
            assertEquals(downloads.hits.get("/dl/a.zip"), before);
            assertEquals(serverUuids(server).length, expected.length);
          },
        );
        await t.step(
          "an email from the sender that is not an export is ignored and counted",
          async () => {
            await imap.append(
              exportEmail({
                messageId: "<news@openai.com>",
                subject: "New features in ChatGPT",
                link: `${downloads.base}/dl/none.zip`,
              }),
            );
            const out = await once();
            assertStringIncludes(out.stderr, "not an export email");
            assertStringIncludes(out.stderr, "1 ignored");
            assertEquals(downloads.hits.get("/dl/none.zip"), undefined);
          },
        );
        await t.step(
          "emails built to stall or break the MIME parser are ignored; the next one is read",
          async () => {
            const head = (id: string) =>
              `From: OpenAI <noreply@tm.openai.com>\r\nTo: tester@example.com\r\n` +
              `Subject: Your data export is ready\r\nMessage-ID: <${id}@x>\r\n`;
            // 200,000 folded lines took the parser 35 s; a header over 2 MiB made it throw,
            // which stopped the mailbox at that email for good.
            await imap.append(`${head("folded")}X-A: a${"\r\n b".repeat(200_000)}\r\n\r\nhi\r\n`);
            await imap.append(`${head("huge")}X-B: ${"a".repeat(2_200_000)}\r\n\r\nhi\r\n`);
            const convs = exportOf(9, "after.zip");
            await imap.append(
              exportEmail({
                messageId: "<after@openai.com>",
                link: `${downloads.base}/dl/after.zip`,
              }),
            );
            const out = await once();
            expected.push(...uuidsOf(convs));
            assertEquals(new Set(serverUuids(server)), new Set(expected));
            assertStringIncludes(out.stderr, "200000 folded header lines");
            assertStringIncludes(out.stderr, "not a readable email");
          },
        );
        await t.step("an expired link: said clearly, and not tried again", async () => {
          await imap.append(
            exportEmail({ messageId: "<gone@openai.com>", link: `${downloads.base}/gone/g.zip` }),
          );
          const out = await once(1);
          assertStringIncludes(
            out.stderr,
            "export link expired or not authorised: request a new export",
          );
          await once();
          assertEquals(downloads.hits.get("/gone/g.zip"), 1);
        });
        await t.step("a redirect to a host not allowed is refused, naming the host", async () => {
          await imap.append(
            exportEmail({ messageId: "<out@openai.com>", link: `${downloads.base}/out/o.zip` }),
          );
          const out = await once(1);
          assertStringIncludes(
            out.stderr,
            "evil.example.com:9, which is not in openai.email.download_hosts",
          );
        });
        await t.step("a download cut halfway is resumed, never imported half", async () => {
          const convs = exportOf(2, "c.zip");
          await imap.append(
            exportEmail({ messageId: "<cut@openai.com>", link: `${downloads.base}/cut/c.zip` }),
          );
          await once();
          assertEquals(downloads.hits.get("/cut/c.zip"), 2);
          expected.push(...uuidsOf(convs));
          assertEquals(new Set(serverUuids(server)), new Set(expected));
        });
        await t.step("an email too large to be an export email is not read", async () => {
          const huge = exportEmail({
            messageId: "<huge@openai.com>",
            link: `${downloads.base}/dl/h.zip`,
          })
            .replace("Your ChatGPT data export is ready.", `${"x".repeat(76)}\r\n`.repeat(70_000));
          await imap.append(huge);
          const out = await once();
          assertStringIncludes(out.stderr, "too large for an export email; not read");
          assertEquals(downloads.hits.get("/dl/h.zip"), undefined);
        });
        await t.step("a wrong password: a clear error naming the setting", async () => {
          const out = await once(1, { OPENAI_EMAIL_PASSWORD: "wrong-password" });
          assertStringIncludes(out.stderr, "IMAP login to 127.0.0.1");
          assertStringIncludes(out.stderr, "OPENAI_EMAIL_PASSWORD");
        });
        await t.step("UIDVALIDITY changes: rescanned, nothing fetched twice", async () => {
          const c = await imap.client();
          await c.mailboxCreate("Exports");
          await c.logout();
          await configure("Exports");
          const convs = exportOf(3, "d.zip");
          const d = exportEmail({
            messageId: "<d@openai.com>",
            link: `${downloads.base}/dl/d.zip`,
          });
          await imap.append(d, "Exports");
          await once();
          const again = await imap.client();
          await again.mailboxDelete("Exports");
          await again.mailboxCreate("Exports");
          await again.logout();
          const more = exportOf(4, "e.zip");
          await imap.append(d, "Exports");
          await imap.append(
            exportEmail({ messageId: "<e@openai.com>", link: `${downloads.base}/dl/e.zip` }),
            "Exports",
          );
          const out = await once();
          assertStringIncludes(out.stderr, "UIDVALIDITY changed");
          assertEquals(downloads.hits.get("/dl/d.zip"), 1);
          expected.push(...uuidsOf(convs), ...uuidsOf(more));
          const held = serverUuids(server);
          assertEquals(held.length, new Set(held).size);
          assertEquals(new Set(held), new Set(expected));
        });
        await t.step("after_import: seen marks the email of an imported export read", async () => {
          await configure("Exports", "    after_import: seen\n");
          await once();
          const c = await imap.client();
          try {
            await c.mailboxOpen("Exports");
            const flags = new Map<string, Set<string>>();
            for await (const m of c.fetch("1:*", { envelope: true, flags: true })) {
              flags.set(m.envelope?.messageId ?? "", m.flags ?? new Set());
            }
            assert(
              flags.get("<e@openai.com>")?.has("\\Seen"),
              "the imported export's email is read",
            );
          } finally {
            await c.logout();
          }
        });
        await t.step(
          "doctor checks the login, the mailbox and the cookie, each with a fix",
          async () => {
            const doctor = async (extra: Record<string, string>) => {
              const out = await runWorker(["doctor", ...s.base], { ...env, ...extra }, "openai");
              logs.push(out.stdout, out.stderr);
              return out.stdout;
            };
            const good = await doctor({});
            assertStringIncludes(good, "ok   email: logged in to 127.0.0.1");
            assertStringIncludes(good, "ok   email: mailbox Exports has");
            assertStringIncludes(good, "ok   email: OPENAI_SESSION_TOKEN is set");
            const bad = await doctor({
              OPENAI_EMAIL_PASSWORD: "wrong-password",
              OPENAI_SESSION_TOKEN: "",
            });
            assertStringIncludes(bad, "FAIL email: IMAP login to 127.0.0.1");
            assertStringIncludes(bad, "fix: check openai.email.host");
            assertStringIncludes(bad, "FAIL email: OPENAI_SESSION_TOKEN is not set");
          },
        );
        await t.step(
          "watching: Dovecot restarted during IDLE, the next email still arrives",
          async () => {
            const port = freePort();
            const worker = spawnWorker([...s.base, "--status-port", String(port)], env, "openai");
            try {
              await worker.waitFor("syncing");
              await eventually(
                async () => (await status(port, s.state))?.intake?.connected || undefined,
                20_000,
                "connected",
              );
              await imap.restart();
              const convs = exportOf(5, "f.zip");
              await imap.append(
                exportEmail({ messageId: "<f@openai.com>", link: `${downloads.base}/dl/f.zip` }),
                "Exports",
              );
              expected.push(...uuidsOf(convs));
              await eventually(
                () => serverUuids(server).length === expected.length || undefined,
                60_000,
                "the next export",
              );
              assertEquals(new Set(serverUuids(server)), new Set(expected));
              logs.push(JSON.stringify(await status(port, s.state)));
            } finally {
              await worker.stop();
              logs.push(worker.stderr());
            }
          },
        );
        await t.step(
          "the password and the session cookie are nowhere: logs, status, state",
          async () => {
            const state = new TextDecoder("latin1").decode(
              await Deno.readFile(`${s.state}/openai.state.db`),
            );
            for (const secret of [imap.password, SESSION]) {
              for (const text of [...logs, state]) {
                assert(!text.includes(secret), "a secret leaked");
              }
            }
          },
        );
      } finally {
        await downloads.stop();
        await imap.stop();
      }
    },
  );
}

async function status(port: number, stateDir: string) {
  const token = (await Deno.readTextFile(`${stateDir}/openai.status-token`)).trim();
  const response = await fetch(`http://127.0.0.1:${port}/status`, {
    headers: { authorization: `Bearer ${token}` },
  });
  return response.ok ? await response.json() : undefined;
}

Deno.test("mail download: the session cookie goes only over HTTPS", async (t) => {
  const dest = `${await Deno.makeTempDir()}/x.zip`;
  const options = {
    dest,
    downloadHosts: ["chatgpt.example"],
    cookie: { name: "__Secure-next-auth.session-token", value: "secret" },
    maxBytes: 1000,
  };
  await t.step("a link over plain HTTP is refused before any request", async () => {
    const out = await download({
      ...options,
      url: "http://chatgpt.example/x.zip",
      redirectHosts: [],
    });
    assertEquals(out.kind, "refused");
    assertStringIncludes(
      (out as { reason: string }).reason,
      "http://chatgpt.example: the session cookie is sent only over HTTPS",
    );
  });
  await t.step("and so is a tracking redirect to one", async () => {
    const tracker = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response(null, { status: 302, headers: { location: "http://chatgpt.example/x" } }),
    );
    try {
      const out = await download({
        ...options,
        url: `http://127.0.0.1:${tracker.addr.port}/click`,
        redirectHosts: [`127.0.0.1:${tracker.addr.port}`],
      });
      assertEquals(out.kind, "refused");
      assertStringIncludes((out as { reason: string }).reason, "it redirects to http://chatgpt");
    } finally {
      await tracker.shutdown();
    }
  });
});
