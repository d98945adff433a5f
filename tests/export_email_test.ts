/**
 * The email intake's pieces on their own: telling the export email apart (quoted-printable,
 * entities, text-only mail, other mail from the sender) and the download (resumed after a cut,
 * bounded, the cookie kept from hosts that are not download hosts).
 */
import { assert, assertEquals, assertStringIncludes } from "./assert.ts";
import { type ExportEmailRules, readExportEmail } from "../common/mail/export_email.ts";
import { download } from "../common/mail/download.ts";
import { exportEmail } from "./dovecot.ts";

const rules: ExportEmailRules = {
  sender: "noreply@tm.openai.com",
  subjectPattern: "export",
  linkTextPattern: "download data export",
  linkPattern: "^https://",
};
const encoder = new TextEncoder();
const LINK = "https://chatgpt.com/backend-api/download/e?token=abc&sig=d%3D1";

Deno.test("export email: the link from the HTML button, quoted-printable and &amp; undone", async () => {
  const raw = exportEmail({ messageId: "<m1@openai.com>", link: LINK });
  const email = await readExportEmail(encoder.encode(raw), rules);
  assertEquals(email.link, LINK);
  assertEquals(email.messageId, "<m1@openai.com>");
  assertEquals(email.date, "2026-11-20T10:00:00.000Z");
});

Deno.test("export email: a text-only email, other mail, other senders", async (t) => {
  await t.step("text only: the address after the link text", async () => {
    const raw = "From: noreply@tm.openai.com\r\nSubject: Your data export is ready\r\n" +
      "Message-ID: <t@x>\r\n\r\nSee https://openai.com/policies first.\r\nDownload data export:\r\n" +
      `${LINK}\r\n`;
    assertEquals((await readExportEmail(encoder.encode(raw), rules)).link, LINK);
  });
  await t.step("another subject from the sender is not an export", async () => {
    const raw = exportEmail({ messageId: "<n@x>", link: LINK, subject: "New in ChatGPT" });
    const email = await readExportEmail(encoder.encode(raw), rules);
    assertEquals(email.link, undefined);
    assertStringIncludes(email.notExport!, "subject");
  });
  await t.step("the same email from someone else is not an export", async () => {
    const raw = exportEmail({
      messageId: "<p@x>",
      link: LINK,
      from: "phish <noreply@tm.openai.co>",
    });
    assertStringIncludes(
      (await readExportEmail(encoder.encode(raw), rules)).notExport!,
      "not noreply@tm.openai.com",
    );
  });
});

Deno.test({
  name: "download: resumed after a cut, bounded, the cookie only for download hosts",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const body = new Uint8Array(100_000).map((_, i) => i % 251);
    const seen: { path: string; cookie: string; range: string }[] = [];
    let cut = true;
    const server: Deno.HttpServer = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen: () => {},
    }, (req): Response => {
      const url = new URL(req.url);
      seen.push({
        path: url.pathname,
        cookie: req.headers.get("cookie") ?? "",
        range: req.headers.get("range") ?? "",
      });
      if (url.pathname === "/track") {
        return new Response(null, {
          status: 302,
          headers: { location: `http://localhost:${port}/file` },
        });
      }
      const from = Number(req.headers.get("range")?.match(/bytes=(\d+)-/)?.[1] ?? 0);
      const rest = body.slice(from);
      const headers = { "content-length": String(rest.length) };
      if (cut) {
        cut = false;
        return new Response(
          new ReadableStream({
            start(c) {
              c.enqueue(rest.slice(0, 40_000));
              setTimeout(() => c.error(new Error("cut")), 20);
            },
          }),
          { headers },
        );
      }
      return new Response(rest, { status: from ? 206 : 200, headers });
    });
    const port: number = (server.addr as Deno.NetAddr).port;
    const dir = await Deno.makeTempDir();
    try {
      await t.step(
        "a tracking host passes on, without the cookie; the cut is resumed",
        async () => {
          const out = await download({
            url: `http://127.0.0.1:${port}/track`,
            dest: `${dir}/a.zip`,
            downloadHosts: [`localhost:${port}`],
            redirectHosts: [`127.0.0.1:${port}`],
            cookie: { name: "s", value: "secret" },
            maxBytes: 1_000_000,
          });
          assertEquals(out, { kind: "done", bytes: 100_000 });
          assertEquals(await Deno.readFile(`${dir}/a.zip`), body);
          assertEquals(seen.filter((s) => s.path === "/track").map((s) => s.cookie), ["", ""]);
          assert(seen.filter((s) => s.path === "/file").every((s) => s.cookie === "s=secret"));
          assert(
            seen.some((s) => s.range.startsWith("bytes=") && s.range !== "bytes=0-"),
            "resumed",
          );
        },
      );
      await t.step("over the size limit: refused, nothing left behind", async () => {
        const out = await download({
          url: `http://localhost:${port}/file`,
          dest: `${dir}/b.zip`,
          downloadHosts: [`localhost:${port}`],
          redirectHosts: [],
          maxBytes: 50_000,
        });
        assertEquals(out.kind, "refused");
        assertEquals([...Deno.readDirSync(dir)].map((e) => e.name), ["a.zip"]);
      });
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "download: a connection that stops sending is given up and the next try resumes",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const body = new Uint8Array(100_000).map((_, i) => i % 251);
    let release = () => {};
    const released = new Promise<void>((resolve) => release = resolve);
    const tries = new Map<string, number>();
    const server: Deno.HttpServer = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      async (req): Promise<Response> => {
        const path = new URL(req.url).pathname;
        const n = (tries.get(path) ?? 0) + 1;
        tries.set(path, n);
        const from = Number(req.headers.get("range")?.match(/bytes=(\d+)-/)?.[1] ?? 0);
        const rest = body.slice(from);
        const headers = { "content-length": String(rest.length) };
        if (n === 1 && path === "/silent") await released; // No answer at all.
        if (n === 1 && path === "/trickle") {
          // Headers and part of the body, then nothing more.
          return new Response(
            new ReadableStream({
              async start(c) {
                c.enqueue(rest.slice(0, 40_000));
                await released;
                c.close();
              },
            }),
            { headers },
          );
        }
        return new Response(rest, { status: from ? 206 : 200, headers });
      },
    );
    const port = (server.addr as Deno.NetAddr).port;
    const dir = await Deno.makeTempDir();
    /** The download of `path`, or "still waiting" after 30 s. */
    const within = (path: string, dest: string) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      return Promise.race([
        download({
          url: `http://127.0.0.1:${port}${path}`,
          dest,
          downloadHosts: [`127.0.0.1:${port}`],
          redirectHosts: [],
          maxBytes: 1_000_000,
          stallMs: 300,
        }),
        new Promise((resolve) => timer = setTimeout(() => resolve("still waiting"), 30_000)),
      ]).finally(() => clearTimeout(timer));
    };
    try {
      await t.step("a body that stops halfway: resumed from where it stopped", async () => {
        assertEquals(await within("/trickle", `${dir}/a.zip`), { kind: "done", bytes: 100_000 });
        assertEquals(await Deno.readFile(`${dir}/a.zip`), body);
        assertEquals(tries.get("/trickle"), 2);
      });
      await t.step("no answer at all: tried again", async () => {
        assertEquals(await within("/silent", `${dir}/b.zip`), { kind: "done", bytes: 100_000 });
        assertEquals(tries.get("/silent"), 2);
      });
    } finally {
      release();
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
