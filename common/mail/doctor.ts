/**
 * What `doctor` checks of the email intake: the login, the mailbox, and the session cookie the
 * download needs, each with a `fix:` when it fails. Credentials come from the environment and are
 * never printed.
 *
 * @module
 */
import { EMAIL_ENV, type EmailConfig } from "./config.ts";
import { imapClient, loginProblem } from "./intake.ts";

/** One check's result. */
export interface EmailCheck {
  ok: boolean;
  what: string;
  fix?: string;
}

/**
 * The checks of `openai.email` (none when it is off).
 *
 * @example Off by default
 * ```ts
 * import { emailChecks } from "./doctor.ts";
 * import { emailSchema } from "./config.ts";
 * console.log(await emailChecks(emailSchema.parse({}))); // []
 * ```
 */
export async function emailChecks(email: EmailConfig): Promise<EmailCheck[]> {
  if (!email.enabled) return [];
  const secrets: Record<string, string> = {};
  for (const name of Object.values(EMAIL_ENV)) {
    const value = Deno.env.get(name);
    if (value) secrets[name] = value;
  }
  const checks: EmailCheck[] = [];
  const secret = email.auth === "xoauth2" ? EMAIL_ENV.accessToken : EMAIL_ENV.password;
  if (!secrets[EMAIL_ENV.username] || !secrets[secret]) {
    checks.push({
      ok: false,
      what: `email: ${EMAIL_ENV.username} or ${secret} is not set`,
      fix: `export ${EMAIL_ENV.username}=you@example.com and ${secret}=… (an app password, ` +
        `not your account password) in the worker's environment`,
    });
  } else {
    const client = imapClient(email, secrets);
    client.on("error", () => {});
    try {
      await client.connect();
      checks.push({ ok: true, what: `email: logged in to ${email.host}:${email.port}` });
      try {
        const box = await client.status(email.mailbox, { messages: true });
        checks.push({
          ok: true,
          what: `email: mailbox ${email.mailbox} has ${box.messages ?? 0} message(s)`,
        });
      } catch (error) {
        checks.push({
          ok: false,
          what: `email: mailbox ${email.mailbox}: ${(error as Error).message}`,
          fix: "set openai.email.mailbox to a mailbox that exists (INBOX by default)",
        });
      }
    } catch (error) {
      checks.push({
        ok: false,
        what: `email: ${loginProblem(email, error)}`,
        fix: `check openai.email.host, port and security, and ${EMAIL_ENV.username}/${secret}`,
      });
    } finally {
      await client.logout().catch(() => client.close());
    }
  }
  checks.push(
    secrets[EMAIL_ENV.session]
      ? { ok: true, what: `email: ${EMAIL_ENV.session} is set (the download's session cookie)` }
      : {
        ok: false,
        what: `email: ${EMAIL_ENV.session} is not set: export links cannot be downloaded`,
        fix: `copy the ${email.cookie_name} cookie of a signed-in chatgpt.com session into ` +
          `${EMAIL_ENV.session}`,
      },
  );
  return checks;
}
