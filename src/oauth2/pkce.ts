import { createHash } from 'node:crypto';
import { InvalidGrant } from '../errors/index.js';
import { safeEqual } from '../lib/crypto.js';

/** RFC 7636 §4.1: 43 to 128 unreserved characters. */
const VERIFIER = /^[A-Za-z0-9\-._~]{43,128}$/;
/** An S256 challenge is BASE64URL(SHA256(verifier)): exactly 43 characters. */
export const S256_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;

export function s256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

/** RFC 7636 §4.6 and RFC 9700 §4.8.2 (a verifier without a stored challenge is a downgrade). */
export function checkCodeVerifier(challenge: string | null, verifier: string | undefined): void {
  if (challenge === null && verifier !== undefined) {
    throw new InvalidGrant('code_verifier was sent but the authorization request had no code_challenge.');
  }
  if (challenge === null) return;
  if (verifier === undefined) throw new InvalidGrant('code_verifier is required for this code.');
  if (!VERIFIER.test(verifier))
    throw new InvalidGrant('code_verifier must be 43 to 128 unreserved characters.');
  if (!safeEqual(s256(verifier), challenge))
    throw new InvalidGrant('code_verifier does not match the code_challenge.');
}
