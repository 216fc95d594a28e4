import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBalance } from '../generated/sdk/index.js';
import { authorizeAsUser } from './support/browser.js';
import { startTestServer, type TestServer } from './support/harness.js';

const REDIRECT = 'https://partner.test/callback';
const PASSWORD = 'correct horse battery';
// Our test server speaks plain http on loopback.
const insecure = { [oauth.allowInsecureRequests]: true } as const;

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ AUTH_RATE_LIMIT_PER_MINUTE: '1000' });
});
afterAll(() => t?.stop());

describe('a partner using the stock oauth4webapi client (form bodies, client_secret_basic, PKCE)', () => {
  it('discovers the server, exchanges the code, refreshes and revokes', async () => {
    const partner = await t.partner({ name: 'Interop App', redirectUris: [REDIRECT], requirePkce: true });
    await t.user({ email: 'interop@example.com', password: PASSWORD, points: 42 });

    const issuer = new URL(t.url);
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
    );
    expect(as.code_challenge_methods_supported).toEqual(['S256']);
    const client: oauth.Client = { client_id: partner.clientId };
    // A secret with characters that RFC 6749 §2.3.1 form-encoding changes would still work; ours are base64url.
    const clientAuth = oauth.ClientSecretBasic(partner.clientSecret);

    const codeVerifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const { location } = await authorizeAsUser(
      t,
      {
        client_id: partner.clientId,
        redirect_uri: REDIRECT,
        response_type: 'code',
        scope: 'balance deduct',
        state,
        code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
      },
      { email: 'interop@example.com', password: PASSWORD },
    );
    // Checks state and the RFC 9207 `iss` against the discovered issuer.
    const callbackParams = oauth.validateAuthResponse(as, client, location, state);

    const codeResponse = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      clientAuth,
      callbackParams,
      REDIRECT,
      codeVerifier,
      insecure,
    );
    expect(codeResponse.headers.get('cache-control')).toBe('no-store');
    const tokens = await oauth.processAuthorizationCodeResponse(as, client, codeResponse);
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.scope).toBe('balance deduct');
    expect(tokens.expires_in).toBe(2592000);
    const api = (token: string) => t.client({ Authorization: `Bearer ${token}` });
    expect((await getBalance({ client: api(tokens.access_token) })).data?.balance).toBe(42);

    const refreshResponse = await oauth.refreshTokenGrantRequest(
      as,
      client,
      clientAuth,
      tokens.refresh_token ?? '',
      { ...insecure, additionalParameters: { scope: 'balance' } },
    );
    const refreshed = await oauth.processRefreshTokenResponse(as, client, refreshResponse);
    expect(refreshed.scope).toBe('balance');
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect((await getBalance({ client: api(tokens.access_token) })).response.status).toBe(401);

    // Reuse of the rotated refresh token surfaces as a standard OAuth error in the client library.
    const replayResponse = await oauth.refreshTokenGrantRequest(
      as,
      client,
      clientAuth,
      tokens.refresh_token ?? '',
      insecure,
    );
    await expect(oauth.processRefreshTokenResponse(as, client, replayResponse)).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    expect((await getBalance({ client: api(refreshed.access_token) })).response.status).toBe(401);
  });

  it('revokes with client_secret_basic, and a wrong secret is a 401 invalid_client the library understands as a Basic challenge', async () => {
    const partner = await t.partner({ name: 'Interop Revoke', redirectUris: [REDIRECT] });
    await t.user({ email: 'interop-revoke@example.com', password: PASSWORD, points: 1 });
    const issuer = new URL(t.url);
    const as = await oauth.processDiscoveryResponse(
      issuer,
      await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
    );
    const client: oauth.Client = { client_id: partner.clientId };
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const { location } = await authorizeAsUser(
      t,
      {
        client_id: partner.clientId,
        redirect_uri: REDIRECT,
        scope: 'balance',
        state,
        code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
      },
      { email: 'interop-revoke@example.com', password: PASSWORD },
    );
    const params = oauth.validateAuthResponse(as, client, location, state);

    const wrong = await oauth.authorizationCodeGrantRequest(
      as,
      client,
      oauth.ClientSecretBasic('tcsk_wrong'),
      params,
      REDIRECT,
      codeVerifier,
      insecure,
    );
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toMatch(/^Basic /);
    // The library reports the Basic challenge of RFC 6749 §5.2 before the body's invalid_client.
    await expect(oauth.processAuthorizationCodeResponse(as, client, wrong.clone())).rejects.toBeInstanceOf(
      oauth.WWWAuthenticateChallengeError,
    );
    expect(await wrong.json()).toMatchObject({ error: 'invalid_client' });

    const clientAuth = oauth.ClientSecretBasic(partner.clientSecret);
    const tokens = await oauth.processAuthorizationCodeResponse(
      as,
      client,
      await oauth.authorizationCodeGrantRequest(
        as,
        client,
        clientAuth,
        params,
        REDIRECT,
        codeVerifier,
        insecure,
      ),
    );
    await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, client, clientAuth, tokens.refresh_token ?? '', {
        ...insecure,
        additionalParameters: { token_type_hint: 'refresh_token' },
      }),
    );
    expect(
      (await getBalance({ client: t.client({ Authorization: `Bearer ${tokens.access_token}` }) })).response
        .status,
    ).toBe(401);
  });
});
