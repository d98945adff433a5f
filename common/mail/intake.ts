/**
 * The openai worker's email intake: watches a mailbox (IMAP, with IDLE where the server has it,
 * a poll otherwise) for ChatGPT's "export ready" email, downloads the export before its link
 * expires, and leaves it in the worker's download folder, which the export intake watches.
 *
 * State, in the worker's state database: the mailbox cursor (`mailbox:<user>@<host>/<mailbox>`:
 * UIDVALIDITY and the last UID done with) and one record per email by Message-ID (`mail:<id>`:
 * seen, downloaded, imported, expired, ignored or failed, with the reason). A UIDVALIDITY change
 * rescans the mailbox and the records keep each email from being fetched twice. Credentials come
 * from the environment only and are masked in every log line; the link itself is never stored
 * (it is read again from the email when needed).
 *
 * @module
 */
import { ImapFlow } from "imapflow";
import { join } from "node:path";
import { sha256Hex } from "../hash.ts";
import type { Intake, IntakeContext } from "../intake.ts";
import { EMAIL_ENV, type EmailConfig } from "./config.ts";
import { download } from "./download.ts";
import { readExportEmail } from "./export_email.ts";

/** Where a mailbox stands. */
export interface MailboxCursor {
  uidValidity: string;
  /** Emails up to this UID are done with (or recorded for a retry). */
  lastUid: number;
}

/** What became of one email. */
export interface MailRecord {
  status: "downloaded" | "imported" | "expired" | "ignored" | "failed";
  uid: number;
  uidValidity: string;
  /** The downloaded export, once downloaded. */
  file?: string;
  reason?: string;
  at: string;
}

/** The message status and the log show for a link that no longer works. */
export const EXPIRED =
  "export link expired or not authorised: request a new export (ChatGPT: Settings → Data controls → Export data)";

/** Failures of the same email are tried again at most this many times. */
const MAX_TRIES = 5;

/** An export email is a few KB; one larger than this is not fetched (nor parsed). */
const MAX_EMAIL_BYTES = 4 * 1024 * 1024;

/** Builds the IMAP client of a config and the credentials in `secrets`. */
export function imapClient(
  email: EmailConfig,
  secrets: Readonly<Record<string, string>>,
): ImapFlow {
  const user = secrets[EMAIL_ENV.username] ?? "";
  const auth = email.auth === "xoauth2"
    ? { user, accessToken: secrets[EMAIL_ENV.accessToken] ?? "" }
    : { user, pass: secrets[EMAIL_ENV.password] ?? "" };
  return new ImapFlow({
    host: email.host,
    port: email.port,
    secure: email.security === "tls",
    doSTARTTLS: email.security === "starttls"
      ? true
      : email.security === "plain"
      ? false
      : undefined,
    auth,
    logger: false,
    disableAutoIdle: false,
  });
}

/** Why a login failed, naming what to fix (never the secret). */
export function loginProblem(email: EmailConfig, error: unknown): string {
  const e = error as { authenticationFailed?: boolean; message?: string; code?: string };
  if (e.authenticationFailed) {
    const secret = email.auth === "xoauth2" ? EMAIL_ENV.accessToken : EMAIL_ENV.password;
    return `IMAP login to ${email.host}:${email.port} refused: check ${EMAIL_ENV.username} and ${secret}`;
  }
  return `IMAP ${email.host}:${email.port}: ${e.message ?? String(error)}${
    e.code ? ` (${e.code})` : ""
  }`;
}

/**
 * The email intake of the openai worker.
 *
 * @example Nothing happens until it is checked or run
 * ```ts
 * import { MailIntake } from "./intake.ts";
 * console.log(typeof MailIntake.prototype.check); // function
 * ```
 */
export class MailIntake implements Intake {
  #counts = { seen: 0, exports: 0, downloaded: 0, ignored: 0, expired: 0, failed: 0 };
  #connected = false;
  #lastCheck = "";
  #lastProblem = "";

  /** An intake over `ctx` (the `email` section of the openai config). */
  constructor(readonly ctx: IntakeContext) {
    for (const name of Object.values(EMAIL_ENV)) ctx.log.addSecret(ctx.secrets[name]);
  }

