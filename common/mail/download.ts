/**
 * An export's download: streamed to a `.part` file beside its destination, resumed with a
 * `Range` request after a cut, bounded in size, and renamed to its name only once whole, so the
 * export intake never sees half of it. Redirects are followed by hand, only to hosts the config
 * allows; the session cookie goes only to the download hosts, never to a tracking host, and only
 * over HTTPS (or to this machine). A connection that stops sending (a laptop that slept, a
 * dropped NAT entry) is given up after `stallMs` without a byte, and the next try resumes.
 *
 * @module
 */
import { isLoopbackHost } from "../loopback.ts";

/** What a download may do. */
export interface DownloadOptions {
  url: string;
  /** The finished file's path; the partial one is `<dest>.part`. */
  dest: string;
  /** Hosts (`host` or `host:port`) the export may come from; they get the cookie. */
  downloadHosts: readonly string[];
  /** Tracking-redirect hosts that may be passed through (no cookie sent to them). */
  redirectHosts: readonly string[];
  cookie?: { name: string; value: string };
  headers?: Record<string, string>;
  maxBytes: number;
  /** Tries after a cut or a transient failure, each resuming where the file stopped. */
  attempts?: number;
  /**
   * How long a try may wait for an answer or for the next bytes of the body (default 60 s):
   * without it, a connection that stopped sending held the mailbox intake, and a `--once` run,
   * for good.
   */
  stallMs?: number;
}

/** How a download ended. */
export type DownloadOutcome =
  | { kind: "done"; bytes: number }
  /** 401, 403, 404 or 410: the link expired or the cookie is not (or no longer) valid. */
  | { kind: "expired"; status: number }
  /** Never to be tried again as it is (a host not allowed, too large). */
  | { kind: "refused"; reason: string }
  /** Worth another try later (the network, a 5xx, a cut that did not resume). */
  | { kind: "failed"; reason: string };

const MAX_REDIRECTS = 5;
const STALL_MS = 60_000;

/** An abort signal that fires once `ms` pass without {@link StallGuard.touch}. */
class StallGuard {
  readonly #controller = new AbortController();
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly ms: number) {
    this.touch();
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Data arrived: the wait starts again. */
  touch(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(
      () => this.#controller.abort(new Error(`nothing received for ${this.ms / 1000} s`)),
      this.ms,
    );
  }

  done(): void {
    clearTimeout(this.#timer);
  }
}

/**
 * Whether `url`'s host is in `hosts` (`host` matches any port, `host:port` that port).
 *
 * @example A host with and without a port
 * ```ts
 * import { hostAllowed } from "./download.ts";
 * console.log(hostAllowed(new URL("https://chatgpt.com/x"), ["chatgpt.com"])); // true
 * console.log(hostAllowed(new URL("http://127.0.0.1:8080/x"), ["127.0.0.1:9090"])); // false
 * ```
 */
export function hostAllowed(url: URL, hosts: readonly string[]): boolean {
  const port = url.port || (url.protocol === "https:" ? "443" : "80");
  return hosts.some((h) => h === url.hostname || h === `${url.hostname}:${port}`);
}

/** Whether a secret may go to `url`: over TLS, or to this machine (a local proxy, the tests). */
function secureTo(url: URL): boolean {
  return url.protocol === "https:" || isLoopbackHost(url.hostname);
}

async function partSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch {
    return 0;
  }
}

/**
 * Downloads an export.
 *
 * @example A host not allowed is refused before any request
 * ```ts
 * import { download } from "./download.ts";
 * const out = await download({ url: "https://evil.example/x.zip", dest: "/tmp/x.zip", downloadHosts: ["chatgpt.com"], redirectHosts: [], maxBytes: 1 });
 * console.log(out.kind); // refused
 * ```
 */
export async function download(o: DownloadOptions): Promise<DownloadOutcome> {
  const part = `${o.dest}.part`;
  let last: DownloadOutcome = { kind: "failed", reason: "not tried" };
  for (let attempt = 0; attempt < (o.attempts ?? 3); attempt++) {
    last = await once(o, part);
    if (last.kind !== "failed") break;
  }
  if (last.kind === "done") await Deno.rename(part, o.dest);
  else if (last.kind !== "failed") await Deno.remove(part).catch(() => {});
  return last;
}

