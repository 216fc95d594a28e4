import http from 'node:http';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSecret } from '../src/lib/crypto.js';
import { ACCESS_TOKEN_TTL_SECONDS } from '../src/oauth2/tokens.js';
import { type Running, startServer } from '../src/server.js';
import { startTestServer, type TestServer } from './support/harness.js';

// The hot operations (balance, deduct, token info) are answered by direct routes without express
// (src/http/direct-routes.ts). The same API with DIRECT_ROUTES=false answers every request through
// express. Both instances share one database and clock here, and every request below goes to both:
// status, documented error code, and every response header but the per-request ones must agree.

const ORIGIN = 'https://app.partner.test';
let direct: TestServer;
let viaExpress: Running;
let partner: { id: number; clientId: string; clientSecret: string };
let user: { id: number; privyId: string };
let poor: { id: number; privyId: string };
let token: string;
let poorToken: string;
let balanceOnly: string;
let revoked: string;
let legacy: Record<string, string>;

beforeAll(async () => {
  const settings = { CORS_ORIGINS: ORIGIN, AUTH_RATE_LIMIT_PER_MINUTE: '100000' };
  direct = await startTestServer(settings);
  viaExpress = await expressTwin(direct);
  partner = await direct.partner();
  user = await direct.user({ points: 1_000_000 });
  poor = await direct.user({ points: 3 });
  token = (await direct.tokens(partner.id, user.id, 'balance deduct')).accessToken;
  poorToken = (await direct.tokens(partner.id, poor.id, 'balance deduct')).accessToken;
  balanceOnly = (await direct.tokens(partner.id, user.id, 'balance')).accessToken;
  revoked = (await direct.tokens(partner.id, user.id, 'balance deduct')).accessToken;
  await fetch(`${direct.url}/api/oauth2/revoke`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      token: revoked,
      client_id: partner.clientId,
      client_secret: partner.clientSecret,
    }),
  });
  legacy = await direct.legacyHeaders(partner.clientSecret, user.privyId);
});
afterAll(async () => {
  await viaExpress?.close();
  await direct?.stop();
});

/** `t`'s API with DIRECT_ROUTES=false: a second instance on the same database, clock and settings. */
function expressTwin(t: TestServer): Promise<Running> {
  return startServer(
    { ...t.services.config, directRoutes: false, publicUrl: t.url },
    { clock: t.clock, db: t.db, worker: false },
  );
}

/** Headers that differ per request by nature. */
const PER_REQUEST = new Set(['date', 'x-request-id', 'content-length', 'keep-alive', 'connection']);

type Sent = { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer };

async function answer(base: string, r: Sent) {
  const res = await fetch(new URL(r.path, base), {
    method: r.method ?? 'GET',
    headers: r.headers ?? {},
    ...(r.body === undefined ? {} : { body: typeof r.body === 'string' ? r.body : new Uint8Array(r.body) }),
  });
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text);
  } catch {
    body = { text };
  }
  const headers = Object.fromEntries([...res.headers].filter(([name]) => !PER_REQUEST.has(name)));
  return { status: res.status, headers, body };
}

/** The parts of a body that may differ between two successful requests: new ids, balances moved by the other. */
function comparable(body: Record<string, unknown>) {
  const { transactionId, newBalance, balance, ...rest } = body;
  return {
    ...rest,
    ...(transactionId === undefined ? {} : { transactionId: typeof transactionId }),
    ...(newBalance === undefined ? {} : { newBalance: typeof newBalance }),
    ...(balance === undefined ? {} : { balance: typeof balance }),
  };
}

async function expectSameAnswer(r: Sent, expectedStatus: number) {
  const a = await answer(direct.url, r);
  const b = await answer(viaExpress.url, r);
  expect(a.status, 'direct route').toBe(expectedStatus);
  expect(b.status, 'express route').toBe(expectedStatus);
  expect(a.headers).toEqual(b.headers);
  expect(comparable(a.body)).toEqual(comparable(b.body));
  return { direct: a, express: b };
}

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
const jsonHeaders = (t: string, extra: Record<string, string> = {}) => ({
  ...bearer(t),
  'content-type': 'application/json',
  ...extra,
});
const deduct = (headers: Record<string, string>, body: string | Buffer): Sent => ({
  method: 'POST',
  path: '/api/v1/points/deduct',
  headers,
  body,
});
let keys = 0;
const key = () => `direct-${process.pid}-${++keys}`;

