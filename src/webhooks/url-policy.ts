import { isIP } from 'node:net';
import { addressRefusal, isLoopback } from './address-policy.js';

/** Names that resolve to this machine without asking DNS (RFC 6761 §6.3). */
export const isLocalhostName = (host: string): boolean => /^(?:.+\.)?localhost\.?$/i.test(host);

/**
 * Why a webhook URL may not be saved, or undefined when it may. Only what the URL itself says is
 * checked here; the addresses a host name resolves to are checked on every connection
 * (http-client.ts), because DNS answers change.
 */
export function urlRefusal(raw: string, allowLoopbackHttp: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'The URL is not a valid absolute URL.';
  }
  if (url.username || url.password) return 'Webhook URLs must not carry a user name or password.';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const literal = isIP(host) !== 0;
  const local = literal ? isLoopback(host) : isLocalhostName(host);
  if (url.protocol === 'http:') {
    if (!(allowLoopbackHttp && local)) {
      return allowLoopbackHttp
        ? 'Webhook URLs must use https; http is accepted only for loopback addresses (development).'
        : 'Webhook URLs must use https.';
    }
    return undefined;
  }
  if (url.protocol !== 'https:') return 'Webhook URLs must use https.';
  if (literal) {
    const refusal = addressRefusal(host, allowLoopbackHttp);
    if (refusal) return `Webhook URLs must not point into private networks: ${refusal}.`;
  } else if (local && !allowLoopbackHttp) {
    return `Webhook URLs must not point at this server: ${host} is a loopback name.`;
  }
  return undefined;
}
