import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deductPoints, getBalance } from '../generated/sdk/index.js';
import { authorizeAsUser } from './support/browser.js';
import { startTestServer, type TestServer } from './support/harness.js';
import { pkcePair } from './support/oauth.js';

let t: TestServer;
let seq = 0;

beforeAll(async () => {
  t = await startTestServer({ AUTH_RATE_LIMIT_PER_MINUTE: '1000' });
});
afterAll(() => t?.stop());

const REDIRECT = 'https://partner.test/callback';

type Partner = Awaited<ReturnType<TestServer['partner']>>;

async function setup(opts: { scope?: string; refreshGraceSeconds?: number; pkce?: boolean } = {}) {
  const partner = await t.partner({
    name: `Token Partner ${++seq}`,
    redirectUris: [REDIRECT],
    ...(opts.refreshGraceSeconds !== undefined ? { refreshGraceSeconds: opts.refreshGraceSeconds } : {}),
  });
  const email = `token-user-${seq}@example.com`;
  const user = await t.user({ email, password: 'correct horse battery', points: 500 });
  const pkce = pkcePair();
  const query: Record<string, string> = {
    client_id: partner.clientId,
    redirect_uri: REDIRECT,
    scope: opts.scope ?? 'deduct balance',
    state: `st-${seq}`,
    ...(opts.pkce ? { code_challenge: pkce.challenge, code_challenge_method: 'S256' } : {}),
  };
  const { location } = await authorizeAsUser(t, query, { email, password: 'correct horse battery' });
  const code = location.searchParams.get('code') ?? '';
  return { partner, user, code, verifier: pkce.verifier };
}

async function token(body: Record<string, string>, init: { basic?: [string, string]; form?: boolean } = {}) {
  const headers: Record<string, string> = {
    'content-type': init.form ? 'application/x-www-form-urlencoded' : 'application/json',
  };
  if (init.basic) {
    const enc = (s: string) => encodeURIComponent(s);
    headers.authorization = `Basic ${Buffer.from(`${enc(init.basic[0])}:${enc(init.basic[1])}`).toString('base64')}`;
  }
  const res = await fetch(`${t.url}/api/oauth2/token`, {
    method: 'POST',
    headers,
    body: init.form ? new URLSearchParams(body).toString() : JSON.stringify(body),
  });
  return { res, json: (await res.json()) as Record<string, unknown> };
}

const exchange = (p: Partner, code: string, extra: Record<string, string> = {}) =>
  token({
    grant_type: 'authorization_code',
    code,
    redirect_uri: REDIRECT,
    client_id: p.clientId,
    client_secret: p.clientSecret,
    ...extra,
  });
const refresh = (p: Partner, refreshToken: string, extra: Record<string, string> = {}) =>
  token({
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
    client_id: p.clientId,
    client_secret: p.clientSecret,
    ...extra,
  });
const info = async (accessToken: string) => {
  const res = await fetch(`${t.url}/api/oauth2/token/info`, {
    headers: { authorization: `Bearer ${accessToken}` },
  });
  return { res, json: (await res.json()) as Record<string, unknown> };
};
const balanceStatus = async (accessToken: string) =>
  (await getBalance({ client: t.client({ Authorization: `Bearer ${accessToken}` }) })).response.status;
const revokedEvents = (userId: number) =>
  t.db.query<{ payload: Record<string, unknown> }>(
    "select payload from webhook_events where type = 'token.revoked' and (payload->>'userId')::bigint = $1 order by id",
    [userId],
  );

