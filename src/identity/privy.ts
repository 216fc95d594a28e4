import { type CryptoKey, importSPKI, errors as joseErrors, jwtVerify } from 'jose';
import { Unauthorized } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';

export type PrivyConfig = { appId: string; issuer: string; verificationKey: string | undefined };

/**
 * Verifies a Privy session token the way Privy documents it: an ES256 JWT signed with the app's
 * key, issuer `privy.io`, audience = the Privy app id, not expired, subject = the user's Privy id.
 */
export class PrivyVerifier {
  private key: Promise<CryptoKey> | undefined;

  constructor(
    private readonly cfg: PrivyConfig,
    private readonly clock: Clock,
  ) {
    if (cfg.verificationKey) this.key = importSPKI(cfg.verificationKey.replace(/\\n/g, '\n'), 'ES256');
  }

  /** Returns the verified Privy id, or throws a 401 problem saying what was wrong. */
  async verify(sessionToken: string, privyId: string): Promise<string> {
    if (!this.key) {
      throw new Unauthorized('privy_not_configured', 'This server has no Privy verification key configured.');
    }
    let sub: string | undefined;
    try {
      const { payload } = await jwtVerify(sessionToken, await this.key, {
        algorithms: ['ES256'],
        issuer: this.cfg.issuer,
        audience: this.cfg.appId,
        currentDate: this.clock.now(),
        requiredClaims: ['sub', 'exp', 'iat'],
      });
      sub = payload.sub;
    } catch (err) {
      throw new Unauthorized('invalid_session_token', describeJwtError(err));
    }
    if (sub !== privyId) {
      throw new Unauthorized('invalid_session_token', 'The session token does not belong to this privyId.');
    }
    return sub;
  }
}

function describeJwtError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'The Privy session token has expired.';
  if (err instanceof joseErrors.JWTClaimValidationFailed)
    return `The Privy session token's ${err.claim} claim is invalid.`;
  if (err instanceof joseErrors.JWSSignatureVerificationFailed)
    return 'The Privy session token signature is invalid.';
  return 'The Privy session token is malformed or not signed by this app.';
}