describe('GET /api/v1/points/balance answers the same with and without the direct routes', () => {
  it.each<[string, () => Sent, number]>([
    ['a valid token', () => ({ path: '/api/v1/points/balance', headers: bearer(token) }), 200],
    [
      'from an allowed origin (CORS)',
      () => ({ path: '/api/v1/points/balance', headers: { ...bearer(token), origin: ORIGIN } }),
      200,
    ],
    [
      'from another origin',
      () => ({ path: '/api/v1/points/balance', headers: { ...bearer(token), origin: 'https://evil.test' } }),
      200,
    ],
    [
      'with a sane X-Request-Id',
      () => ({ path: '/api/v1/points/balance', headers: { ...bearer(token), 'x-request-id': 'abc-123' } }),
      200,
    ],
    ['an unknown token', () => ({ path: '/api/v1/points/balance', headers: bearer('tcat_unknown') }), 401],
    ['a revoked token', () => ({ path: '/api/v1/points/balance', headers: bearer(revoked) }), 401],
    [
      'another scheme',
      () => ({ path: '/api/v1/points/balance', headers: { authorization: 'Basic eDp5' } }),
      401,
    ],
    ['no credentials', () => ({ path: '/api/v1/points/balance' }), 401],
    ['the legacy flow', () => ({ path: '/api/v1/points/balance', headers: legacy }), 200],
    [
      "a token and another partner's API key",
      () => ({
        path: '/api/v1/points/balance',
        headers: { ...bearer(token), 'x-api-key': 'tcsk_not_theirs' },
      }),
      401,
    ],
    [
      'an empty X-Privy-Id beside a token',
      () => ({ path: '/api/v1/points/balance', headers: { ...bearer(token), 'x-privy-id': '' } }),
      400,
    ],
    [
      'an unknown query parameter',
      () => ({ path: '/api/v1/points/balance?x=1', headers: bearer(token) }),
      400,
    ],
    [
      'a body on the GET',
      () => ({ method: 'POST', path: '/api/v1/points/balance', headers: bearer(token) }),
      405,
    ],
  ])('%s', async (_name, request, status) => {
    await expectSameAnswer(request(), status);
  });
});

describe('GET /api/oauth2/token/info answers the same with and without the direct routes', () => {
  it.each<[string, () => Sent, number]>([
    ['a valid token', () => ({ path: '/api/oauth2/token/info', headers: bearer(token) }), 200],
    ['a revoked token (inactive)', () => ({ path: '/api/oauth2/token/info', headers: bearer(revoked) }), 200],
    ['an unknown token', () => ({ path: '/api/oauth2/token/info', headers: bearer('tcat_unknown') }), 401],
    ['no token', () => ({ path: '/api/oauth2/token/info' }), 401],
    [
      'a malformed header',
      () => ({ path: '/api/oauth2/token/info', headers: { authorization: 'Bearer a b' } }),
      401,
    ],
    [
      'from an allowed origin (CORS)',
      () => ({ path: '/api/oauth2/token/info', headers: { ...bearer(token), origin: ORIGIN } }),
      200,
    ],
  ])('%s', async (_name, request, status) => {
    await expectSameAnswer(request(), status);
  });
});

