import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { purgeExpired } from '../src/housekeeping.js';
import { purgeExpiredCodes, purgeExpiredTokens } from '../src/oauth2/codes.js';
import { purgeExpiredSessions } from '../src/web/shared/sessions.js';
import { authorizeAsUser, formFields, ScriptedBrowser, signInToWallet } from './support/browser.js';
import { startTestServer, type TestServer } from './support/harness.js';
import { type CapturedLogs, captureLogs } from './support/logs.js';

let t: TestServer;
let seq = 0;
const REDIRECT = 'https://partner.test/callback';
const PASSWORD = 'correct horse battery';
const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;

let logs: CapturedLogs;

beforeAll(async () => {
  logs = captureLogs();
  t = await startTestServer({ AUTH_RATE_LIMIT_PER_MINUTE: '1000' }, { logDestination: logs.stream });
});
afterAll(() => t?.stop());

async function setup() {
  const partner = await t.partner({ redirectUris: [REDIRECT] });
  const email = `hardening-${++seq}@example.com`;
  const user = await t.user({ email, password: PASSWORD, points: 100 });
  const query = {
    client_id: partner.clientId,
    response_type: 'code',
    redirect_uri: REDIRECT,
    scope: 'deduct',
    state: `s-${seq}`,
  };
  return { partner, user, email, query };
}

const authorizeUrl = (query: Record<string, string>) => `/api/oauth2/authorize?${new URLSearchParams(query)}`;

const count = async (table: 'wallet_sessions' | 'oauth_codes' | 'oauth_tokens') =>
  Number((await t.db.query<{ n: string }>(`select count(*) as n from ${table}`))[0]?.n);
const countOf = async (table: 'oauth_codes' | 'oauth_tokens', partnerId: number) =>
  Number(
    (
      await t.db.query<{ n: string }>(`select count(*) as n from ${table} where partner_id = $1`, [partnerId])
    )[0]?.n,
  );

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** The value a response's Set-Cookie gives `name`, if it sets it. */
function setCookie(res: Response, name: string): string | undefined {
  const c = res.headers.getSetCookie().find((h) => h.startsWith(`${name}=`));
  return c?.slice(name.length + 1).split(';')[0];
}

