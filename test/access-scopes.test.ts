import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listOperations } from '../src/http/spec.js';
import { startTestServer, type TestServer } from './support/harness.js';

// The same authorization rule whichever way a partner authenticates: a legacy call (API key +
// Privy session) may do exactly what the partner's allowed scopes permit, like a bearer token
// carrying those scopes. The matrix is every user-level operation in openapi.yaml x every scope.

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t?.stop());

const SCOPES = ['balance', 'deduct', 'subscriptions'] as const;
type Scope = (typeof SCOPES)[number];

/** The scope each user-level operation needs, read from openapi.yaml (its oauth2 requirement). */
const userOperations = listOperations()
  .filter((op) => op.security.some((r) => 'privySession' in r))
  .map((op) => ({ ...op, scope: op.security.find((r) => 'oauth2' in r)?.oauth2?.[0] as Scope }));

type Sample = { method: string; path: (txn: string) => string; body?: Record<string, unknown> };
/** A valid request per operation, so an allowed call reaches its handler and succeeds (or 501s). */
const SAMPLES: Record<string, Sample> = {
  getBalance: { method: 'GET', path: () => '/api/v1/points/balance' },
  deductPoints: { method: 'POST', path: () => '/api/v1/points/deduct', body: { amount: 1 } },
  listTransactions: { method: 'GET', path: () => '/api/v1/points/transactions' },
  getTransaction: { method: 'GET', path: (txn) => `/api/v1/points/transactions/${txn}` },
  refundTransaction: {
    method: 'POST',
    path: (txn) => `/api/v1/points/transactions/${txn}/refund`,
    body: { amount: 1 },
  },
  createSubscription: {
    method: 'POST',
    path: () => '/api/v1/subscriptions',
    body: { planName: 'Pro monthly', amount: 5 },
  },
  listSubscriptions: { method: 'GET', path: () => '/api/v1/subscriptions' },
  getSubscription: { method: 'GET', path: () => '/api/v1/subscriptions/sub_01JD3Q0000000000000000000A' },
  cancelSubscription: {
    method: 'POST',
    path: () => '/api/v1/subscriptions/sub_01JD3Q0000000000000000000A/cancel',
  },
};

type Caller = { headers: Record<string, string>; partnerId: number; userId: number };

async function legacyCaller(allowed: Scope[]): Promise<Caller> {
  const partner = await t.partner({ allowedScopes: allowed });
  const user = await t.user({ points: 1000 });
  return {
    partnerId: partner.id,
    userId: user.id,
    headers: await t.legacyHeaders(partner.clientSecret, user.privyId),
  };
}

async function bearerCaller(granted: Scope[]): Promise<Caller> {
  // The partner may ask for everything; the token carries only `granted`.
  const partner = await t.partner({ allowedScopes: [...SCOPES] });
  const user = await t.user({ points: 1000 });
  const { accessToken } = await t.tokens(partner.id, user.id, granted.join(' '));
  return { partnerId: partner.id, userId: user.id, headers: { Authorization: `Bearer ${accessToken}` } };
}

/** A deduct of this (partner, user) to refund or read, made directly so the caller's rights don't matter. */
async function seedDeduct(c: Caller): Promise<string> {
  const [row] = await t.db.query<{ public_id: string }>(
    `with upd as (update users set balance = balance - 10 where id = $1 returning id, balance)
     insert into ledger_entries (public_id, user_id, partner_id, type, amount, balance_after, description)
     select 'txn_SCOPETEST' || $3, id, $2, 'deduct', -10, balance, 'seed' from upd returning public_id`,
    [c.userId, c.partnerId, `${c.partnerId}x${c.userId}`],
  );
  return row?.public_id ?? '';
}

async function state(userId: number) {
  const [row] = await t.db.query<{ balance: number; entries: string }>(
    'select balance, (select count(*) from ledger_entries where user_id = $1) as entries from users where id = $1',
    [userId],
  );
  return row;
}

async function call(c: Caller, s: Sample, txn: string) {
  const res = await fetch(`${t.url}${s.path(txn)}`, {
    method: s.method,
    headers: { ...c.headers, ...(s.body ? { 'content-type': 'application/json' } : {}) },
    ...(s.body ? { body: JSON.stringify(s.body) } : {}),
  });
  const body = (await res.json().catch(() => ({}))) as { code?: string };
  return { status: res.status, code: body.code };
}

const flows = { legacy: legacyCaller, bearer: bearerCaller } as const;
const scopeSets: Scope[][] = [[], ['balance'], ['deduct'], ['subscriptions'], [...SCOPES]];