describe('POST /api/v1/points/deduct answers the same with and without the direct routes', () => {
  it.each<[string, () => Sent, number]>([
    ['a deduct', () => deduct(jsonHeaders(token), '{"amount":5,"description":"direct"}'), 200],
    [
      'with a charset',
      () => deduct(jsonHeaders(token, { 'content-type': 'application/json; charset=utf-8' }), '{"amount":1}'),
      200,
    ],
    [
      'gzipped',
      () => deduct(jsonHeaders(token, { 'content-encoding': 'gzip' }), gzipSync('{"amount":1}')),
      200,
    ],
    [
      'from an allowed origin (CORS)',
      () => deduct(jsonHeaders(token, { origin: ORIGIN }), '{"amount":1}'),
      200,
    ],
    [
      'in the legacy flow',
      () => deduct({ ...legacy, 'content-type': 'application/json' }, '{"amount":1}'),
      200,
    ],
    ['more than the balance', () => deduct(jsonHeaders(poorToken), '{"amount":4}'), 402],
    ['amount zero', () => deduct(jsonHeaders(token), '{"amount":0}'), 400],
    ['amount as a string', () => deduct(jsonHeaders(token), '{"amount":"5"}'), 400],
    ['amount 1e400', () => deduct(jsonHeaders(token), '{"amount":1e400}'), 400],
    ['an extra field', () => deduct(jsonHeaders(token), '{"amount":1,"admin":true}'), 400],
    ['no amount', () => deduct(jsonHeaders(token), '{}'), 400],
    ['an array', () => deduct(jsonHeaders(token), '[1]'), 400],
    ['a JSON string (strict parsing)', () => deduct(jsonHeaders(token), '"x"'), 400],
    ['invalid JSON', () => deduct(jsonHeaders(token), '{"amount":'), 400],
    [
      'a NUL in the description',
      () => deduct(jsonHeaders(token), '{"amount":1,"description":"a\\u0000b"}'),
      400,
    ],
    ['a lone surrogate in a key', () => deduct(jsonHeaders(token), '{"amount":1,"\\ud800":1}'), 400],
    ['duplicate keys', () => deduct(jsonHeaders(token), '{"amount":1,"amount":0}'), 400],
    [
      'a bad Idempotency-Key header',
      () => deduct(jsonHeaders(token, { 'idempotency-key': 'a b' }), '{"amount":1}'),
      400,
    ],
    [
      'header and body keys that differ',
      () => deduct(jsonHeaders(token, { 'idempotency-key': 'k1' }), '{"amount":1,"idempotencyKey":"k2"}'),
      400,
    ],
    [
      'a latin1 charset',
      () =>
        deduct(jsonHeaders(token, { 'content-type': 'application/json; charset=latin1' }), '{"amount":1}'),
      415,
    ],
    [
      'a body over 16 KiB',
      () => deduct(jsonHeaders(token), `{"amount":1,"description":"${'x'.repeat(17_000)}"}`),
      413,
    ],
    [
      'an unknown content encoding',
      () => deduct(jsonHeaders(token, { 'content-encoding': 'br2' }), '{"amount":1}'),
      415,
    ],
    [
      'a form body',
      () => deduct({ ...bearer(token), 'content-type': 'application/x-www-form-urlencoded' }, 'amount=1'),
      415,
    ],
    [
      'a token without the deduct scope (bad body too)',
      () => deduct(jsonHeaders(balanceOnly), '{"amount":0}'),
      403,
    ],
    ['an unknown token (bad JSON too)', () => deduct(jsonHeaders('tcat_unknown'), '{"amount":'), 400],
    ['an unknown token', () => deduct(jsonHeaders('tcat_unknown'), '{"amount":1}'), 401],
  ])('%s', async (_name, request, status) => {
    await expectSameAnswer(request(), status);
  });

  it('replays and key reuse: the same 200 with Idempotent-Replayed, and 422 for other parameters, on either route', async () => {
    const [k1, k2] = [key(), key()];
    const first = await answer(
      direct.url,
      deduct(jsonHeaders(token, { 'idempotency-key': k1 }), '{"amount":2}'),
    );
    const second = await answer(
      viaExpress.url,
      deduct(jsonHeaders(token, { 'idempotency-key': k2 }), '{"amount":2}'),
    );
    expect([first.status, second.status]).toEqual([200, 200]);
    // Each key replayed on the other route: the first response again, marked.
    const replays = await expectSameAnswer(
      deduct(jsonHeaders(token, { 'idempotency-key': k1 }), '{"amount":2}'),
      200,
    );
    expect(replays.direct.body.transactionId).toBe(first.body.transactionId);
    expect(replays.direct.headers['idempotent-replayed']).toBe('true');
    const other = await answer(
      direct.url,
      deduct(jsonHeaders(token, { 'idempotency-key': k2 }), '{"amount":2}'),
    );
    expect(other.body.transactionId).toBe(second.body.transactionId);
    await expectSameAnswer(deduct(jsonHeaders(token, { 'idempotency-key': k1 }), '{"amount":3}'), 422);
  });

  it('refused deducts change nothing, on either route', async () => {
    const before = await direct.moneyState(poor.id);
    await expectSameAnswer(deduct(jsonHeaders(poorToken), '{"amount":4}'), 402);
    await expectSameAnswer(deduct(jsonHeaders(poorToken), '{"amount":1,"x":1}'), 400);
    expect(await direct.moneyState(poor.id)).toEqual(before);
  });
});

