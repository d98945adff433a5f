/**
 * A real IMAP server for tests: Debian's Dovecot (`apt-get install -y dovecot-imapd`, which
 * `.ci/run` does) on 127.0.0.1 with the repo's minimal config, one user, mail seeded with IMAP
 * APPEND; and the export emails ChatGPT sends, built from what is known of them (FORMATS §1.1:
 * the sender, a "Download data export" button; HTML and text parts, quoted-printable).
 */
import { ImapFlow } from "imapflow";
import { delay, freePort, REPO } from "./helpers.ts";

export const DOVECOT = "/usr/sbin/dovecot";

/** Whether Dovecot is installed and can be started here; says why not when it cannot. */
export function dovecotPresent(): boolean {
  try {
    Deno.statSync(DOVECOT);
  } catch {
    console.log(`skipping: ${DOVECOT} is absent (apt-get install -y dovecot-imapd; .ci/run does)`);
    return false;
  }
  if (Deno.uid() !== 0) {
    console.log("skipping: Dovecot runs its mail processes as its own users, which takes root");
    return false;
  }
  return true;
}

/** A running Dovecot. */
export interface Dovecot {
  port: number;
  user: string;
  password: string;
  base: string;
  /** A logged-in client (the caller logs out). */
  client(): Promise<ImapFlow>;
  /** Appends a raw email to `mailbox`. */
  append(raw: string, mailbox?: string): Promise<void>;
  stop(): Promise<void>;
  restart(): Promise<void>;
}

async function listening(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await delay(50);
    }
  }
}

/** Starts Dovecot in a scratch directory, on a free port, with user `tester`. */
export async function startDovecot(): Promise<Dovecot> {
  const base = await Deno.makeTempDir({ prefix: "ai-sync-dovecot-" });
  // The mail processes run as the dovecot user and must reach the mail folder inside.
  await Deno.chmod(base, 0o755);
  const port = freePort();
  const password = `pw-${crypto.randomUUID()}`;
  for (const dir of ["run", "state", "mail"]) await Deno.mkdir(`${base}/${dir}`);
  await Deno.writeTextFile(`${base}/users`, `tester:{PLAIN}${password}\n`);
  const template = await Deno.readTextFile(`${REPO}/tests/fixtures/dovecot/dovecot.conf.template`);
  await Deno.writeTextFile(
    `${base}/dovecot.conf`,
    template.replaceAll("@BASE@", base).replaceAll("@PORT@", String(port)),
  );
  // Mail belongs to the dovecot user, as the config's userdb says.
  await new Deno.Command("chown", { args: ["-R", "dovecot:dovecot", `${base}/mail`] }).output();
  const start = async () => {
    // Dovecot forks into the background, keeping whatever pipes it was given: none, then.
    const status = await new Deno.Command(DOVECOT, {
      args: ["-c", `${base}/dovecot.conf`],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn().status;
    if (!status.success) {
      const log = await Deno.readTextFile(`${base}/dovecot.log`).catch(() => "");
      throw new Error(`dovecot did not start (exit ${status.code}): ${log}`);
    }
    await listening(port, 10_000);
  };
  const stop = async () => {
    let pid = 0;
    try {
      pid = Number((await Deno.readTextFile(`${base}/run/master.pid`)).trim());
    } catch {
      return;
    }
    try {
      Deno.kill(pid, "SIGTERM");
    } catch {
      return;
    }
    for (let i = 0; i < 200; i++) {
      try {
        Deno.statSync(`/proc/${pid}`);
      } catch {
        return;
      }
      await delay(50);
    }
  };
  await start();
  const client = async () => {
    const c = new ImapFlow({
      host: "127.0.0.1",
      port,
      secure: false,
      doSTARTTLS: false,
      auth: { user: "tester", pass: password },
      logger: false,
    });
    c.on("error", () => {});
    await c.connect();
    return c;
  };
  return {
    port,
    user: "tester",
    password,
    base,
    client,
    async append(raw, mailbox = "INBOX") {
      const c = await client();
      try {
        await c.append(mailbox, raw);
      } finally {
        await c.logout();
      }
    },
    stop,
    async restart() {
      await stop();
      await start();
    },
  };
}

/** What goes into a test email. */
export interface EmailParts {
  messageId: string;
  link: string;
  from?: string;
  subject?: string;
  date?: Date;
}

/** Quoted-printable, as mail clients encode HTML (`=` as `=3D`, soft breaks at 76). */
function quotedPrintable(text: string): string {
  const encoded = text.replace(/=/g, "=3D");
  const lines: string[] = [];
  for (const line of encoded.split("\n")) {
    let rest = line;
    while (rest.length > 75) {
      let cut = 75;
      // Never split an escape.
      if (rest[cut - 1] === "=") cut -= 1;
      else if (rest[cut - 2] === "=") cut -= 2;
      lines.push(`${rest.slice(0, cut)}=`);
      rest = rest.slice(cut);
    }
    lines.push(rest);
  }
  return lines.join("\r\n");
}

/**
 * An "export ready" email as ChatGPT's transactional mail looks: multipart/alternative, a text
 * part with the link, an HTML part (quoted-printable) with a "Download data export" button whose
 * address has `&amp;` in it.
 */
export function exportEmail(p: EmailParts): string {
  const html = `<html><body><table><tr><td><p>Your ChatGPT data export is ready.</p>
<p>The link below expires in 24 hours.</p>
<a href="${
    p.link.replaceAll("&", "&amp;")
  }" style="background:#10a37f;color:#fff;padding:12px 24px">Download data export</a>
<p>Or go to <a href="https://help.openai.com/articles/7260999">our help center</a>.</p></td></tr></table></body></html>`;
  const text = `Your ChatGPT data export is ready.\n\nDownload data export:\n${p.link}\n\n` +
    `The link expires in 24 hours.\n`;
  return [
    `From: ${p.from ?? "OpenAI <noreply@tm.openai.com>"}`,
    "To: tester@example.com",
    `Subject: ${p.subject ?? "Your ChatGPT data export is ready"}`,
    `Message-ID: ${p.messageId}`,
    `Date: ${(p.date ?? new Date("2026-11-20T10:00:00Z")).toUTCString()}`,
    "MIME-Version: 1.0",
    'Content-Type: multipart/alternative; boundary="b1"',
    "",
    "--b1",
    "Content-Type: text/plain; charset=utf-8",
    "",
    text.replaceAll("\n", "\r\n"),
    "--b1",
    "Content-Type: text/html; charset=utf-8",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    quotedPrintable(html),
    "--b1--",
    "",
  ].join("\r\n");
}