  get #email(): EmailConfig {
    return this.ctx.section().email as EmailConfig;
  }

  get #cursorKey(): string {
    const e = this.#email;
    return `mailbox:${this.ctx.secrets[EMAIL_ENV.username] ?? ""}@${e.host}/${e.mailbox}`;
  }

  /** One pass over a fresh connection. */
  async check(): Promise<void> {
    const client = imapClient(this.#email, this.ctx.secrets);
    try {
      await client.connect();
    } catch (error) {
      throw new Error(loginProblem(this.#email, error));
    }
    try {
      await this.#scan(client);
    } finally {
      await client.logout().catch(() => {});
    }
    const c = this.#counts;
    this.ctx.log.info(
      `mailbox ${this.#email.mailbox}: ${c.seen} new email(s) from ${this.#email.sender}: ` +
        `${c.exports} export(s), ${c.downloaded} downloaded, ${c.ignored} ignored, ` +
        `${c.expired} expired, ${c.failed} failed`,
    );
  }

  /** Watches: a scan at each new email (IDLE) or poll, reconnecting with backoff after drops. */
  async run(signal: AbortSignal): Promise<void> {
    let backoff = 1000;
    while (!signal.aborted) {
      const client = imapClient(this.#email, this.ctx.secrets);
      const closed = new Promise<void>((resolve) => client.once("close", () => resolve()));
      client.on("error", () => {});
      try {
        await client.connect();
        this.#connected = true;
        backoff = 1000;
        while (!signal.aborted && client.usable) {
          await this.#scan(client);
          // IDLE runs while the mailbox is open and nothing is asked: new mail ends the wait.
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, this.#email.poll_interval * 1000);
            const done = () => {
              clearTimeout(timer);
              resolve();
            };
            client.once("exists", done);
            closed.then(done);
            signal.addEventListener("abort", done, { once: true });
          });
        }
      } catch (error) {
        this.#problem(loginProblem(this.#email, error));
      } finally {
        this.#connected = false;
        await client.logout().catch(() => client.close());
      }
      if (signal.aborted) return;
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, backoff);
        signal.addEventListener("abort", () => {
          clearTimeout(timer);
          resolve(undefined);
        }, { once: true });
      });
      backoff = Math.min(backoff * 2, 60_000);
    }
  }

  /** Where it stands, for status. */
  status(): Record<string, unknown> {
    return {
      mailbox: this.#email.mailbox,
      connected: this.#connected,
      last_check: this.#lastCheck,
      last_problem: this.#lastProblem,
      ...this.#counts,
    };
  }

  #problem(message: string): void {
    this.#lastProblem = message;
    this.ctx.recordError(message);
  }

  #record(messageId: string): MailRecord | undefined {
    const value = this.ctx.state.fingerprint(`mail:${messageId}`);
    return value ? JSON.parse(value) as MailRecord : undefined;
  }

  #save(messageId: string, record: MailRecord): void {
    this.ctx.state.putFingerprint(`mail:${messageId}`, JSON.stringify(record));
  }

  /** Reads what is new in the mailbox, downloads exports, marks imported ones. */
  async #scan(client: ImapFlow): Promise<void> {
    const email = this.#email;
    const lock = await client.getMailboxLock(email.mailbox);
    try {
      const box = client.mailbox;
      const uidValidity = box ? String(box.uidValidity) : "";
      const saved = this.ctx.state.fingerprint(this.#cursorKey);
      let cursor: MailboxCursor = saved ? JSON.parse(saved) : { uidValidity, lastUid: 0 };
      if (cursor.uidValidity !== uidValidity) {
        this.ctx.log.info(
          `${email.mailbox}: UIDVALIDITY changed (${cursor.uidValidity} to ${uidValidity}): ` +
            `rescanning; emails already handled are known by their Message-ID`,
        );
        cursor = { uidValidity, lastUid: 0 };
      }
      const candidates: { uid: number; from: string; size: number }[] = [];
      if (box && box.exists > 0) {
        for await (
          const m of client.fetch(`${cursor.lastUid + 1}:*`, {
            uid: true,
            envelope: true,
            size: true,
          }, {
            uid: true,
          })
        ) {
          if (m.uid <= cursor.lastUid) continue;
          const from = m.envelope?.from?.[0]?.address?.toLowerCase() ?? "";
          candidates.push({ uid: m.uid, from, size: m.size ?? 0 });
        }
      }
      let done = cursor.lastUid;
      let blocked = false;
      for (const { uid, from, size } of candidates.sort((a, b) => a.uid - b.uid)) {
        const ours = from === email.sender.toLowerCase();
        if (ours && size > MAX_EMAIL_BYTES) {
          this.#counts.ignored++;
          this.ctx.log.warn(
            `email UID ${uid}: ${size} bytes, too large for an export email; not read`,
          );
        }
        const final = !ours || size > MAX_EMAIL_BYTES ||
          await this.#handle(client, uid, uidValidity);
        // The cursor moves past an email only once it is done with; a retry keeps it.
        if (!final) blocked = true;
        if (!blocked) done = uid;
      }
      this.ctx.state.putFingerprint(
        this.#cursorKey,
        JSON.stringify({ uidValidity, lastUid: done }),
      );
      await this.#afterImport(client, uidValidity);
      this.#lastCheck = new Date().toISOString();
    } finally {
      lock.release();
    }
  }

  /** One email from the sender: true when done with (whatever the outcome), false to retry. */
  async #handle(client: ImapFlow, uid: number, uidValidity: string): Promise<boolean> {
    const config = this.#email;
    const message = await client.fetchOne(String(uid), { source: true }, { uid: true });
    if (!message || !message.source) return true;
    const email = await readExportEmail(message.source, {
      sender: config.sender,
      subjectPattern: config.subject_pattern,
      linkTextPattern: config.link_text_pattern,
      linkPattern: config.link_pattern,
    });
    const id = email.messageId || `uid:${uidValidity}:${uid}`;
    const known = this.#record(id);
    if (known && known.status !== "failed") return true;
    this.#counts.seen++;
    const at = new Date().toISOString();
    if (!email.link) {
      this.#counts.ignored++;
      this.ctx.log.info(`email ${id} from ${email.from}: not an export email (${email.notExport})`);
      this.#save(id, { status: "ignored", uid, uidValidity, reason: email.notExport, at });
      return true;
    }
    this.#counts.exports++;
    const stamp = (email.date || at).slice(0, 19).replace(/[-T:]/g, "-");
    const file = join(this.ctx.downloadDir, `${sha256Hex(id)}-${stamp}.zip`);
    await Deno.mkdir(this.ctx.downloadDir, { recursive: true });
    const session = this.ctx.secrets[EMAIL_ENV.session];
    const outcome = await download({
      url: email.link,
      dest: file,
      downloadHosts: config.download_hosts,
      redirectHosts: config.redirect_hosts,
      cookie: session ? { name: config.cookie_name, value: session } : undefined,
      headers: config.headers,
      maxBytes: config.max_download_bytes,
    });
    if (outcome.kind === "done") {
      // Complete and renamed: dated as the email, so the export intake need not wait for it.
      const sent = new Date(email.date || at);
      await Deno.utime(file, sent, sent);
      this.#counts.downloaded++;
      this.ctx.log.info(`email ${id}: export downloaded (${outcome.bytes} bytes) to ${file}`);
      this.#save(id, { status: "downloaded", uid, uidValidity, file, at });
      return true;
    }
    if (outcome.kind === "expired") {
      this.#counts.expired++;
      this.#problem(`email ${id}: ${EXPIRED} (HTTP ${outcome.status})`);
      this.#save(id, { status: "expired", uid, uidValidity, reason: EXPIRED, at });
      return true;
    }
    const tries = known?.reason?.match(/^try (\d+)/)?.[1] ?? "0";
    const n = Number(tries) + 1;
    this.#counts.failed++;
    const final = outcome.kind === "refused" || n >= MAX_TRIES;
    const reason = final ? outcome.reason : `try ${n}: ${outcome.reason}`;
    this.#problem(`email ${id}: download ${final ? "given up" : "failed"}: ${outcome.reason}`);
    this.#save(id, { status: final ? "expired" : "failed", uid, uidValidity, reason, at });
    return final;
  }

  /** Marks downloaded exports the export intake has imported, and acts on their emails. */
  async #afterImport(client: ImapFlow, uidValidity: string): Promise<void> {
    const config = this.#email;
    for (const [key, value] of this.ctx.state.fingerprintsLike("mail:")) {
      const record = JSON.parse(value) as MailRecord;
      if (record.status !== "downloaded" || !record.file) continue;
      const unit = this.ctx.state.getUnit(record.file);
      if (!unit || unit.kind !== "snapshot" || !unit.hash || (unit.fileSize ?? -1) < 0) continue;
      this.ctx.state.putFingerprint(key, JSON.stringify({ ...record, status: "imported" }));
      if (config.after_import === "none" || record.uidValidity !== uidValidity) continue;
      const uid = String(record.uid);
      if (config.after_import === "seen") {
        await client.messageFlagsAdd(uid, ["\\Seen"], { uid: true });
      } else await client.messageMove(uid, config.move_to, { uid: true });
    }
  }
}