describe('token endpoint: authorization_code grant', () => {
  it('exchanges a code for exactly the documented token response, not cacheable', async () => {
    const { partner, user, code } = await setup();
    const { res, json } = await exchange(partner, code);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('pragma')).toBe('no-cache');
    expect(json).toEqual({
      access_token: expect.stringMatching(/^tcat_[A-Za-z0-9_-]{43}$/),
      token_type: 'Bearer',
      scope: 'deduct balance',
      expires_in: 2592000,
      refresh_token: expect.stringMatching(/^tcrt_[A-Za-z0-9_-]{43}$/),
      refresh_token_expires_in: 7776000,
      client_id: partner.clientId,
      client_name: partner.name,
      user_id: String(user.id),
      expires_at: t.clock.now().getTime() + 2592000 * 1000,
    });
  });

  it('stores tokens, codes and secrets only as hashes', async () => {
    const { partner, code } = await setup();
    const { json } = await exchange(partner, code);
    const dump = JSON.stringify(
      await t.db.query(
        'select (select json_agg(c) from oauth_codes c) as codes, (select json_agg(o) from oauth_tokens o) as tokens, (select json_agg(p) from partners p) as partners',
      ),
    );
    for (const secret of [code, json.access_token, json.refresh_token, partner.clientSecret]) {
      expect(dump).not.toContain(String(secret));
    }
  });

  it('accepts a form body with HTTP Basic client authentication', async () => {
    const { partner, code } = await setup();
    const { res, json } = await token(
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT },
      { form: true, basic: [partner.clientId, partner.clientSecret] },
    );
    expect(res.status).toBe(200);
    expect(json.token_type).toBe('Bearer');
  });

  it('refuses an unknown client and a wrong secret with 401 invalid_client', async () => {
    const { partner, code } = await setup();
    const unknown = await exchange({ ...partner, clientId: 'tc_live_nobody' }, code);
    expect(unknown.res.status).toBe(401);
    expect(unknown.json).toEqual({ error: 'invalid_client', error_description: expect.any(String) });
    const wrong = await exchange({ ...partner, clientSecret: 'tcsk_wrong' }, code);
    expect(wrong.res.status).toBe(401);
    expect(wrong.json.error).toBe('invalid_client');
    expect(wrong.res.headers.get('www-authenticate')).toBeNull();
    const basic = await token(
      { grant_type: 'authorization_code', code, redirect_uri: REDIRECT },
      { form: true, basic: [partner.clientId, 'tcsk_wrong'] },
    );
    expect(basic.res.status).toBe(401);
    expect(basic.res.headers.get('www-authenticate')).toMatch(/^Basic /);
    const none = await token({ grant_type: 'authorization_code', code, redirect_uri: REDIRECT });
    expect(none.res.status).toBe(401);
    expect(none.json.error).toBe('invalid_client');
    // The code survived all of that.
    expect((await exchange(partner, code)).res.status).toBe(200);
  });

  it('answers unsupported_grant_type, and invalid_request for malformed requests', async () => {
    const { partner } = await setup();
    const creds = { client_id: partner.clientId, client_secret: partner.clientSecret };
    const pw = await token({ grant_type: 'password', username: 'a', password: 'b', ...creds });
    expect(pw.res.status).toBe(400);
    expect(pw.json.error).toBe('unsupported_grant_type');
    const missing = await token({ ...creds } as Record<string, string>);
    expect(missing.res.status).toBe(400);
    expect(missing.json.error).toBe('invalid_request');
    const noCode = await token({ grant_type: 'authorization_code', redirect_uri: REDIRECT, ...creds });
    expect(noCode.json.error).toBe('invalid_request');
  });

  it('a code used twice fails with invalid_grant and revokes the tokens the first use issued', async () => {
    const { partner, user, code } = await setup();
    const first = await exchange(partner, code);
    const access = String(first.json.access_token);
    expect(await balanceStatus(access)).toBe(200);
    const second = await exchange(partner, code);
    expect(second.res.status).toBe(400);
    expect(second.json.error).toBe('invalid_grant');
    expect(await balanceStatus(access)).toBe(401);
    expect((await refresh(partner, String(first.json.refresh_token))).json.error).toBe('invalid_grant');
    const events = await revokedEvents(user.id);
    expect(events.map((e) => e.payload)).toEqual([
      {
        event: 'token.revoked',
        timestamp: expect.any(String),
        tokenId: expect.any(Number),
        userId: user.id,
        scope: 'deduct balance',
        revokedAt: expect.any(String),
        revokedBy: 'partner',
      },
    ]);
  });

  it('a code expires after 10 minutes (injected clock)', async () => {
    const { partner, code } = await setup();
    t.clock.advance(10 * 60 * 1000 + 1);
    const { res, json } = await exchange(partner, code);
    expect(res.status).toBe(400);
    expect(json).toEqual({
      error: 'invalid_grant',
      error_description: 'The authorization code has expired.',
    });
  });

  it('a code is bound to its client and redirect URI', async () => {
    const { partner, code } = await setup();
    const other = await t.partner({ redirectUris: [REDIRECT] });
    expect((await exchange(other, code)).json.error).toBe('invalid_grant');
    expect((await exchange(partner, code, { redirect_uri: 'https://partner.test/other' })).json.error).toBe(
      'invalid_grant',
    );
    expect((await exchange(partner, code)).res.status).toBe(200);
  });

  it('PKCE: the right verifier works; a wrong or missing one is invalid_grant', async () => {
    const { partner, code, verifier } = await setup({ pkce: true });
    expect((await exchange(partner, code)).json).toMatchObject({ error: 'invalid_grant' });
    const wrong = await exchange(partner, code, { code_verifier: pkcePair().verifier });
    expect(wrong.json).toEqual({
      error: 'invalid_grant',
      error_description: 'code_verifier does not match the code_challenge.',
    });
    expect((await exchange(partner, code, { code_verifier: verifier })).res.status).toBe(200);
  });

  it('PKCE downgrade: a verifier for a code issued without a challenge is invalid_grant', async () => {
    const { partner, code } = await setup();
    const res = await exchange(partner, code, { code_verifier: pkcePair().verifier });
    expect(res.res.status).toBe(400);
    expect(res.json.error).toBe('invalid_grant');
  });
});

