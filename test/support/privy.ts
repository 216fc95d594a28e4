import { type CryptoKey, exportSPKI, generateKeyPair, SignJWT } from 'jose';

export type PrivySignOptions = {
  /** Seconds since the epoch the token is issued at (a test's clock); the real time otherwise. */
  now?: number;
  expiresInSec?: number;
  audience?: string;
  issuer?: string;
  /** Another key, to forge a session the server must refuse. */
  key?: CryptoKey;
};

export type PrivyApp = {
  appId: string;
  /** What the server needs to verify this app's sessions: PRIVY_APP_ID and PRIVY_VERIFICATION_KEY. */
  env: { PRIVY_APP_ID: string; PRIVY_VERIFICATION_KEY: string };
  /** A Privy session token (ES256 JWT, as Privy issues them) for `privyId`. */
  sign(privyId: string, opts?: PrivySignOptions): Promise<string>;
};

/** A Privy app of our own: a fresh ES256 key pair whose public half the server is configured with. */
export async function privyApp(appId: string): Promise<PrivyApp> {
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  return {
    appId,
    env: { PRIVY_APP_ID: appId, PRIVY_VERIFICATION_KEY: await exportSPKI(publicKey) },
    sign(privyId, opts = {}) {
      const now = opts.now ?? Math.floor(Date.now() / 1000);
      return new SignJWT({ sid: `${appId}-session` })
        .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
        .setIssuer(opts.issuer ?? 'privy.io')
        .setAudience(opts.audience ?? appId)
        .setSubject(privyId)
        .setIssuedAt(now - 10)
        .setExpirationTime(now + (opts.expiresInSec ?? 3600))
        .sign(opts.key ?? privateKey);
    },
  };
}

/** The legacy flow's credentials: the partner's API key plus the user's Privy id and session token. */
export function legacyHeaders(apiKey: string, privyId: string, sessionToken: string): Record<string, string> {
  return { 'x-api-key': apiKey, 'x-privy-id': privyId, 'x-privy-session-token': sessionToken };
}