/** A form POST with exactly the cookies given (no cookie jar). */
function rawPost(path: string, form: Record<string, string>, cookie?: string): Promise<Response> {
  return fetch(`${t.url}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
    body: new URLSearchParams(form).toString(),
  });
}

function tokenRequest(body: Record<string, string>): Promise<Response> {
  return fetch(`${t.url}/api/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function exchange(partner: Awaited<ReturnType<typeof setup>>['partner'], code: string) {
  const res = await tokenRequest({
    grant_type: 'authorization_code',
    code,
    redirect_uri: REDIRECT,
    client_id: partner.clientId,
    client_secret: partner.clientSecret,
  });
  expect(res.status).toBe(200);
  return (await res.json()) as { access_token: string; refresh_token: string };
}

async function isActive(accessToken: string): Promise<boolean> {
  const res = await fetch(`${t.url}/api/oauth2/token/info`, {
    headers: { authorization: `Bearer ${accessToken}` },
  });
  return ((await res.json()) as { active: boolean }).active;
}

describe('anonymous visitors cost the server no rows', () => {
  it('200 anonymous views each of /wallet/login and of the authorize sign-in page add no wallet_sessions row', async () => {
    const { query } = await setup();
    const before = await count('wallet_sessions');
    for (const path of ['/wallet/login', authorizeUrl(query)]) {
      for (let batch = 0; batch < 10; batch++) {
        const responses = await Promise.all(
          Array.from({ length: 20 }, () => fetch(`${t.url}${path}`, { redirect: 'manual' })),
        );
        for (const res of responses) {
          expect(res.status).toBe(200);
          expect(setCookie(res, 'tian_wallet')).toBeUndefined();
          const csrf = res.headers.getSetCookie().find((c) => c.startsWith('tian_csrf='));
          expect(csrf).toMatch(/HttpOnly/);
          expect(csrf).toMatch(/SameSite=Lax/);
        }
      }
    }
    expect(await count('wallet_sessions')).toBe(before);
  });

  it('the sign-in form works with the CSRF cookie; only the sign-in stores a session, under a new id (no fixation)', async () => {
    const { email, query } = await setup();
    const planted = 'tian_wallet=tcws_planted-by-an-attacker';
    const page = await fetch(`${t.url}${authorizeUrl(query)}`, { headers: { cookie: planted } });
    expect(page.status).toBe(200);
    const csrfCookie = setCookie(page, 'tian_csrf') ?? '';
    const fields = formFields(await page.text());
    expect(fields.csrf_token).toBe(csrfCookie);
    const before = await count('wallet_sessions');

    const res = await rawPost(
      '/wallet/login',
      { ...fields, method: 'password', email, password: PASSWORD },
      `${planted}; tian_csrf=${csrfCookie}`,
    );
    expect(res.status).toBe(303);
    const sessionId = setCookie(res, 'tian_wallet') ?? '';
    expect(sessionId).toMatch(/^tcws_/);
    expect(sessionId).not.toBe('tcws_planted-by-an-attacker');
    expect(res.headers.getSetCookie().find((c) => c.startsWith('tian_wallet='))).toMatch(
      /HttpOnly.*SameSite=Lax|SameSite=Lax.*HttpOnly/,
    );
    expect(await count('wallet_sessions')).toBe(before + 1);
    const rows = await t.db.query('select 1 from wallet_sessions where id_hash = $1', [sha256(sessionId)]);
    expect(rows).toHaveLength(1);

    // The consent page now shows, for the new session.
    const consent = await fetch(`${t.url}${res.headers.get('location')}`, {
      headers: { cookie: `tian_wallet=${sessionId}` },
    });
    expect(await consent.text()).toMatch(/<button[^>]*>Allow<\/button>/);
  });

  it('a sign-in POST without the token, with a wrong, forged, expired or another browser token is refused with 403', async () => {
    const { email } = await setup();
    const creds = { method: 'password', email, password: PASSWORD };
    const mine = await fetch(`${t.url}/wallet/login`);
    const myCookie = setCookie(mine, 'tian_csrf') ?? '';
    const myToken = formFields(await mine.text()).csrf_token ?? '';
    const theirs = await fetch(`${t.url}/wallet/login`);
    const theirCookie = setCookie(theirs, 'tian_csrf') ?? '';
    const future = Math.floor(t.clock.now().getTime() / 1000) + 3600;
    const madeUp = `${'a'.repeat(24)}.${future}.${'b'.repeat(43)}`;
    const before = await count('wallet_sessions');

    const attempts: [string, Record<string, string>, string | undefined][] = [
      ['no token', creds, `tian_csrf=${myCookie}`],
      ['wrong token', { ...creds, csrf_token: 'forged' }, `tian_csrf=${myCookie}`],
      ['no cookie', { ...creds, csrf_token: myToken }, undefined],
      ["another browser's cookie", { ...creds, csrf_token: myToken }, `tian_csrf=${theirCookie}`],
      ['a pair we did not sign', { ...creds, csrf_token: madeUp }, `tian_csrf=${madeUp}`],
    ];
    for (const [, form, cookie] of attempts) {
      const res = await rawPost('/wallet/login', form, cookie);
      expect(res.status).toBe(403);
      expect(res.headers.get('location')).toBeNull();
      expect(res.headers.get('x-frame-options')).toBe('DENY');
      expect(await res.text()).toContain('did not come from this site');
    }
    t.clock.advance(8 * HOUR + 60_000);
    const expired = await rawPost(
      '/wallet/login',
      { ...creds, csrf_token: myToken },
      `tian_csrf=${myCookie}`,
    );
    expect(expired.status).toBe(403);
    expect(await count('wallet_sessions')).toBe(before);

    // The same credentials with a fresh form sign in: only the token was wrong above.
    const fresh = await fetch(`${t.url}/wallet/login`);
    const ok = await rawPost(
      '/wallet/login',
      { ...creds, csrf_token: formFields(await fresh.text()).csrf_token ?? '' },
      `tian_csrf=${setCookie(fresh, 'tian_csrf')}`,
    );
    expect(ok.status).toBe(303);
  });

  it("a signed-in session's forms need that session's own token, not the anonymous cookie's", async () => {
    const { email } = await setup();
    const b = new ScriptedBrowser(t.url);
    const anonymousToken = formFields(await (await b.get('/wallet/login')).text()).csrf_token ?? '';
    const signedIn = await b.post('/wallet/login', {
      csrf_token: anonymousToken,
      method: 'password',
      email,
      password: PASSWORD,
    });
    expect(signedIn.status).toBe(303);
    const refused = await b.post('/wallet/logout', { csrf_token: anonymousToken });
    expect(refused.status).toBe(403);
    const wallet = await (await b.get('/wallet')).text();
    const logout = await b.post('/wallet/logout', formFields(wallet));
    expect(logout.status).toBe(303);
    expect(logout.headers.get('location')).toBe('/wallet/login');
  });
});

describe('sign-in rate limit (per client address)', () => {
  let limited: TestServer;
  let address = 0;
  beforeAll(async () => {
    limited = await startTestServer({ AUTH_RATE_LIMIT_PER_MINUTE: '2', TRUST_PROXY: 'true' });
  });
  afterAll(() => limited?.stop());

  /** Requests from one client address (X-Forwarded-For, trusted on this server). */
  const from = (ip: string) => ({
    get: (path: string) => fetch(`${limited.url}${path}`, { headers: { 'x-forwarded-for': ip } }),
    post: (path: string, form: Record<string, string>, cookie: string) =>
      fetch(`${limited.url}${path}`, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          'x-forwarded-for': ip,
          'content-type': 'application/x-www-form-urlencoded',
          cookie,
        },
        body: new URLSearchParams(form).toString(),
      }),
  });

  async function expect429Page(res: Response) {
    expect(res.status).toBe(429);
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(Number(res.headers.get('retry-after'))).toBeLessThanOrEqual(60);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(await res.text()).toContain('Too many sign-in attempts');
  }

  it('views of /wallet/login beyond AUTH_RATE_LIMIT_PER_MINUTE get a 429 page with Retry-After; other addresses do not', async () => {
    const client = from(`198.51.100.${++address}`);
    expect((await client.get('/wallet/login')).status).toBe(200);
    expect((await client.get('/wallet/login')).status).toBe(200);
    await expect429Page(await client.get('/wallet/login'));
    expect((await from(`198.51.100.${++address}`).get('/wallet/login')).status).toBe(200);
  });

  it('failed sign-ins count: past the limit even the right password is answered 429 without being checked', async () => {
    await limited.user({ email: 'limited@example.com', password: PASSWORD });
    const client = from(`198.51.100.${++address}`);
    const page = await client.get('/wallet/login');
    const form = { ...formFields(await page.text()), method: 'password', email: 'limited@example.com' };
    const cookie = `tian_csrf=${setCookie(page, 'tian_csrf')}`;
    expect((await client.post('/wallet/login', { ...form, password: 'wrong-1' }, cookie)).status).toBe(401);
    expect((await client.post('/wallet/login', { ...form, password: 'wrong-2' }, cookie)).status).toBe(401);
    const blocked = await client.post('/wallet/login', { ...form, password: PASSWORD }, cookie);
    await expect429Page(blocked);
    expect(setCookie(blocked, 'tian_wallet')).toBeUndefined();
  });
});