describe('token endpoint: refresh_token grant', () => {
  it('rotates: the new pair works and both old tokens stop at once; a replay revokes everything', async () => {
    const { partner, user, code } = await setup();
    const first = (await exchange(partner, code)).json;
    const second = await refresh(partner, String(first.refresh_token));
    expect(second.res.status).toBe(200);
    expect(second.json.refresh_token).not.toBe(first.refresh_token);
    expect(await balanceStatus(String(first.access_token))).toBe(401);
    expect(await balanceStatus(String(second.json.access_token))).toBe(200);
    const oldInfo = await info(String(first.access_token));
    expect(oldInfo.json).toMatchObject({ active: false, revokedAt: expect.any(String) });

    const replay = await refresh(partner, String(first.refresh_token));
    expect(replay.res.status).toBe(400);
    expect(replay.json.error).toBe('invalid_grant');
    expect(await balanceStatus(String(second.json.access_token))).toBe(401);
    expect((await refresh(partner, String(second.json.refresh_token))).json.error).toBe('invalid_grant');
    expect((await revokedEvents(user.id)).map((e) => e.payload.revokedBy)).toEqual(['partner']);
  });

  it('renews the 90-day refresh lifetime on each rotation, and refuses an expired refresh token', async () => {
    const { partner, code } = await setup();
    const first = (await exchange(partner, code)).json;
    t.clock.advance(80 * 24 * 3600 * 1000);
    const second = (await refresh(partner, String(first.refresh_token))).json;
    expect(second.refresh_token_expires_in).toBe(7776000);
    t.clock.advance(80 * 24 * 3600 * 1000);
    const third = await refresh(partner, String(second.refresh_token));
    expect(third.res.status).toBe(200);
    t.clock.advance(90 * 24 * 3600 * 1000 + 1);
    const expired = await refresh(partner, String(third.json.refresh_token));
    expect(expired.json).toEqual({
      error: 'invalid_grant',
      error_description: 'The refresh token has expired.',
    });
  });

  it('allows a narrower scope on refresh and refuses a wider one with invalid_scope', async () => {
    const { partner, code } = await setup({ scope: 'balance' });
    const first = (await exchange(partner, code)).json;
    const wider = await refresh(partner, String(first.refresh_token), { scope: 'balance deduct' });
    expect(wider.res.status).toBe(400);
    expect(wider.json.error).toBe('invalid_scope');
    // The refused request used nothing up.
    const same = await refresh(partner, String(first.refresh_token));
    expect(same.json.scope).toBe('balance');

    const both = await setup({ scope: 'deduct balance' });
    const tokens = (await exchange(both.partner, both.code)).json;
    const narrow = await refresh(both.partner, String(tokens.refresh_token), { scope: 'balance' });
    expect(narrow.res.status).toBe(200);
    expect(narrow.json.scope).toBe('balance');
    const api = t.client({ Authorization: `Bearer ${narrow.json.access_token}` });
    expect((await getBalance({ client: api })).response.status).toBe(200);
    const deduct = await deductPoints({ client: api, body: { amount: 1 } });
    expect(deduct.response.status).toBe(403);
    expect(deduct.error).toMatchObject({ code: 'insufficient_scope' });
  });

  it('a disabled account gets no new tokens and its access token stops working', async () => {
    const { partner, user, code } = await setup();
    const first = (await exchange(partner, code)).json;
    await t.db.query('update users set disabled_at = $2 where id = $1', [user.id, t.clock.now()]);
    expect(await balanceStatus(String(first.access_token))).toBe(401);
    const res = await refresh(partner, String(first.refresh_token));
    expect(res.json).toEqual({ error: 'invalid_grant', error_description: 'The user account is disabled.' });
  });

  it('a refresh token works only for the client it was issued to', async () => {
    const { partner, code } = await setup();
    const first = (await exchange(partner, code)).json;
    const other = await t.partner({ redirectUris: [REDIRECT] });
    const stolen = await refresh(other, String(first.refresh_token));
    expect(stolen.json.error).toBe('invalid_grant');
    expect(await balanceStatus(String(first.access_token))).toBe(200);
  });

  it('grace window: only the immediately preceding refresh token may be presented again', async () => {
    const { partner, user, code } = await setup({ refreshGraceSeconds: 60 });
    const r0 = (await exchange(partner, code)).json;
    const r1 = (await refresh(partner, String(r0.refresh_token))).json;
    // r0 again within the window: a fresh pair; the pair minted from r0 before (r1) is revoked.
    t.clock.advance(10_000);
    const again = await refresh(partner, String(r0.refresh_token));
    expect(again.res.status).toBe(200);
    expect(await balanceStatus(String(r1.access_token))).toBe(401);
    expect(await balanceStatus(String(again.json.access_token))).toBe(200);
    // Rotate once more: r0 is now two tokens back, so inside the window it is a replay.
    const r2 = (await refresh(partner, String(again.json.refresh_token))).json;
    const old = await refresh(partner, String(r0.refresh_token));
    expect(old.json.error).toBe('invalid_grant');
    expect(await balanceStatus(String(r2.access_token))).toBe(401);
    expect((await revokedEvents(user.id)).length).toBeGreaterThanOrEqual(2);
  });

  it('grace window race, legitimate retry first: the superseded pair presented later revokes the whole family', async () => {
    const { partner, user, code } = await setup({ refreshGraceSeconds: 60 });
    const r0 = (await exchange(partner, code)).json;
    // r0 is rotated to r1 (say the response reached an attacker), then r0 is presented again inside
    // the window: r1's pair is revoked and r2 minted.
    const r1 = (await refresh(partner, String(r0.refresh_token))).json;
    t.clock.advance(5_000);
    const r2 = (await refresh(partner, String(r0.refresh_token))).json;
    expect(await balanceStatus(String(r2.access_token))).toBe(200);
    // Now r1 is presented: two parties hold this family, so neither keeps a working pair.
    const replay = await refresh(partner, String(r1.refresh_token));
    expect(replay.json.error).toBe('invalid_grant');
    expect(String(replay.json.error_description)).toContain('revoked');
    expect(await balanceStatus(String(r2.access_token))).toBe(401);
    expect((await refresh(partner, String(r2.refresh_token))).json.error).toBe('invalid_grant');
    const revoked = await revokedEvents(user.id);
    expect(revoked.map((e) => e.payload.revokedBy)).toContain('partner');
  });

  it('grace window race, the other party first: the successor was already used, so the retry is a replay', async () => {
    const { partner, code } = await setup({ refreshGraceSeconds: 60 });
    const r0 = (await exchange(partner, code)).json;
    const r1 = (await refresh(partner, String(r0.refresh_token))).json;
    const r2 = (await refresh(partner, String(r1.refresh_token))).json;
    t.clock.advance(5_000);
    // r0 inside the window, but its successor r1 has been rotated already: a replay.
    expect((await refresh(partner, String(r0.refresh_token))).json.error).toBe('invalid_grant');
    expect(await balanceStatus(String(r2.access_token))).toBe(401);
    expect((await refresh(partner, String(r2.refresh_token))).json.error).toBe('invalid_grant');
  });

  it('grace window: past the window the preceding token is a replay', async () => {
    const { partner, code } = await setup({ refreshGraceSeconds: 30 });
    const r0 = (await exchange(partner, code)).json;
    const r1 = (await refresh(partner, String(r0.refresh_token))).json;
    t.clock.advance(31_000);
    expect((await refresh(partner, String(r0.refresh_token))).json.error).toBe('invalid_grant');
    expect(await balanceStatus(String(r1.access_token))).toBe(401);
  });
});

