import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/harness.js';

// Subscriptions as a partner sees them through the API: create (first month charged at once),
// read, list, cancel now or at period end, with idempotency and the documented errors.

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
  t.clock.set(new Date('2027-01-31T10:00:00.000Z'));
});
afterAll(() => t?.stop());

type Sub = {
  subscriptionId: string;
  status: string;
  nextChargeAt: string | null;
  currentPeriodStart: string;
  currentPeriodEnd: string;
  cancelAtPeriodEnd: boolean;
  canceledAt: string | null;
  endedAt: string | null;
};

async function caller(points: number) {
  const partner = await t.partner();
  const user = await t.user({ points });
  const call = async (method: string, path: string, body?: unknown, extra: Record<string, string> = {}) => {
    // A fresh Privy session per call: tests move the clock by months.
    const headers = await t.legacyHeaders(partner.clientSecret, user.privyId);
    const res = await fetch(`${t.url}${path}`, {
      method,
      headers: {
        ...headers,
        ...extra,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
  };
  return { partner, user, call };
}

async function balance(userId: number): Promise<number> {
  const [row] = await t.db.query<{ balance: number }>('select balance from users where id = $1', [userId]);
  return row?.balance ?? -1;
}
async function counts(userId: number) {
  const [row] = await t.db.query<{ subs: string; periods: string; charges: string }>(
    `select (select count(*) from subscriptions where user_id = $1) as subs,
            (select count(*) from subscription_periods where user_id = $1) as periods,
            (select count(*) from ledger_entries where user_id = $1 and type = 'subscription_charge') as charges`,
    [userId],
  );
  return { subs: Number(row?.subs), periods: Number(row?.periods), charges: Number(row?.charges) };
}
async function events(partnerId: number) {
  const rows = await t.db.query<{ type: string; payload: Record<string, unknown> }>(
    'select type, payload from webhook_events where partner_id = $1 order by id',
    [partnerId],
  );
  return rows;
}

describe('starting a subscription', () => {
  it('charges the first month at once, answers 201 with the period and the next charge on the anchor day', async () => {
    const { partner, user, call } = await caller(500);
    const res = await call('POST', '/api/v1/subscriptions', { planName: 'Pro monthly', amount: 100 });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({
      status: 'active',
      planName: 'Pro monthly',
      amount: 100,
      currentPeriodStart: '2027-01-31T10:00:00.000Z',
      currentPeriodEnd: '2027-02-28T10:00:00.000Z',
      nextChargeAt: '2027-02-28T10:00:00.000Z',
      cancelAtPeriodEnd: false,
      canceledAt: null,
      endedAt: null,
      createdAt: '2027-01-31T10:00:00.000Z',
    });
    expect(res.body.subscriptionId).toMatch(/^sub_[0-9A-Z]{26}$/);
    expect(await balance(user.id)).toBe(400);
    expect(await counts(user.id)).toEqual({ subs: 1, periods: 1, charges: 1 });
    const [created] = await events(partner.id);
    expect(created?.type).toBe('subscription.created');
    expect(created?.payload).toMatchObject({
      event: 'subscription.created',
      userId: user.id,
      subscription: { subscriptionId: res.body.subscriptionId, status: 'active' },
    });
    expect(created?.payload.transactionId).toMatch(/^txn_/);
  });

  it('a user who cannot pay the first month gets 402 insufficient_points and nothing is created', async () => {
    const { partner, user, call } = await caller(99);
    const res = await call('POST', '/api/v1/subscriptions', { planName: 'Pro monthly', amount: 100 });
    expect(res.status).toBe(402);
    expect(res.body).toMatchObject({ code: 'insufficient_points', balance: 99 });
    expect(await balance(user.id)).toBe(99);
    expect(await counts(user.id)).toEqual({ subs: 0, periods: 0, charges: 0 });
    expect(await events(partner.id)).toEqual([]);
  });

  it('replaying the same idempotency key returns the first subscription, charged once, marked as a replay', async () => {
    const { user, call } = await caller(1000);
    const body = { planName: 'Team', amount: 300, idempotencyKey: 'sub_order_1' };
    const first = await call('POST', '/api/v1/subscriptions', body);
    const again = await call('POST', '/api/v1/subscriptions', body);
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(await balance(user.id)).toBe(700);
    expect(await counts(user.id)).toEqual({ subs: 1, periods: 1, charges: 1 });
  });

  it('the Idempotency-Key header works like the body field, and other parameters with the same key are 422', async () => {
    const { user, call } = await caller(1000);
    const first = await call(
      'POST',
      '/api/v1/subscriptions',
      { planName: 'Team', amount: 300 },
      { 'Idempotency-Key': 'k1' },
    );
    const changed = await call(
      'POST',
      '/api/v1/subscriptions',
      { planName: 'Team', amount: 301 },
      { 'Idempotency-Key': 'k1' },
    );
    expect(first.status).toBe(201);
    expect(changed).toMatchObject({ status: 422, body: { code: 'idempotency_key_reused' } });
    expect(await counts(user.id)).toEqual({ subs: 1, periods: 1, charges: 1 });
  });

  it('refuses a bad plan or amount with 400 and writes nothing', async () => {
    const { user, call } = await caller(1000);
    for (const body of [
      { planName: '', amount: 1 },
      { planName: 'P', amount: 0 },
      { planName: 'P', amount: 1.5 },
      { amount: 5 },
    ]) {
      const res = await call('POST', '/api/v1/subscriptions', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.code).toBe('validation_failed');
    }
    expect(await counts(user.id)).toEqual({ subs: 0, periods: 0, charges: 0 });
  });

  it('works the same with a bearer token carrying the subscriptions scope', async () => {
    const partner = await t.partner();
    const user = await t.user({ points: 50 });
    const { accessToken } = await t.tokens(partner.id, user.id, 'subscriptions');
    const res = await fetch(`${t.url}/api/v1/subscriptions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ planName: 'Lite', amount: 20 }),
    });
    expect(res.status).toBe(201);
    expect(await balance(user.id)).toBe(30);
  });
});

describe('reading subscriptions', () => {
  it('gets one subscription, and another partner or user cannot see it (404 subscription_not_found)', async () => {
    const a = await caller(1000);
    const b = await caller(1000);
    const created = await a.call('POST', '/api/v1/subscriptions', { planName: 'Pro', amount: 10 });
    const id = created.body.subscriptionId as string;
    expect(await a.call('GET', `/api/v1/subscriptions/${id}`)).toMatchObject({
      status: 200,
      body: created.body,
    });
    const other = await b.call('GET', `/api/v1/subscriptions/${id}`);
    expect(other).toMatchObject({ status: 404, body: { code: 'subscription_not_found' } });
  });

  it('lists the user subscriptions with this partner newest first, a page at a time', async () => {
    const { call } = await caller(1000);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await call('POST', '/api/v1/subscriptions', { planName: `Plan ${i}`, amount: 1 });
      ids.push(res.body.subscriptionId as string);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: Record<string, unknown> } = await call(
        'GET',
        `/api/v1/subscriptions?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      const data = page.body.data as Sub[];
      expect(data.length).toBeLessThanOrEqual(2);
      seen.push(...data.map((s) => s.subscriptionId));
      cursor = page.body.nextCursor as string | null;
      expect(page.body.hasMore).toBe(cursor !== null);
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    expect(await call('GET', '/api/v1/subscriptions?cursor=bm90LWFuLWlk')).toMatchObject({
      status: 400,
      body: { code: 'invalid_cursor' },
    });
  });
});

describe('canceling', () => {
  it('cancel now ends it at once: canceled, no next charge, subscription.canceled, and never charged again', async () => {
    const { partner, user, call } = await caller(1000);
    const created = await call('POST', '/api/v1/subscriptions', { planName: 'Pro', amount: 100 });
    const id = created.body.subscriptionId as string;
    const res = await call('POST', `/api/v1/subscriptions/${id}/cancel`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'canceled', nextChargeAt: null, cancelAtPeriodEnd: false });
    expect(res.body.canceledAt).toBe(t.clock.now().toISOString());
    expect(res.body.endedAt).toBe(t.clock.now().toISOString());
    expect((await events(partner.id)).map((e) => e.type)).toEqual([
      'subscription.created',
      'subscription.canceled',
    ]);
    const before = t.clock.now();
    t.clock.advance(100 * 86_400_000);
    await t.runDue();
    t.clock.set(before);
    expect(await balance(user.id)).toBe(900);
    expect(await counts(user.id)).toEqual({ subs: 1, periods: 1, charges: 1 });
  });

  it('canceling an ended subscription again is 409 subscription_already_canceled', async () => {
    const { call } = await caller(1000);
    const id = (await call('POST', '/api/v1/subscriptions', { planName: 'Pro', amount: 1 })).body
      .subscriptionId;
    await call('POST', `/api/v1/subscriptions/${id}/cancel`, { atPeriodEnd: false });
    const again = await call('POST', `/api/v1/subscriptions/${id}/cancel`);
    expect(again).toMatchObject({ status: 409, body: { code: 'subscription_already_canceled' } });
  });

  it('an unknown or malformed id is 404 / 400, and another partner cannot cancel it', async () => {
    const a = await caller(1000);
    const b = await caller(1000);
    const id = (await a.call('POST', '/api/v1/subscriptions', { planName: 'Pro', amount: 1 })).body
      .subscriptionId;
    expect(await b.call('POST', `/api/v1/subscriptions/${id}/cancel`)).toMatchObject({
      status: 404,
      body: { code: 'subscription_not_found' },
    });
    expect((await a.call('GET', `/api/v1/subscriptions/${id}`)).body.status).toBe('active');
    expect((await a.call('POST', '/api/v1/subscriptions/sub_0000000000000000/cancel')).status).toBe(404);
    expect((await a.call('POST', '/api/v1/subscriptions/nope/cancel')).status).toBe(400);
    expect((await a.call('POST', `/api/v1/subscriptions/${id}/cancel`, { atPeriodEnd: 'yes' })).status).toBe(
      400,
    );
  });

  it('cancel at period end keeps it active until the paid period ends, then ends it without charging', async () => {
    const { partner, user, call } = await caller(1000);
    const start = t.clock.now();
    try {
      const id = (await call('POST', '/api/v1/subscriptions', { planName: 'Pro', amount: 100 })).body
        .subscriptionId as string;
      t.clock.advance(5 * 86_400_000);
      const res = await call('POST', `/api/v1/subscriptions/${id}/cancel`, { atPeriodEnd: true });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        status: 'active',
        cancelAtPeriodEnd: true,
        nextChargeAt: null,
        canceledAt: t.clock.now().toISOString(),
        endedAt: null,
        currentPeriodEnd: '2027-02-28T10:00:00.000Z',
      });
      // Asking again changes nothing.
      expect((await call('POST', `/api/v1/subscriptions/${id}/cancel`, { atPeriodEnd: true })).body).toEqual(
        res.body,
      );
      expect((await events(partner.id)).map((e) => e.type)).toEqual(['subscription.created']);

      t.clock.set(new Date('2027-02-28T09:59:00.000Z'));
      await t.runDue();
      expect((await call('GET', `/api/v1/subscriptions/${id}`)).body.status).toBe('active');

      t.clock.set(new Date('2027-02-28T10:00:00.000Z'));
      await t.runDue();
      const ended = (await call('GET', `/api/v1/subscriptions/${id}`)).body;
      expect(ended).toMatchObject({
        status: 'canceled',
        endedAt: '2027-02-28T10:00:00.000Z',
        nextChargeAt: null,
      });
      expect((await events(partner.id)).map((e) => e.type)).toEqual([
        'subscription.created',
        'subscription.canceled',
      ]);

      t.clock.set(new Date('2027-06-01T00:00:00.000Z'));
      await t.runDue();
      expect(await balance(user.id)).toBe(900);
      expect(await counts(user.id)).toEqual({ subs: 1, periods: 1, charges: 1 });
    } finally {
      t.clock.set(start);
    }
  });

  it('a cancel at period end can still be turned into a cancel now', async () => {
    const { call } = await caller(1000);
    const id = (await call('POST', '/api/v1/subscriptions', { planName: 'Pro', amount: 1 })).body
      .subscriptionId;
    const scheduled = await call('POST', `/api/v1/subscriptions/${id}/cancel`, { atPeriodEnd: true });
    const now = await call('POST', `/api/v1/subscriptions/${id}/cancel`, { atPeriodEnd: false });
    expect(now.body).toMatchObject({ status: 'canceled', canceledAt: scheduled.body.canceledAt });
    expect(now.body.endedAt).toBe(t.clock.now().toISOString());
  });
});