describe('purging what has expired', () => {
  it('purgeExpiredSessions deletes expired sessions (and anonymous rows of older versions) and keeps live ones', async () => {
    const a = await setup();
    const b = await setup();
    const signIn = (email: string) => signInToWallet(t, { email, password: PASSWORD });
    const ours = async () =>
      (
        await t.db.query<{ user_id: string | null }>(
          'select user_id from wallet_sessions where user_id = any($1) or user_id is null order by user_id',
          [[a.user.id, b.user.id]],
        )
      ).map((r) => (r.user_id === null ? null : Number(r.user_id)));
    const early = await signIn(a.email);
    t.clock.advance(4 * HOUR);
    const late = await signIn(b.email);
    await t.db.query(
      `insert into wallet_sessions (id_hash, user_id, csrf_token, created_at, expires_at)
       values ($1, null, 'x', $2, $3)`,
      [sha256(`legacy-${seq}`), t.clock.now(), new Date(t.clock.now().getTime() + HOUR)],
    );
    t.clock.advance(4 * HOUR + 60_000);
    expect(await ours()).toEqual([a.user.id, b.user.id, null]);

    expect(await purgeExpiredSessions(t.db, t.clock.now())).toBeGreaterThanOrEqual(2);
    expect(await ours()).toEqual([b.user.id]);
    expect(await (await late.get('/wallet/apps')).text()).toContain('Connected apps');
    expect((await early.get('/wallet/apps')).headers.get('location')).toBe(
      '/wallet/login?next=%2Fwallet%2Fapps',
    );
  });

  it('purgeExpiredCodes deletes codes past their 10 minutes, keeping live ones and those live tokens descend from', async () => {
    const { partner, email, query } = await setup();
    const user = { email, password: PASSWORD };
    const unused = (await authorizeAsUser(t, query, user)).location.searchParams.get('code') ?? '';
    const used = (await authorizeAsUser(t, query, user)).location.searchParams.get('code') ?? '';
    const tokens = await exchange(partner, used);
    t.clock.advance(10 * 60_000 + 1000);
    const fresh = (await authorizeAsUser(t, query, user)).location.searchParams.get('code') ?? '';
    expect(await countOf('oauth_codes', partner.id)).toBe(3);

    const removed = await t.db.transaction(async (tx) => {
      await purgeExpiredTokens(tx, t.clock.now());
      return purgeExpiredCodes(tx, t.clock.now());
    });
    expect(removed).toBeGreaterThanOrEqual(1);
    const left = await t.db.query<{ code_hash: string }>(
      'select code_hash from oauth_codes where partner_id = $1',
      [partner.id],
    );
    expect(left.map((r) => r.code_hash).sort()).toEqual([sha256(used), sha256(fresh)].sort());
    expect(unused).toMatch(/^tcac_/);

    // The fresh code still works; a replay of the kept used code still revokes its tokens.
    await exchange(partner, fresh);
    expect(await isActive(tokens.access_token)).toBe(true);
    const replay = await tokenRequest({
      grant_type: 'authorization_code',
      code: used,
      redirect_uri: REDIRECT,
      client_id: partner.clientId,
      client_secret: partner.clientSecret,
    });
    expect(replay.status).toBe(400);
    expect(await isActive(tokens.access_token)).toBe(false);
  });

  it('purgeExpired deletes token pairs past their refresh expiry, then their codes; a live pair minted from a purged one keeps working', async () => {
    const { partner, email, query } = await setup();
    const code =
      (await authorizeAsUser(t, query, { email, password: PASSWORD })).location.searchParams.get('code') ??
      '';
    const first = await exchange(partner, code);
    t.clock.advance(DAY);
    const refresh = (refreshToken: string) =>
      tokenRequest({
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
        client_id: partner.clientId,
        client_secret: partner.clientSecret,
      });
    const second = (await (await refresh(first.refresh_token)).json()) as { refresh_token: string };
    expect(await countOf('oauth_tokens', partner.id)).toBe(2);

    // 90 days after the first pair: it is dead, its child (minted a day later) still refreshes.
    t.clock.advance(89 * DAY + 60_000);
    await purgeExpired(t);
    expect(await countOf('oauth_tokens', partner.id)).toBe(1);
    expect(await countOf('oauth_codes', partner.id)).toBe(1);
    const third = await refresh(second.refresh_token);
    expect(third.status).toBe(200);

    // Once every pair of the grant has expired, the pairs and the code go.
    t.clock.advance(91 * DAY);
    await purgeExpired(t);
    expect(await countOf('oauth_tokens', partner.id)).toBe(0);
    expect(await countOf('oauth_codes', partner.id)).toBe(0);
  });
});