/** A GET through node:http, which (unlike fetch) adds no Cache-Control to a conditional request. */
function rawGet(base: string, path: string, headers: Record<string, string>) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
    (resolve, reject) => {
      const req = http.get(new URL(path, base), { headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => {
          const kept = Object.entries(res.headers).filter(([name]) => !PER_REQUEST.has(name));
          resolve({ status: res.statusCode ?? 0, headers: Object.fromEntries(kept), body });
        });
      });
      req.on('error', reject);
    },
  );
}

describe('conditional requests', () => {
  it.each(['/api/v1/points/balance', '/api/oauth2/token/info'])(
    'GET %s with If-None-Match: * gets the same 304 from both (express decides freshness)',
    async (path) => {
      const headers = { ...bearer(token), 'if-none-match': '*' };
      const [a, b] = [await rawGet(direct.url, path, headers), await rawGet(viaExpress.url, path, headers)];
      // fresh(): If-None-Match * matches any representation, so express answers 304 without a body.
      expect([a.status, b.status]).toEqual([304, 304]);
      expect(a.headers).toEqual(b.headers);
      expect(a.body.replace(/"balance":\d+/, '')).toBe(b.body.replace(/"balance":\d+/, ''));
    },
  );
});

describe('behind a trusted proxy (TRUST_PROXY=loopback)', () => {
  let proxied: TestServer;
  let proxiedExpress: Running;
  let goodToken: string;
  beforeAll(async () => {
    proxied = await startTestServer({ TRUST_PROXY: 'loopback', AUTH_RATE_LIMIT_PER_MINUTE: '3' });
    proxiedExpress = await expressTwin(proxied);
    const p = await proxied.partner();
    const u = await proxied.user({ points: 10 });
    goodToken = (await proxied.tokens(p.id, u.id, 'balance')).accessToken;
  });
  afterAll(async () => {
    await proxiedExpress?.close();
    await proxied?.stop();
  });

  it('the client address is the one X-Forwarded-For names: its failed tokens lock out that address only, on both routes', async () => {
    for (const [server, address] of [
      [proxied as Running, '198.51.100.10'],
      [proxiedExpress, '198.51.100.20'],
    ] as const) {
      const from = (a: string, t: string) => ({
        path: '/api/v1/points/balance',
        headers: { ...bearer(t), 'x-forwarded-for': a },
      });
      for (let i = 0; i < 3; i++)
        expect((await answer(server.url, from(address, 'tcat_wrong'))).status).toBe(401);
      // The address is out of attempts: even a good token from it waits; another address is served.
      const locked = await answer(server.url, from(address, goodToken));
      expect(locked.status).toBe(429);
      expect(locked.headers['retry-after']).toMatch(/^\d+$/);
      expect((await answer(server.url, from(`${address}1`, goodToken))).status).toBe(200);
    }
  });
});

