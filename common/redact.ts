/**
 * Keeping secrets and hostile text out of every exit (logs, status, errors, the state database):
 * {@link Redactor} masks registered secrets in the forms they are echoed in, and
 * {@link printable} makes text from a server or a file safe to print (no control characters,
 * bounded length).
 *
 * @module
 */

/** What a masked secret is replaced with. */
export const REDACTED = "[redacted]";

/**
 * Masks registered secrets: as given, percent-encoded and JSON-escaped (how servers echo them).
 *
 * @example Mask a token a server echoed
 * ```ts
 * import { Redactor } from "./redact.ts";
 * const redactor = new Redactor();
 * redactor.add("s3cr3t-token");
 * redactor.mask('{"error":"bad header Bearer s3cr3t-token"}'); // '{"error":"bad header Bearer [redacted]"}'
 * ```
 */
export class Redactor {
  #forms: string[] = [];

  /** Registers a secret (values under 4 characters are too short to mask safely). */
  add(secret: string | undefined): void {
    if (!secret || secret.length < 4) return;
    const forms = [secret, encodeURIComponent(secret), JSON.stringify(secret).slice(1, -1)];
    for (const form of forms) if (!this.#forms.includes(form)) this.#forms.push(form);
    // Longest first, so a form that contains another is masked whole.
    this.#forms.sort((a, b) => b.length - a.length);
  }

  /** `text` with every registered secret masked. */
  mask(text: string): string {
    let out = text;
    for (const form of this.#forms) if (out.includes(form)) out = out.replaceAll(form, REDACTED);
    return out;
  }
}

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
// deno-lint-ignore no-control-regex
const CONTROL_OR_NEWLINE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g;

/**
 * Text from outside (a server's answer, a file's line or name) made safe to print: control
 * characters other than newline and tab become `\uFFFD` (no terminal escapes), and it is cut to
 * `max` characters. With `oneLine`, newlines and carriage returns go too: a log line quoting a
 * file name that holds one could otherwise forge a line of the log.
 *
 * @example Neutralise a terminal escape
 * ```ts
 * import { printable } from "./redact.ts";
 * printable("ok\u001b[2Jgone", 100); // "ok\uFFFD[2Jgone"
 * ```
 */
export function printable(text: string, max: number, oneLine = false): string {
  const clean = text.replace(oneLine ? CONTROL_OR_NEWLINE : CONTROL, "\uFFFD");
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}
