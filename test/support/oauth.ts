import { createHash, randomBytes } from 'node:crypto';
import { authorizeAsUser } from './browser.js';
import type { TestServer } from './harness.js';

export type TokenSet = {
  access_token: string;
  refresh_token: string;
  scope: string;
  [k: string]: unknown;
};

/** A PKCE verifier and its S256 challenge (RFC 7636 §4.1-4.2). */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** A JSON request to the token endpoint, as the seed's curl examples send it. */
export function tokenRequest(t: Pick<TestServer, 'url'>, body: Record<string, string>): Promise<Response> {
  return fetch(new URL('/api/oauth2/token', t.url), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

/**
 * A token set through the real flow: authorize (PKCE S256) -> sign-in -> consent (allow) -> the
 * redirect's code -> token endpoint. Throws saying which step failed.
 */
export async function obtainTokens(
  t: TestServer,
  input: {
    client: { clientId: string; clientSecret: string };
    redirectUri: string;
    user: { email: string; password: string };
    scope: string;
  },
): Promise<TokenSet> {
  const { verifier, challenge } = pkcePair();
  const state = randomBytes(8).toString('hex');
  const { location } = await authorizeAsUser(
    t,
    {
      client_id: input.client.clientId,
      redirect_uri: input.redirectUri,
      scope: input.scope,
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
    },
    input.user,
  );
  const error = location.searchParams.get('error');
  if (error)
    throw new Error(`authorization failed: ${error} ${location.searchParams.get('error_description')}`);
  if (location.searchParams.get('state') !== state)
    throw new Error('the authorization response lost the state');
  const res = await tokenRequest(t, {
    grant_type: 'authorization_code',
    code: location.searchParams.get('code') ?? '',
    redirect_uri: input.redirectUri,
    client_id: input.client.clientId,
    client_secret: input.client.clientSecret,
    code_verifier: verifier,
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`token exchange: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as TokenSet;
}