describe('the operation x scope matrix is the same for the legacy flow and bearer tokens', () => {
  it('has a sample request for every user-level operation in openapi.yaml', () => {
    expect(userOperations.length).toBeGreaterThanOrEqual(9);
    for (const op of userOperations) expect(SAMPLES[op.operationId], op.operationId).toBeDefined();
  });

  for (const [flow, makeCaller] of Object.entries(flows)) {
    for (const scopes of scopeSets) {
      it(`${flow} with scopes [${scopes.join(' ')}]: allowed operations pass, the others are 403 insufficient_scope and change nothing`, async () => {
        for (const op of userOperations) {
          const c = await makeCaller(scopes);
          const txn = await seedDeduct(c);
          const before = await state(c.userId);
          const sample = SAMPLES[op.operationId] as Sample;
          const res = await call(c, sample, txn);
          const label = `${flow} [${scopes.join(' ')}] ${op.operationId}`;
          if (scopes.includes(op.scope)) {
            expect(res.status, label).not.toBe(403);
            expect(res.status, label).not.toBe(401);
            expect([200, 201, 404, 501], label).toContain(res.status);
          } else {
            expect(res, label).toEqual({ status: 403, code: 'insufficient_scope' });
            expect(await state(c.userId), label).toEqual(before);
          }
        }
      });
    }
  }

  it('a balance-only partner cannot deduct 900,000 points or refund with its API key', async () => {
    const c = await legacyCaller(['balance']);
    await t.db.query('update users set balance = 1000000 where id = $1', [c.userId]);
    const txn = await seedDeduct(c);
    const deduct = await call(c, SAMPLES.deductPoints as Sample, txn);
    const big = await fetch(`${t.url}/api/v1/points/deduct`, {
      method: 'POST',
      headers: { ...c.headers, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 900_000 }),
    });
    const refund = await call(c, SAMPLES.refundTransaction as Sample, txn);
    expect(deduct).toEqual({ status: 403, code: 'insufficient_scope' });
    expect(big.status).toBe(403);
    expect(refund).toEqual({ status: 403, code: 'insufficient_scope' });
    expect((await state(c.userId))?.balance).toBe(999_990);
  });
});

/** RFC 7662 introspection by the token's own partner (client_secret_post). */
async function introspect(partner: { clientId: string; clientSecret: string }, token: string) {
  const res = await fetch(`${t.url}/api/oauth2/introspect`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token, client_id: partner.clientId, client_secret: partner.clientSecret }),
  });
  return res.json();
}

describe('what a granted token may do follows its partner and its user', () => {
  it('loses the dropped scope at once on tokens users granted before, and keeps the others', async () => {
    const partner = await t.partner({ allowedScopes: ['balance', 'deduct'] });
    const user = await t.user({ points: 100 });
    const { accessToken } = await t.tokens(partner.id, user.id, 'balance deduct');
    const headers = { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' };
    const deduct = () =>
      fetch(`${t.url}/api/v1/points/deduct`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ amount: 5 }),
      });
    expect((await deduct()).status).toBe(200);

    // The dashboard and the CLI change allowed_scopes; the token's own scope string is untouched.
    await t.db.query(`update partners set allowed_scopes = '{balance}' where id = $1`, [partner.id]);
    const refused = await deduct();
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { code: string }).code).toBe('insufficient_scope');
    const balance = await fetch(`${t.url}/api/v1/points/balance`, { headers });
    expect(balance.status).toBe(200);
    expect(((await balance.json()) as { balance: number }).balance).toBe(95);
    expect((await t.moneyState(user.id))?.balance).toBe(95);
    // Token info tells the partner the same: what the token may do now.
    const info = await fetch(`${t.url}/api/oauth2/token/info`, { headers });
    expect(await info.json()).toMatchObject({ active: true, scope: 'balance' });
    expect(await introspect(partner, accessToken)).toMatchObject({ active: true, scope: 'balance' });
  });

  it("token info reports a disabled user's token inactive, as the API refuses it", async () => {
    const partner = await t.partner({ allowedScopes: ['balance'] });
    const user = await t.user({ points: 10 });
    const { accessToken } = await t.tokens(partner.id, user.id, 'balance');
    const headers = { authorization: `Bearer ${accessToken}` };
    await t.db.query('update users set disabled_at = now() where id = $1', [user.id]);
    expect((await fetch(`${t.url}/api/v1/points/balance`, { headers })).status).toBe(401);
    const info = await fetch(`${t.url}/api/oauth2/token/info`, { headers });
    expect(info.status).toBe(200);
    expect(await info.json()).toMatchObject({ active: false, scope: 'balance' });
    expect(await introspect(partner, accessToken)).toEqual({ active: false });
  });
});