// A deduct with a token that authenticated before takes one statement, which checks the token again
// (src/http/auth.ts bearerShortcut): whatever changed since, the answer is the usual way's.
describe('a deduct with a token that deducted before, after its grant changed', () => {
  async function learnedToken(points = 100, scope = 'balance deduct') {
    const p = await direct.partner();
    const u = await direct.user({ points });
    const { accessToken } = await direct.tokens(p.id, u.id, scope);
    const first = await answer(direct.url, deduct(jsonHeaders(accessToken), '{"amount":1}'));
    const again = await answer(viaExpress.url, deduct(jsonHeaders(accessToken), '{"amount":1}'));
    expect([first.status, again.status]).toEqual([200, 200]);
    return { partner: p, user: u, token: accessToken };
  }

  it('revoked: 401 on both, nothing deducted', async () => {
    const { partner: p, user: u, token: t } = await learnedToken();
    await direct.db.query('update oauth_tokens set revoked_at = $2 where access_hash = $1', [
      hashSecret(t),
      direct.clock.now(),
    ]);
    const before = await direct.moneyState(u.id);
    const { direct: a } = await expectSameAnswer(deduct(jsonHeaders(t), '{"amount":1}'), 401);
    expect(a.body.code).toBe('invalid_token');
    // And with a 400 of the handler's (the keys differ): still the 401 first, as on the express route.
    await expectSameAnswer(
      deduct(jsonHeaders(t, { 'idempotency-key': 'k1' }), '{"amount":1,"idempotencyKey":"k2"}'),
      401,
    );
    expect(await direct.moneyState(u.id)).toEqual(before);
    expect(p.id).toBeGreaterThan(0);
  });

  it('the user disabled: 401 on both, nothing deducted', async () => {
    const { user: u, token: t } = await learnedToken();
    await direct.db.query('update users set disabled_at = $2 where id = $1', [u.id, direct.clock.now()]);
    const before = await direct.moneyState(u.id);
    await expectSameAnswer(deduct(jsonHeaders(t), '{"amount":1}'), 401);
    expect(await direct.moneyState(u.id)).toEqual(before);
  });

  it("the partner's allowed scopes narrowed: 403 insufficient_scope on both, nothing deducted", async () => {
    const { partner: p, user: u, token: t } = await learnedToken();
    await direct.db.query(`update partners set allowed_scopes = '{balance}' where id = $1`, [p.id]);
    const before = await direct.moneyState(u.id);
    const { direct: a } = await expectSameAnswer(deduct(jsonHeaders(t), '{"amount":1}'), 403);
    expect(a.body.code).toBe('insufficient_scope');
    expect(await direct.moneyState(u.id)).toEqual(before);
  });

  it('a valid token with header and body keys that differ: the same 400 on both, nothing deducted', async () => {
    const { user: u, token: t } = await learnedToken();
    const before = await direct.moneyState(u.id);
    const { direct: a } = await expectSameAnswer(
      deduct(jsonHeaders(t, { 'idempotency-key': 'k1' }), '{"amount":1,"idempotencyKey":"k2"}'),
      400,
    );
    expect(a.body.code).toBe('idempotency_key_mismatch');
    expect(await direct.moneyState(u.id)).toEqual(before);
  });

  it('the token used with an API key: the credentials are checked the usual way (401 for a stranger key)', async () => {
    const { token: t } = await learnedToken();
    await expectSameAnswer(deduct(jsonHeaders(t, { 'x-api-key': 'tcsk_not_theirs' }), '{"amount":1}'), 401);
  });
});

describe('the request budget of a token that deducts in one statement', () => {
  let budgeted: TestServer;
  let budgetedExpress: Running;
  beforeAll(async () => {
    budgeted = await startTestServer({ RATE_LIMIT_PER_MINUTE: '5', RATE_LIMIT_SYNC_MS: '60000' });
    budgetedExpress = await expressTwin(budgeted);
  });
  afterAll(async () => {
    await budgetedExpress?.close();
    await budgeted?.stop();
  });

  it('admits exactly the budget, then 429 with Retry-After, on both routes; refused deducts take nothing', async () => {
    for (const server of [budgeted as Running, budgetedExpress]) {
      const p = await budgeted.partner();
      const u = await budgeted.user({ points: 100 });
      const { accessToken } = await budgeted.tokens(p.id, u.id, 'deduct');
      const statuses: number[] = [];
      for (let i = 0; i < 7; i++) {
        statuses.push((await answer(server.url, deduct(jsonHeaders(accessToken), '{"amount":1}'))).status);
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
      expect((await budgeted.moneyState(u.id))?.balance).toBe(95);
    }
  });
});

// Last: it moves the shared clock past every token's lifetime.
describe('expired tokens', () => {
  it('an expired token is inactive at token info and refused at balance, on both routes', async () => {
    const expiring = (await direct.tokens(partner.id, user.id, 'balance')).accessToken;
    direct.clock.advance(ACCESS_TOKEN_TTL_SECONDS * 1000 + 1);
    const info = await expectSameAnswer({ path: '/api/oauth2/token/info', headers: bearer(expiring) }, 200);
    expect(info.direct.body.active).toBe(false);
    await expectSameAnswer({ path: '/api/v1/points/balance', headers: bearer(expiring) }, 401);
  });
});

describe('the direct routes answer the hot path', () => {
  it('a plain balance read is served by the direct route, and an odd one by express (the listener is not the app)', async () => {
    const [listener] = direct.server.listeners('request');
    expect(listener).not.toBe(direct.app);
    const [plain] = viaExpress.server.listeners('request');
    expect(plain).toBe(viaExpress.app);
  });
});