/** One try: follows redirects by hand, resumes the part file, streams the body. */
async function once(o: DownloadOptions, part: string): Promise<DownloadOutcome> {
  let url: URL;
  try {
    url = new URL(o.url);
  } catch {
    return { kind: "refused", reason: "the link is not a URL" };
  }
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const download = hostAllowed(url, o.downloadHosts);
    if (!download && !hostAllowed(url, o.redirectHosts)) {
      return {
        kind: "refused",
        reason: `${hop ? "it redirects to" : "the link points to"} ${url.host}, which is not in ` +
          `openai.email.download_hosts`,
      };
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      return { kind: "refused", reason: `${url.protocol} links are not followed` };
    }
    if (download && o.cookie && !secureTo(url)) {
      // Over plain HTTP anyone on the way would read the session cookie.
      return {
        kind: "refused",
        reason: `${hop ? "it redirects to" : "the link points to"} ${url.origin}: the session ` +
          `cookie is sent only over HTTPS`,
      };
    }
    const have = await partSize(part);
    const headers = new Headers(o.headers ?? {});
    if (download && o.cookie) headers.set("cookie", `${o.cookie.name}=${o.cookie.value}`);
    if (have > 0) headers.set("range", `bytes=${have}-`);
    const stall = new StallGuard(o.stallMs ?? STALL_MS);
    try {
      const outcome = await request(url, headers, o, part, have, stall);
      if (outcome instanceof URL) url = outcome;
      else return outcome;
    } finally {
      stall.done();
    }
  }
  return { kind: "refused", reason: `more than ${MAX_REDIRECTS} redirects` };
}

/** One request of a try: the next hop's URL for a redirect, else how the try ended. */
async function request(
  url: URL,
  headers: Headers,
  o: DownloadOptions,
  part: string,
  have: number,
  stall: StallGuard,
): Promise<DownloadOutcome | URL> {
  let response: Response;
  try {
    response = await fetch(url, { headers, redirect: "manual", signal: stall.signal });
  } catch (error) {
    const why = stall.signal.aborted ? stall.signal.reason : error;
    return { kind: "failed", reason: `cannot reach ${url.host}: ${(why as Error).message}` };
  }
  if (response.status >= 300 && response.status < 400) {
    await response.body?.cancel();
    const location = response.headers.get("location");
    if (!location) {
      return { kind: "failed", reason: `HTTP ${response.status} without a Location` };
    }
    return new URL(location, url);
  }
  if ([401, 403, 404, 410].includes(response.status)) {
    await response.body?.cancel();
    return { kind: "expired", status: response.status };
  }
  if (response.status !== 200 && response.status !== 206) {
    await response.body?.cancel();
    return { kind: "failed", reason: `HTTP ${response.status} from ${url.host}` };
  }
  return await receive(response, part, response.status === 206 ? have : 0, o.maxBytes, stall);
}

/** Streams a response into the part file from `from`, within `maxBytes`. */
async function receive(
  response: Response,
  part: string,
  from: number,
  maxBytes: number,
  stall: StallGuard,
): Promise<DownloadOutcome> {
  const length = Number(response.headers.get("content-length") ?? NaN);
  const total = Number.isFinite(length) ? from + length : NaN;
  if (total > maxBytes) {
    await response.body?.cancel();
    return {
      kind: "refused",
      reason: `the export is ${total} bytes, over openai.email.max_download_bytes (${maxBytes})`,
    };
  }
  const file = await Deno.open(part, { write: true, create: true, truncate: from === 0 });
  let written = from;
  try {
    await file.seek(from, Deno.SeekMode.Start);
    for await (const chunk of response.body ?? new ReadableStream<Uint8Array>()) {
      stall.touch();
      written += chunk.length;
      if (written > maxBytes) {
        await Deno.remove(part).catch(() => {});
        return {
          kind: "refused",
          reason: `the export exceeds openai.email.max_download_bytes (${maxBytes})`,
        };
      }
      for (let at = 0; at < chunk.length;) at += await file.write(chunk.subarray(at));
    }
  } catch (error) {
    const why = stall.signal.aborted ? stall.signal.reason : error;
    return { kind: "failed", reason: `cut after ${written} bytes: ${(why as Error).message}` };
  } finally {
    file.close();
  }
  if (Number.isFinite(total) && written !== total) {
    return { kind: "failed", reason: `cut after ${written} of ${total} bytes` };
  }
  return { kind: "done", bytes: written };
}
