import { createHmac, randomBytes } from 'node:crypto';
import { safeEqual } from '../../lib/crypto.js';

/** A wallet form was posted without the right CSRF token: answered with a 403 page. */
export class CsrfError extends Error {
  constructor() {
    super('The form has expired or did not come from this site. Go back and try again.');
  }
}

/** Every wallet form carries a token that must be one of `accepted`; compared in constant time. */
export function checkCsrf(accepted: readonly (string | undefined)[], submitted: unknown): void {
  const matches = (t: string | undefined) =>
    t !== undefined && typeof submitted === 'string' && safeEqual(submitted, t);
  if (!accepted.map(matches).includes(true)) throw new CsrfError();
}

/**
 * The CSRF token of a visitor who has not signed in, kept in a cookie instead of a table row, so an
 * anonymous visit costs the server nothing (signed double-submit, OWASP CSRF cheat sheet): the form
 * must echo the cookie, and the cookie must carry our HMAC over its nonce and expiry, so a value an
 * attacker made up (or planted through a sibling domain) is refused. Format: nonce.expiry.signature.
 */
export class AnonymousCsrf {
  constructor(
    private readonly key: Buffer,
    readonly ttlMs: number,
  ) {}

  mint(now: Date): string {
    const payload = `${randomBytes(18).toString('base64url')}.${Math.floor((now.getTime() + this.ttlMs) / 1000)}`;
    return `${payload}.${this.sign(payload)}`;
  }

  /** The token's expiry if we signed it and it has not expired, else undefined. */
  expiresAt(token: string | undefined, now: Date): Date | undefined {
    const m =
      token === undefined ? null : /^([A-Za-z0-9_-]{24}\.(\d{1,12}))\.([A-Za-z0-9_-]{43})$/.exec(token);
    if (!m?.[1] || !m[2] || !m[3] || !safeEqual(m[3], this.sign(m[1]))) return undefined;
    const expiry = new Date(Number(m[2]) * 1000);
    return expiry > now ? expiry : undefined;
  }

  private sign(payload: string): string {
    return createHmac('sha256', this.key).update(`wallet-csrf.v1.${payload}`).digest('base64url');
  }
}
