import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  authorizeAsUser,
  authorizePath,
  formFields,
  openConsent,
  ScriptedBrowser,
} from './support/browser.js';
import { startTestServer, type TestServer } from './support/harness.js';

let t: TestServer;
let seq = 0;
const REDIRECT = 'https://partner.test/callback';
const PASSWORD = 'correct horse battery';

beforeAll(async () => {
  t = await startTestServer({ AUTH_RATE_LIMIT_PER_MINUTE: '1000' });
});
afterAll(() => t?.stop());

async function setup(partnerInput: Parameters<TestServer['partner']>[0] = {}) {
  const partner = await t.partner({ redirectUris: [REDIRECT], ...partnerInput });
  const email = `authz-${++seq}@example.com`;
  const user = await t.user({ email, password: PASSWORD, points: 100 });
  const query = { client_id: partner.clientId, redirect_uri: REDIRECT, scope: 'deduct', state: `s-${seq}` };
  return { partner, user, email, query };
}

function expectPageHeaders(res: Response) {
  expect(res.headers.get('content-type')).toMatch(/^text\/html/);
  expect(res.headers.get('x-frame-options')).toBe('DENY');
  expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
  expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  expect(res.headers.get('cache-control')).toBe('no-store');
}

const codeCount = async () =>
  Number((await t.db.query<{ n: string }>('select count(*) as n from oauth_codes'))[0]?.n);

describe('authorize endpoint: untrusted client or redirect URI', () => {
  it('shows an error page and never redirects when the redirect URI is not registered', async () => {
    const { query } = await setup();
    for (const redirect_uri of ['https://evil.test/callback', `${REDIRECT}/`, `${REDIRECT}?x=1`]) {
      const res = await new ScriptedBrowser(t.url).get(authorizePath({ ...query, redirect_uri }));
      expect(res.status).toBe(400);
      expect(res.headers.get('location')).toBeNull();
      expectPageHeaders(res);
      expect(await res.text()).toContain('not one this app registered');
    }
  });

  it('shows an error page for an unknown client', async () => {
    const { query } = await setup();
    const res = await new ScriptedBrowser(t.url).get(
      authorizePath({ ...query, client_id: 'tc_live_unknown' }),
    );
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
    expectPageHeaders(res);
  });

  it('lets only the port of a registered loopback redirect URI vary (RFC 8252 §7.3)', async () => {
    const { query } = await setup({ redirectUris: ['http://127.0.0.1/cb'] });
    const ok = await new ScriptedBrowser(t.url).get(
      authorizePath({ ...query, redirect_uri: 'http://127.0.0.1:5555/cb' }),
    );
    expect(ok.status).toBe(200);
    const bad = await new ScriptedBrowser(t.url).get(
      authorizePath({ ...query, redirect_uri: 'http://127.0.0.1:5555/other' }),
    );
    expect(bad.status).toBe(400);
  });
});

describe('redirect URIs are exact strings (RFC 9700 §4.1.3)', () => {
  it('refuses every spelling that only normalises to the registered loopback URI', async () => {
    const { query } = await setup({ redirectUris: ['http://127.0.0.1:4455/cb'] });
    const variants = [
      'http://127.1:4455/cb',
      'http://0x7f.0.0.1:4455/cb',
      'http://2130706433:4455/cb',
      'http://127.0.0.1:4455/cb/../cb',
      'http://127.0.0.1:4455/./cb',
      'http://127.0.0.1:4455/%63b',
      'HTTP://127.0.0.1:4455/cb',
      'http://127.0.0.1:4455/cb#',
      'http://user@127.0.0.1:4455/cb',
      'http://127.0.0.1:4455@evil.test/cb',
      'http://localhost:4455/cb',
    ];
    for (const redirect_uri of variants) {
      const res = await new ScriptedBrowser(t.url).get(authorizePath({ ...query, redirect_uri }));
      expect(res.status, redirect_uri).toBe(400);
      expect(res.headers.get('location'), redirect_uri).toBeNull();
    }
    const exact = await new ScriptedBrowser(t.url).get(
      authorizePath({ ...query, redirect_uri: 'http://127.0.0.1:4455/cb' }),
    );
    expect(exact.status).toBe(200);
  });

  it('refuses spellings of an https URI that normalise to it', async () => {
    const { query } = await setup();
    for (const redirect_uri of [
      'https://PARTNER.test/callback',
      'https://partner.test:443/callback',
      'https://partner.test/x/../callback',
      'https://partner.test/%63allback',
    ]) {
      const res = await new ScriptedBrowser(t.url).get(authorizePath({ ...query, redirect_uri }));
      expect(res.status, redirect_uri).toBe(400);
    }
  });

  it('registration refuses userinfo, fragments, non-canonical forms and plain http off loopback IPs', async () => {
    const refused = [
      'https://user:pw@partner.test/cb',
      'https://user@partner.test/cb',
      'https://partner.test/cb#frag',
      'https://partner.test/cb#',
      'http://partner.test/cb',
      'http://localhost:8080/cb',
      'http://127.1:8080/cb',
      'https://PARTNER.test/cb',
      'https://partner.test/a/../cb',
      'not a url',
    ];
    for (const uri of refused) {
      await expect(t.partner({ redirectUris: [uri] }), uri).rejects.toThrow(/redirect URI|absolute URL/);
    }
    for (const uri of ['https://partner.test/cb', 'http://127.0.0.1:8080/cb', 'http://[::1]/cb']) {
      await expect(t.partner({ redirectUris: [uri] }), uri).resolves.toBeTruthy();
    }
  });
});