describe('access tokens on the points API and token info', () => {
  it('token info describes an active token with exactly the seed fields', async () => {
    const { partner, user, code } = await setup({ scope: 'deduct' });
    const tokens = (await exchange(partner, code)).json;
    const { res, json } = await info(String(tokens.access_token));
    expect(res.status).toBe(200);
    expect(json).toEqual({
      active: true,
      scope: 'deduct',
      userId: user.id,
      partnerId: partner.id,
      expiresAt: new Date(Number(tokens.expires_at)).toISOString(),
      revokedAt: null,
    });
  });

  it('token info answers 401 problem+json for missing, malformed and unknown tokens', async () => {
    const cases: Record<string, string>[] = [
      {},
      { authorization: 'Token abc' },
      { authorization: 'Bearer tcat_unknown' },
    ];
    for (const headers of cases) {
      const res = await fetch(`${t.url}/api/oauth2/token/info`, { headers });
      expect(res.status).toBe(401);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    }
  });

  it('an expired access token is inactive and refused by the points API', async () => {
    const { partner, code } = await setup();
    const tokens = (await exchange(partner, code)).json;
    t.clock.advance(30 * 24 * 3600 * 1000 + 1);
    expect(await balanceStatus(String(tokens.access_token))).toBe(401);
    expect((await info(String(tokens.access_token))).json).toMatchObject({ active: false, revokedAt: null });
  });

  it('a token without the scope an operation needs gets 403 insufficient_scope', async () => {
    const { partner, code } = await setup({ scope: 'balance' });
    const tokens = (await exchange(partner, code)).json;
    const api = t.client({ Authorization: `Bearer ${tokens.access_token}` });
    const res = await deductPoints({ client: api, body: { amount: 5 } });
    expect(res.response.status).toBe(403);
    expect(res.error).toMatchObject({ code: 'insufficient_scope' });
  });
});

