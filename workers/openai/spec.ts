/**
 * The ChatGPT exports source as the registry knows it.
 *
 * @module
 */
import { exportSpec, type SourceSpec } from "../../common/source_spec.ts";
import { EMAIL_ENV, type EmailConfig, emailSchema } from "../../common/mail/config.ts";

/**
 * ChatGPT data exports dropped into `~/ai-sync-exports/chatgpt` (and, by name only, in the folders
 * `openai.extra_dirs` lists).
 *
 * @example Its default folder
 * ```ts
 * import { openaiSpec } from "./spec.ts";
 * openaiSpec.defaultDataDir((n) => n === "HOME" ? "/home/me" : undefined); // "/home/me/ai-sync-exports/chatgpt"
 * ```
 */
export const openaiSpec: SourceSpec = exportSpec({
  name: "openai",
  sourceType: "gpt",
  binary: "openai-sync-worker",
  label: "ChatGPT exports",
  folder: "chatgpt",
  parser: "chatgpt",
  section: { email: emailSchema },
  // The email intake: its IMAP server and the hosts its download may come from.
  hosts: (section) => {
    const email = section.email as EmailConfig;
    if (!email.enabled) return [];
    return [`${email.host}:${email.port}`, ...email.download_hosts, ...email.redirect_hosts];
  },
  secretEnv: Object.values(EMAIL_ENV),
  // Loaded only when doctor runs: the registry stays light.
  checks: async (section) =>
    (await import("../../common/mail/doctor.ts")).emailChecks(section.email as EmailConfig),
  downloads: true,
  // imapflow names the machine in its IMAP ID; its logger's loader probes Node's coverage switch.
  sys: ["hostname"],
  engineEnv: ["NODE_V8_COVERAGE"],
});