describe('authorize endpoint: errors redirected to a trusted redirect URI', () => {
  const redirected = (res: Response) => {
    expect(res.status).toBe(302);
    return new URL(res.headers.get('location') ?? '');
  };

  it('redirects invalid_scope with state and iss', async () => {
    const { partner, query } = await setup({ allowedScopes: ['balance'] });
    const loc = redirected(
      await new ScriptedBrowser(t.url).get(authorizePath({ ...query, scope: 'deduct' })),
    );
    expect(`${loc.origin}${loc.pathname}`).toBe(REDIRECT);
    expect(loc.searchParams.get('error')).toBe('invalid_scope');
    expect(loc.searchParams.get('state')).toBe(query.state);
    expect(loc.searchParams.get('iss')).toBe(t.url);
    expect(partner).toBeTruthy();
  });

  it('redirects invalid_request when response_type is missing (RFC 6749 §4.1.1) and issues no code', async () => {
    const { query } = await setup();
    const before = await codeCount();
    const res = await new ScriptedBrowser(t.url).get(`/api/oauth2/authorize?${new URLSearchParams(query)}`);
    const loc = redirected(res);
    expect(loc.searchParams.get('error')).toBe('invalid_request');
    expect(loc.searchParams.get('error_description')).toContain('response_type');
    expect(loc.searchParams.get('state')).toBe(query.state);
    expect(await codeCount()).toBe(before);
  });

  it('redirects unsupported_response_type for anything but code (no implicit grant)', async () => {
    const { query } = await setup();
    const loc = redirected(
      await new ScriptedBrowser(t.url).get(authorizePath({ ...query, response_type: 'token' })),
    );
    expect(loc.searchParams.get('error')).toBe('unsupported_response_type');
  });

  it('redirects invalid_request when the partner requires PKCE and none is sent, or the method is plain', async () => {
    const { query } = await setup({ requirePkce: true });
    const none = redirected(await new ScriptedBrowser(t.url).get(authorizePath(query)));
    expect(none.searchParams.get('error')).toBe('invalid_request');
    expect(none.searchParams.get('state')).toBe(query.state);
    const plain = redirected(
      await new ScriptedBrowser(t.url).get(
        authorizePath({ ...query, code_challenge: 'x'.repeat(43), code_challenge_method: 'plain' }),
      ),
    );
    expect(plain.searchParams.get('error')).toBe('invalid_request');
    const s256 = await new ScriptedBrowser(t.url).get(
      authorizePath({ ...query, code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' }),
    );
    expect(s256.status).toBe(200);
  });

  it('ignores unknown parameters and sends no CORS headers (RFC 9700 §2.6)', async () => {
    const { query } = await setup();
    const res = await new ScriptedBrowser(t.url).get(authorizePath({ ...query, prompt: 'login' }), {
      origin: 'https://evil.test',
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('wallet sign-in and consent pages', () => {
  it('sign-in page: clickjacking headers and an httpOnly SameSite=Lax CSRF cookie, no session cookie', async () => {
    const { query } = await setup();
    const res = await new ScriptedBrowser(t.url).get(authorizePath(query));
    expect(res.status).toBe(200);
    expectPageHeaders(res);
    const cookie = res.headers.getSetCookie().join('\n');
    expect(cookie).toMatch(/^tian_csrf=/);
    expect(cookie).not.toMatch(/tian_wallet=/);
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Lax/);
    expect(await res.text()).toContain('name="csrf_token"');
  });

  it('login and consent POSTs answer 303; consent shows the app and permissions in plain words', async () => {
    const { partner, email, query } = await setup({ name: 'Acme <Reader> & "Co"' });
    // openConsent throws unless the sign-in POST answers 303 and the consent page 200.
    const { consent, browser: b } = await openConsent(t, query, { email, password: PASSWORD });
    expectPageHeaders(consent);
    const page = await consent.text();
    expect(page).toContain('Acme &#60;Reader&#62; &#38; &#34;Co&#34;');
    expect(page).not.toContain('<Reader>');
    expect(page).toContain('Deduct TIAN Points from your balance');
    expect(page).toMatch(/<button[^>]*>Allow<\/button>/);
    expect(page).toMatch(/<button[^>]*>Deny<\/button>/);
    const done = await b.post('/wallet/consent', { ...formFields(page), decision: 'allow' });
    expect(done.status).toBe(303);
    const loc = new URL(done.headers.get('location') ?? '');
    expect(loc.searchParams.get('code')).toMatch(/^tcac_/);
    expect(loc.searchParams.get('state')).toBe(query.state);
    expect(loc.searchParams.get('iss')).toBe(t.url);
    expect(partner.name).toContain('<Reader>');
  });

  it('Deny redirects with error=access_denied and the state', async () => {
    const { email, query } = await setup();
    const { location } = await authorizeAsUser(t, query, { email, password: PASSWORD }, 'deny');
    expect(location.searchParams.get('error')).toBe('access_denied');
    expect(location.searchParams.get('state')).toBe(query.state);
    expect(location.searchParams.get('code')).toBeNull();
  });

  it('a wrong password re-shows the sign-in page (401), without a redirect', async () => {
    const { email, query } = await setup();
    const b = new ScriptedBrowser(t.url);
    const login = await b.get(authorizePath(query));
    const res = await b.post('/wallet/login', {
      ...formFields(await login.text()),
      method: 'password',
      email,
      password: 'wrong password',
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('location')).toBeNull();
    expectPageHeaders(res);
    expect(await res.text()).toContain('The email or password is not right.');
  });

  it('signs in with a Privy session token', async () => {
    const partner = await t.partner({ redirectUris: [REDIRECT] });
    const user = await t.user({ points: 10 });
    const query = { client_id: partner.clientId, redirect_uri: REDIRECT, scope: 'balance', state: 'privy' };
    const b = new ScriptedBrowser(t.url);
    const loginPage = await (await b.get(authorizePath(query))).text();
    const forged = await b.post('/wallet/login', {
      ...formFields(loginPage, 1),
      method: 'privy',
      privy_id: user.privyId,
      session_token: 'not-a-jwt',
    });
    expect(forged.status).toBe(401);
    const res = await b.post('/wallet/login', {
      ...formFields(loginPage, 1),
      method: 'privy',
      privy_id: user.privyId,
      session_token: await t.privyToken(user.privyId),
    });
    expect(res.status).toBe(303);
    const consent = await b.get(res.headers.get('location') ?? '');
    expect(await consent.text()).toContain(`Signed in as ${user.privyId}`);
  });

  it('CSRF: a consent POST without or with a wrong token is refused with 403 and issues no code', async () => {
    const { email, query } = await setup();
    const { consent, browser: b } = await openConsent(t, query, { email, password: PASSWORD });
    const fields = formFields(await consent.text());
    const before = await codeCount();
    const { csrf_token: _, ...withoutToken } = fields;
    for (const form of [withoutToken, { ...fields, csrf_token: 'forged' }]) {
      const res = await b.post('/wallet/consent', { ...form, decision: 'allow' });
      expect(res.status).toBe(403);
      expect(res.headers.get('location')).toBeNull();
      expectPageHeaders(res);
    }
    // Another browser (no session cookie) posting the victim's form is refused too.
    const attacker = await new ScriptedBrowser(t.url).post('/wallet/consent', {
      ...fields,
      decision: 'allow',
    });
    expect(attacker.status).toBe(403);
    expect(await codeCount()).toBe(before);
  });

  it('CSRF: a sign-in POST without the token is refused', async () => {
    const { email } = await setup();
    const res = await new ScriptedBrowser(t.url).post('/wallet/login', {
      method: 'password',
      email,
      password: PASSWORD,
    });
    expect(res.status).toBe(403);
  });

  it('the consent POST re-checks the carried request: a swapped redirect URI gets an error page', async () => {
    const { email, query } = await setup();
    const { consent, browser: b } = await openConsent(t, query, { email, password: PASSWORD });
    const fields = formFields(await consent.text());
    const res = await b.post('/wallet/consent', {
      ...fields,
      redirect_uri: 'https://evil.test/cb',
      decision: 'allow',
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('location')).toBeNull();
  });
});

describe('wallet connected apps', () => {
  it('lists connected apps and revoking one revokes its tokens with token.revoked by user', async () => {
    const { partner, user, email, query } = await setup({ name: 'Settings App' });
    const { location, browser } = await authorizeAsUser(t, query, { email, password: PASSWORD });
    const tokenRes = await fetch(`${t.url}/api/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'authorization_code',
        code: location.searchParams.get('code'),
        redirect_uri: REDIRECT,
        client_id: partner.clientId,
        client_secret: partner.clientSecret,
      }),
    });
    const tokens = (await tokenRes.json()) as { access_token: string };
    const settings = await browser.get('/wallet/apps');
    expectPageHeaders(settings);
    const page = await settings.text();
    expect(page).toContain('Settings App');
    expect(page).toContain('Deduct TIAN Points from your balance');

    const formIndex = page.split('<form').findIndex((f) => f.includes(`value="${partner.id}"`)) - 1;
    const withoutCsrf = await browser.post('/wallet/apps/revoke', { partner_id: String(partner.id) });
    expect(withoutCsrf.status).toBe(403);
    const res = await browser.post('/wallet/apps/revoke', formFields(page, formIndex));
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/wallet/apps');
    const info = await fetch(`${t.url}/api/oauth2/token/info`, {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    expect(await info.json()).toMatchObject({ active: false });
    const events = await t.db.query<{ payload: Record<string, unknown>; partner_id: number }>(
      "select payload, partner_id from webhook_events where type = 'token.revoked' and (payload->>'userId')::bigint = $1",
      [user.id],
    );
    expect(events).toEqual([
      { partner_id: partner.id, payload: expect.objectContaining({ revokedBy: 'user', scope: 'deduct' }) },
    ]);
    expect(await (await browser.get('/wallet/apps')).text()).not.toContain('Settings App');
  });

  it('signing in from /wallet/login goes to the balance page with 303', async () => {
    const { email } = await setup();
    const b = new ScriptedBrowser(t.url);
    const login = await b.get('/wallet/login');
    const res = await b.post('/wallet/login', {
      ...formFields(await login.text()),
      method: 'password',
      email,
      password: PASSWORD,
    });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/wallet');
    expect(await (await b.get('/wallet/apps')).text()).toContain('No apps are connected');
  });
});

describe('authorization server metadata (RFC 8414)', () => {
  it('publishes the endpoints, S256 only and iss support', async () => {
    const res = await fetch(`${t.url}/.well-known/oauth-authorization-server`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      issuer: t.url,
      authorization_endpoint: `${t.url}/api/oauth2/authorize`,
      token_endpoint: `${t.url}/api/oauth2/token`,
      revocation_endpoint: `${t.url}/api/oauth2/revoke`,
      introspection_endpoint: `${t.url}/api/oauth2/introspect`,
      scopes_supported: ['deduct', 'balance', 'subscriptions'],
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      grant_types_supported: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      revocation_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
      introspection_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
      code_challenge_methods_supported: ['S256'],
      authorization_response_iss_parameter_supported: true,
    });
  });
});

describe('sign-in rate limit', () => {
  it('refuses sign-in attempts beyond AUTH_RATE_LIMIT_PER_MINUTE with 429', async () => {
    const limited = await startTestServer({ AUTH_RATE_LIMIT_PER_MINUTE: '2' });
    try {
      const b = new ScriptedBrowser(limited.url);
      const fields = formFields(await (await b.get('/wallet/login')).text());
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await b.post('/wallet/login', {
          ...fields,
          method: 'password',
          email: 'x@example.com',
          password: 'nope-nope',
        });
        statuses.push(res.status);
      }
      expect(statuses).toEqual([401, 401, 429]);
    } finally {
      await limited.stop();
    }
  });
});
