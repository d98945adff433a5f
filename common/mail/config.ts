/**
 * The `openai.email` config section: the mailbox to watch for ChatGPT's "export ready" email,
 * how to tell that email apart, and where its download may come from.
 *
 * @module
 */
import { z } from "zod";
import { isLoopbackHost } from "../loopback.ts";

const port = z.coerce.number().int().min(1).max(65535);

/**
 * The schema of `openai.email`.
 *
 * @example The defaults
 * ```ts
 * import { emailSchema } from "./config.ts";
 * console.log(emailSchema.parse({}).sender); // noreply@tm.openai.com
 * ```
 */
export const emailSchema = z.strictObject({
  enabled: z.boolean().default(false),
  host: z.string().default(""),
  port: port.default(993),
  /** `tls` (IMAPS), `starttls`, or `plain` (only for a local server). */
  security: z.enum(["tls", "starttls", "plain"]).default("tls"),
  /** `password` (an app password) or `xoauth2` (an access token). */
  auth: z.enum(["password", "xoauth2"]).default("password"),
  mailbox: z.string().min(1).default("INBOX"),
  sender: z.string().min(1).default("noreply@tm.openai.com"),
  subject_pattern: z.string().default("export"),
  link_text_pattern: z.string().default("download data export"),
  link_pattern: z.string().default("^https://"),
  download_hosts: z.array(z.string()).default(["chatgpt.com"]),
  redirect_hosts: z.array(z.string()).default([]),
  cookie_name: z.string().min(1).default("__Secure-next-auth.session-token"),
  headers: z.record(z.string(), z.string()).default({}),
  max_download_bytes: z.coerce.number().int().positive().default(16 * 1024 ** 3),
  poll_interval: z.coerce.number().int().positive().default(300),
  after_import: z.enum(["none", "seen", "move"]).default("none"),
  move_to: z.string().default(""),
}).prefault({}).superRefine((v, ctx) => {
  for (const key of ["subject_pattern", "link_text_pattern", "link_pattern"] as const) {
    try {
      new RegExp(v[key]);
    } catch (error) {
      ctx.addIssue({
        code: "custom",
        path: [key],
        message: `expected a regular expression: ${(error as Error).message}`,
      });
    }
  }
  if (v.enabled && !v.host) {
    ctx.addIssue({ code: "custom", path: ["host"], message: "required when enabled" });
  }
  // Without TLS the password (or token) crosses the network as it is.
  if (v.security === "plain" && v.host && !isLoopbackHost(v.host)) {
    ctx.addIssue({
      code: "custom",
      path: ["security"],
      message: `"plain" sends the password unencrypted, so it is only for a server on this ` +
        `machine (127.0.0.1, localhost, ::1), not ${v.host}: use "tls" or "starttls"`,
    });
  }
  if (v.after_import === "move" && !v.move_to) {
    ctx.addIssue({ code: "custom", path: ["move_to"], message: "required by after_import: move" });
  }
});

/** The `openai.email` section, parsed. */
export type EmailConfig = z.infer<typeof emailSchema>;

/** The environment variables the email intake reads its credentials from. */
export const EMAIL_ENV = {
  username: "OPENAI_EMAIL_USERNAME",
  password: "OPENAI_EMAIL_PASSWORD",
  accessToken: "OPENAI_EMAIL_ACCESS_TOKEN",
  session: "OPENAI_SESSION_TOKEN",
} as const;