describe('hostile input gets a 4xx page, never a 500', () => {
  async function signInPage() {
    const b = new ScriptedBrowser(t.url);
    const page = await (await b.get('/wallet/login')).text();
    return { b, page };
  }

  it('a NUL byte or a lone surrogate in the sign-in fields (email, password, Privy id and token) is a 400 page', async () => {
    const { email } = await setup();
    const before = await count('wallet_sessions');
    const { b, page } = await signInPage();
    const password = formFields(page, 0);
    const privy = formFields(page, 1);
    const cases = [
      { ...password, email: `${email}\u0000`, password: PASSWORD },
      { ...password, email, password: `${PASSWORD}\u0000` },
      { ...privy, privy_id: 'did:privy:x\u0000', session_token: 'x' },
      { ...privy, privy_id: 'did:privy:x', session_token: 'x\u0000y' },
    ];
    for (const form of cases) {
      const res = await b.post('/wallet/login', form);
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await res.text()).toContain('not allowed (a NUL byte or broken Unicode)');
    }
    // JSON bodies can carry lone surrogates (a urlencoded form cannot).
    for (const bad of ['\\ud800', 'x\\udc00', '\\u0000']) {
      const res = await fetch(`${t.url}/wallet/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', cookie: `tian_csrf=${password.csrf_token}` },
        body: `{"csrf_token":"${password.csrf_token}","method":"password","email":"${bad}","password":"p"}`,
      });
      expect(res.status).toBe(400);
    }
    expect(await count('wallet_sessions')).toBe(before);
  });

  it('the revoke form refuses a partner_id that is not an id with a 400 page, and disconnects nothing', async () => {
    const { partner, email, query } = await setup();
    const { location, browser } = await authorizeAsUser(t, query, { email, password: PASSWORD });
    const tokens = await exchange(partner, location.searchParams.get('code') ?? '');
    const page = await (await browser.get('/wallet/apps')).text();
    const formIndex = page.split('<form').findIndex((f) => f.includes(`value="${partner.id}"`)) - 1;
    const fields = formFields(page, formIndex);
    for (const partnerId of [
      '2147483648',
      '-1',
      '1e3',
      'abc',
      '99999999999999999999',
      '',
      ' 1',
      '0x1',
      '01',
    ]) {
      const res = await browser.post('/wallet/apps/revoke', { ...fields, partner_id: partnerId });
      expect(res.status, partnerId).toBe(400);
      expect(res.headers.get('location')).toBeNull();
      expect(await res.text()).toContain('The form did not name an app connected to your wallet.');
    }
    const { partner_id: _, ...withoutId } = fields;
    expect((await browser.post('/wallet/apps/revoke', withoutId)).status).toBe(400);
    expect(await isActive(tokens.access_token)).toBe(true);
    expect(await (await browser.get('/wallet/apps')).text()).toContain(partner.name);
  });

  it('authorize parameters with a NUL byte get a 400 page on the link, through sign-in and on consent', async () => {
    const { email, query } = await setup();
    for (const name of Object.keys(query)) {
      const res = await fetch(
        `${t.url}${authorizeUrl({ ...query, [name]: `x\u0000${query[name as keyof typeof query]}` })}`,
        {
          redirect: 'manual',
        },
      );
      expect(res.status, name).toBe(400);
      expect(res.headers.get('location')).toBeNull();
      // authorize documents its 400 as an HTML page: whichever check refuses it, the page names the parameter.
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      expect(await res.text()).toContain(name);
    }
    // Broken UTF-8 in the query decodes to U+FFFD: an unknown client, still a page.
    const broken = await fetch(`${t.url}/api/oauth2/authorize?response_type=code&client_id=%ED%A0%80`);
    expect(broken.status).toBe(400);

    // The hidden fields of the sign-in form.
    const sessions = await count('wallet_sessions');
    const b = new ScriptedBrowser(t.url);
    const login = formFields(await (await b.get(authorizeUrl(query))).text());
    const viaLogin = await b.post('/wallet/login', {
      ...login,
      client_id: `${query.client_id}\u0000`,
      method: 'password',
      email,
      password: PASSWORD,
    });
    expect(viaLogin.status).toBe(400);
    expect(await count('wallet_sessions')).toBe(sessions);

    // The hidden fields of the consent form.
    const signedIn = await b.post('/wallet/login', {
      ...login,
      method: 'password',
      email,
      password: PASSWORD,
    });
    const consent = formFields(await (await b.get(signedIn.headers.get('location') ?? '')).text());
    const codes = await count('oauth_codes');
    const viaConsent = await b.post('/wallet/consent', {
      ...consent,
      code_challenge_method: 'S256\u0000',
      decision: 'allow',
    });
    expect(viaConsent.status).toBe(400);
    expect(await count('oauth_codes')).toBe(codes);
  });

  it('an unexpected failure shows a generic page and keeps the details in the server log', async () => {
    const { email } = await setup();
    const b = new ScriptedBrowser(t.url);
    await b.post('/wallet/login', {
      ...formFields(await (await b.get('/wallet/login')).text()),
      method: 'password',
      email,
      password: PASSWORD,
    });
    const failure = new Error('relation "wallet_internals" does not exist (SQLSTATE 42P01)');
    const apps = vi.spyOn(t.services.oauth, 'connectedApps').mockRejectedValueOnce(failure);
    try {
      const res = await b.get('/wallet/apps');
      expect(res.status).toBe(500);
      const page = await res.text();
      expect(page).toContain('Something went wrong');
      expect(page).not.toContain('wallet_internals');
      expect(logs.lines()).toContainEqual(
        expect.objectContaining({
          msg: 'wallet page failed: answered 500',
          method: 'GET',
          err: expect.objectContaining({ message: failure.message }),
        }),
      );
    } finally {
      apps.mockRestore();
    }
  });
});
