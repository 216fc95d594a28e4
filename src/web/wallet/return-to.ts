const BASE = 'http://wallet.invalid';

/**
 * Where to send the user after signing in: a wallet page of this site, as a relative path, or
 * undefined for anything else (another origin, `//host`, a backslash trick, a path outside /wallet),
 * so the sign-in page is never an open redirector (RFC 9700 §4.11).
 */
export function walletReturnPath(raw: unknown): string | undefined {
  if (typeof raw !== 'string' || raw.length > 2000 || !raw.startsWith('/wallet')) return undefined;
  // Browsers read `\` as `/` and drop tabs and newlines: nothing of the kind gets through.
  if (/[\\\u0000-\u0020\u007f]/.test(raw)) return undefined;
  let url: URL;
  try {
    url = new URL(raw, BASE);
  } catch {
    return undefined;
  }
  const inWallet = url.pathname === '/wallet' || url.pathname.startsWith('/wallet/');
  if (url.origin !== BASE || !inWallet || url.pathname === '/wallet/login') return undefined;
  return `${url.pathname}${url.search}`;
}
