import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { isIP } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Agent, type Dispatcher, request } from 'undici';
import { addressRefusal, isLoopback } from './address-policy.js';
import { isLocalhostName } from './url-policy.js';

/** Resolves a host name to its addresses (the system resolver, or a stub in tests). */
export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

/** Reserved names never sent to DNS: they cannot name a partner's public receiver (RFC 6761, 6762). */
const RESERVED_NAME = /(?:^[^.]+\.?$|\.(?:test|invalid|example|local|internal|home\.arpa)\.?$)/i;

export const systemResolver: Resolver = (hostname) => {
  if (isLocalhostName(hostname))
    return Promise.resolve([
      { address: '127.0.0.1', family: 4 },
      { address: '::1', family: 6 },
    ]);
  if (RESERVED_NAME.test(hostname))
    return Promise.reject(new AddressRefused(`${hostname} is a reserved name that is not resolved`));
  return new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true, verbatim: true }, (err, addresses) =>
      err ? reject(err) : resolve(addresses),
    ),
  );
};

/** A connection we refused to make (SSRF rules); recorded as the attempt's error. */
export class AddressRefused extends Error {
  readonly code = 'ERR_WEBHOOK_ADDRESS_REFUSED';
}

export type HttpOutcome = {
  /** null when no response arrived. */
  statusCode: number | null;
  latencyMs: number;
  /** Why no response arrived (network error, timeout, refused address). */
  error: string | null;
  /** The first 1 KiB of the response body. */
  responseBody: string | null;
  retryAfter: string | undefined;
};

export type HttpClientOptions = {
  timeoutMs: number;
  /** Development only: loopback addresses may be reached (https, and plain http). */
  allowLoopback: boolean;
  resolve?: Resolver;
};

const RESPONSE_SNIPPET_BYTES = 1024;

/**
 * POSTs webhooks without ever reaching a forbidden address: every connection resolves the host
 * through a lookup that refuses private, loopback (unless allowed), link-local, CGNAT, multicast,
 * unspecified and metadata addresses, and checks literal addresses (which skip the lookup) before
 * sending. Redirects are never followed (undici's request follows none unless told to).
 */
export class WebhookHttpClient {
  private readonly https: Agent;
  /** Plain http goes only to loopback, and only where the development switch allows it. */
  private readonly http: Agent | undefined;

  constructor(private readonly opts: HttpClientOptions) {
    const resolve = opts.resolve ?? systemResolver;
    const agent = (loopbackOnly: boolean) =>
      new Agent({
        connect: {
          lookup: guardedLookup(resolve, opts.allowLoopback, loopbackOnly),
          timeout: opts.timeoutMs,
        },
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
        connections: 10,
      });
    this.https = agent(false);
    this.http = opts.allowLoopback ? agent(true) : undefined;
  }

  async post(url: string, headers: Record<string, string>, body: string): Promise<HttpOutcome> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const failed = (error: string): HttpOutcome => ({
      statusCode: null,
      latencyMs: elapsed(),
      error: clean(error),
      responseBody: null,
      retryAfter: undefined,
    });
    const target = new URL(url);
    const dispatcher = this.dispatcherFor(target);
    if (typeof dispatcher === 'string') return failed(dispatcher);
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), this.opts.timeoutMs);
    try {
      const res = await request(target, {
        method: 'POST',
        headers,
        body,
        dispatcher,
        signal: timeout.signal,
      });
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        chunks.push(chunk as Buffer);
        size += (chunk as Buffer).length;
        if (size >= RESPONSE_SNIPPET_BYTES) break; // leaving the loop destroys the stream
      }
      const retryAfter = res.headers['retry-after'];
      return {
        statusCode: res.statusCode,
        latencyMs: elapsed(),
        error: null,
        responseBody: clean(Buffer.concat(chunks).subarray(0, RESPONSE_SNIPPET_BYTES).toString('utf8')),
        retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
      };
    } catch (err) {
      if (timeout.signal.aborted) return failed(`timed out after ${this.opts.timeoutMs} ms`);
      return failed(describe(err));
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.https.close(), this.http?.close()]);
  }

  /** The agent for this URL, or why it may not be contacted at all. */
  private dispatcherFor(url: URL): Dispatcher | string {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (url.protocol === 'http:') {
      if (!this.http) return 'refused: plain http is not allowed (https only)';
      if (isIP(host) !== 0 && !isLoopback(host)) return `refused: plain http only to loopback, not ${host}`;
      return this.http;
    }
    if (url.protocol !== 'https:') return `refused: ${url.protocol} is not https`;
    // A literal address never goes through the lookup, so it is checked here.
    if (isIP(host) !== 0) {
      const refusal = addressRefusal(host, this.opts.allowLoopback);
      if (refusal) return `refused: ${refusal}`;
    }
    return this.https;
  }
}

/** net.connect's `lookup`: resolve, then refuse the connection if ANY answer is forbidden. */
function guardedLookup(resolve: Resolver, allowLoopback: boolean, loopbackOnly: boolean): LookupFunction {
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (addresses) => {
        for (const a of addresses) {
          const refusal =
            loopbackOnly && !isLoopback(a.address)
              ? `${a.address} is not a loopback address`
              : addressRefusal(a.address, allowLoopback);
          if (refusal) return callback(new AddressRefused(`${hostname}: ${refusal}`), '', 4);
        }
        const wanted =
          options.family === 4 || options.family === 6
            ? addresses.filter((a) => a.family === options.family)
            : addresses;
        if (wanted.length === 0) {
          const err = Object.assign(new Error(`${hostname} has no usable address`), { code: 'ENOTFOUND' });
          return callback(err, '', 4);
        }
        if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, wanted);
        const [first] = wanted as [LookupAddress];
        callback(null, first.address, first.family);
      },
      (err: Error) => callback(err as NodeJS.ErrnoException, '', 4),
    );
  };
}

/** One line for the delivery log: the innermost cause that says what went wrong. */
function describe(err: unknown): string {
  let e: unknown = err;
  for (let i = 0; i < 5 && e instanceof Error; i++) {
    if (e instanceof AddressRefused) return `refused: ${e.message}`;
    const cause = (e as { cause?: unknown }).cause;
    if (!(cause instanceof Error)) break;
    e = cause;
  }
  const x = e as NodeJS.ErrnoException;
  const code = x?.code;
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset';
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `could not resolve the host (${code})`;
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return 'connect timed out';
  return `${code ? `${code}: ` : ''}${x?.message ?? String(err)}`;
}

/** PostgreSQL text holds no NUL; the log shows what arrived, minus that. */
const clean = (s: string): string => s.replaceAll('\u0000', '\uFFFD');