describe('revocation endpoint (RFC 7009)', () => {
  it('revokes an access token and its refresh token, emitting token.revoked by partner', async () => {
    const { partner, user, code } = await setup();
    const tokens = (await exchange(partner, code)).json;
    const res = await fetch(`${t.url}/api/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: tokens.access_token }),
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ success: true });
    expect(await balanceStatus(String(tokens.access_token))).toBe(401);
    expect((await refresh(partner, String(tokens.refresh_token))).json.error).toBe('invalid_grant');
    const revoked = await info(String(tokens.access_token));
    expect(revoked.json).toMatchObject({ active: false, revokedAt: t.clock.now().toISOString() });
    const events = await revokedEvents(user.id);
    expect(events.map((e) => e.payload)).toEqual([
      expect.objectContaining({ revokedBy: 'partner', userId: user.id }),
    ]);
  });

  it('answers 200 for unknown tokens; bad credentials are 401; another client cannot revoke', async () => {
    const { partner, code } = await setup();
    const tokens = (await exchange(partner, code)).json;
    const post = (body: Record<string, string>) =>
      fetch(`${t.url}/api/oauth2/revoke`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(body).toString(),
      });
    expect((await post({ token: 'tcrt_not-a-token' })).status).toBe(200);
    const bad = await post({
      token: String(tokens.refresh_token),
      client_id: partner.clientId,
      client_secret: 'tcsk_wrong',
    });
    expect(bad.status).toBe(401);
    expect(((await bad.json()) as { error: string }).error).toBe('invalid_client');
    const other = await t.partner();
    const foreign = await post({
      token: String(tokens.refresh_token),
      client_id: other.clientId,
      client_secret: other.clientSecret,
    });
    expect(foreign.status).toBe(200);
    expect(await balanceStatus(String(tokens.access_token))).toBe(200);
    const own = await post({
      token: String(tokens.refresh_token),
      client_id: partner.clientId,
      client_secret: partner.clientSecret,
    });
    expect(own.status).toBe(200);
    expect(await balanceStatus(String(tokens.access_token))).toBe(401);
  });
});

describe('introspection endpoint (RFC 7662)', () => {
  const introspect = async (token: string, p?: Partner, init: { basic?: boolean; json?: boolean } = {}) => {
    const headers: Record<string, string> = {
      'content-type': init.json ? 'application/json' : 'application/x-www-form-urlencoded',
    };
    const body: Record<string, string> = { token };
    if (p && init.basic) {
      headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(p.clientId)}:${encodeURIComponent(p.clientSecret)}`).toString('base64')}`;
    } else if (p) {
      body.client_id = p.clientId;
      body.client_secret = p.clientSecret;
    }
    const res = await fetch(`${t.url}/api/oauth2/introspect`, {
      method: 'POST',
      headers,
      body: init.json ? JSON.stringify(body) : new URLSearchParams(body).toString(),
    });
    return { res, json: (await res.json()) as Record<string, unknown> };
  };

  it('describes the caller’s active access and refresh tokens, not cacheable', async () => {
    const { partner, user, code } = await setup({ scope: 'deduct balance' });
    const tokens = (await exchange(partner, code)).json;
    const now = Math.floor(t.clock.now().getTime() / 1000);
    const access = await introspect(String(tokens.access_token), partner, { basic: true });
    expect(access.res.status).toBe(200);
    expect(access.res.headers.get('cache-control')).toBe('no-store');
    expect(access.json).toEqual({
      active: true,
      scope: 'deduct balance',
      client_id: partner.clientId,
      token_type: 'access_token',
      exp: now + 30 * 24 * 3600,
      iat: now,
      sub: String(user.id),
      iss: t.url,
    });
    const refreshInfo = await introspect(String(tokens.refresh_token), partner, { json: true });
    expect(refreshInfo.json).toMatchObject({
      active: true,
      token_type: 'refresh_token',
      exp: now + 90 * 24 * 3600,
    });
  });

  it('answers only {active: false} for another client’s, unknown, revoked, rotated and expired tokens', async () => {
    const { partner, code } = await setup();
    const tokens = (await exchange(partner, code)).json;
    const other = await t.partner({ redirectUris: [REDIRECT] });
    expect((await introspect(String(tokens.access_token), other)).json).toEqual({ active: false });
    expect((await introspect('tcat_unknown', partner)).json).toEqual({ active: false });
    expect((await introspect('not-a-token', partner)).json).toEqual({ active: false });
    const rotated = (await refresh(partner, String(tokens.refresh_token))).json;
    expect((await introspect(String(tokens.access_token), partner)).json).toEqual({ active: false });
    expect((await introspect(String(tokens.refresh_token), partner)).json).toEqual({ active: false });
    t.clock.advance(31 * 24 * 3600 * 1000);
    expect((await introspect(String(rotated.access_token), partner)).json).toEqual({ active: false });
    t.clock.advance(-31 * 24 * 3600 * 1000);
  });

  it('requires client authentication: none or a wrong secret is 401 invalid_client', async () => {
    const { partner, code } = await setup();
    const tokens = (await exchange(partner, code)).json;
    const anonymous = await introspect(String(tokens.access_token));
    expect(anonymous.res.status).toBe(401);
    expect(anonymous.json.error).toBe('invalid_client');
    const wrong = await introspect(String(tokens.access_token), { ...partner, clientSecret: 'tcsk_wrong' });
    expect(wrong.res.status).toBe(401);
    expect(wrong.json.error).toBe('invalid_client');
  });
});

describe('credentials that disagree are refused', () => {
  it('a bearer token with another partner’s or a made-up X-API-Key is 401 and deducts nothing', async () => {
    const { partner, user, code } = await setup({ scope: 'deduct balance' });
    const tokens = (await exchange(partner, code)).json;
    const other = await t.partner();
    const deduct = (headers: Record<string, string>) =>
      fetch(`${t.url}/api/v1/points/deduct`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${tokens.access_token}`,
          'content-type': 'application/json',
          ...headers,
        },
        body: JSON.stringify({ amount: 5 }),
      });
    const mismatch = await deduct({ 'X-API-Key': other.clientSecret });
    expect(mismatch.status).toBe(401);
    expect(((await mismatch.json()) as { code: string }).code).toBe('credentials_mismatch');
    const madeUp = await deduct({ 'X-API-Key': 'tcsk_made_up' });
    expect(madeUp.status).toBe(401);
    expect(((await madeUp.json()) as { code: string }).code).toBe('invalid_api_key');
    const [row] = await t.db.query<{ balance: number }>('select balance from users where id = $1', [user.id]);
    expect(row?.balance).toBe(500);
    // The token's own partner's key agrees with it.
    expect((await deduct({ 'X-API-Key': partner.clientSecret })).status).toBe(200);
  });
});
