import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deductPoints, getBalance, refundTransaction } from '../generated/sdk/index.js';
import { advisoryKey } from '../src/points/idempotency.js';
import { startTestServer, type TestServer } from './support/harness.js';
import { realPostgresAvailable } from './support/pg.js';

// Races only mean something with many real connections: PGlite is one session that runs one
// transaction at a time, so on the embedded database these would pass without proving anything.
const real = await realPostgresAvailable();
if (!real)
  console.warn('[tests] points-races SKIPPED: needs the real PostgreSQL server (multi-connection races).');

describe.skipIf(!real)('points under concurrency (real PostgreSQL, many connections)', () => {
  let t: TestServer;
  let apiKey: string;
  beforeAll(async () => {
    t = await startTestServer();
    apiKey = (await t.partner()).clientSecret;
  });
  afterAll(() => t?.stop());

  async function ledger(userId: number) {
    const [row] = await t.db.query<{ sum: string; n: string }>(
      'select coalesce(sum(amount), 0) as sum, count(*) as n from ledger_entries where user_id = $1',
      [userId],
    );
    return { sum: Number(row?.sum), entries: Number(row?.n) };
  }

  it('200 concurrent deducts of 1 against a balance of 137: exactly 137 succeed, never below zero', async () => {
    const user = await t.user({ points: 137 });
    const api = await t.legacyClient(apiKey, user.privyId);
    const results = await Promise.all(
      Array.from({ length: 200 }, () =>
        deductPoints({ client: api, body: { amount: 1, description: 'race' } }),
      ),
    );
    const statuses = results.map((r) => r.response.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(137);
    expect(statuses.filter((s) => s === 402)).toHaveLength(63);
    for (const r of results.filter((x) => x.response.status === 402)) {
      expect(r.error).toMatchObject({ code: 'insufficient_points', balance: 0 });
    }
    const balances = results.flatMap((r) => (r.data ? [r.data.newBalance] : []));
    expect(new Set(balances).size).toBe(137); // every success saw a distinct balance 136..0
    expect(Math.min(...balances)).toBe(0);
    expect((await getBalance({ client: api })).data?.balance).toBe(0);
    // The ledger always sums to the balance: +137 credit, 137 deductions of -1.
    expect(await ledger(user.id)).toEqual({ sum: 0, entries: 138 });
  });

  it('50 concurrent requests with one idempotency key deduct once; the rest replay or get 409', async () => {
    const user = await t.user({ points: 1000 });
    const api = await t.legacyClient(apiKey, user.privyId);
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        deductPoints({
          client: api,
          body: { amount: 7, description: 'once', idempotencyKey: 'order-race-1' },
        }),
      ),
    );
    const ok = results.filter((r) => r.response.status === 200);
    const inFlight = results.filter((r) => r.response.status === 409);
    expect(ok.length + inFlight.length).toBe(50);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(new Set(ok.map((r) => r.data?.transactionId)).size).toBe(1);
    expect(ok.filter((r) => r.response.headers.get('idempotent-replayed') !== 'true')).toHaveLength(1);
    for (const r of inFlight) expect(r.error).toMatchObject({ code: 'idempotency_key_in_flight' });
    expect((await getBalance({ client: api })).data?.balance).toBe(993);
    expect(await ledger(user.id)).toEqual({ sum: 993, entries: 2 });

    // After the race, a retry with the same key is a replay of the one deduction.
    const again = await deductPoints({
      client: api,
      body: { amount: 7, description: 'once', idempotencyKey: 'order-race-1' },
    });
    expect(again.response.headers.get('idempotent-replayed')).toBe('true');
    expect(again.data?.transactionId).toBe(ok[0]?.data?.transactionId);
  });

  it('concurrent refunds of one deduction never return more than was deducted', async () => {
    const user = await t.user({ points: 100 });
    const api = await t.legacyClient(apiKey, user.privyId);
    const d = await deductPoints({ client: api, body: { amount: 10 } });
    const txn = d.data?.transactionId ?? '';
    const results = await Promise.all(
      Array.from({ length: 30 }, () =>
        refundTransaction({ client: api, path: { transactionId: txn }, body: { amount: 1 } }),
      ),
    );
    expect(results.filter((r) => r.response.status === 200)).toHaveLength(10);
    expect(results.filter((r) => r.response.status === 422)).toHaveLength(20);
    expect((await getBalance({ client: api })).data?.balance).toBe(100);
    expect(await ledger(user.id)).toEqual({ sum: 100, entries: 12 });
  });

  it('mixed deducts and refunds across many users keep every ledger equal to its balance', async () => {
    const users = await Promise.all(Array.from({ length: 5 }, () => t.user({ points: 50 })));
    const apis = await Promise.all(users.map((u) => t.legacyClient(apiKey, u.privyId)));
    await Promise.all(
      apis.flatMap((api) =>
        Array.from({ length: 20 }, async (_, i) => {
          const r = await deductPoints({ client: api, body: { amount: 3 + (i % 4) } });
          if (r.data && i % 2 === 0) {
            await refundTransaction({
              client: api,
              path: { transactionId: r.data.transactionId },
              body: { amount: 1 },
            });
          }
        }),
      ),
    );
    for (const [i, u] of users.entries()) {
      const balance = (await getBalance({ client: apis[i] })).data?.balance ?? -1;
      expect(balance).toBeGreaterThanOrEqual(0);
      expect((await ledger(u.id)).sum).toBe(balance);
    }
  });
});

describe.skipIf(!real)('idempotency key in flight (deterministic)', () => {
  it('answers 409 idempotency_key_in_flight while another transaction holds the key, and deducts nothing', async () => {
    const t = await startTestServer();
    try {
      const partner = await t.partner();
      const user = await t.user({ points: 50 });
      const api = await t.legacyClient(partner.clientSecret, user.privyId);
      const lockId = advisoryKey({ partnerId: partner.id, userId: user.id, key: 'held-key' });
      const holder = new pg.Client({ connectionString: t.db.orm.config.get('clientUrl') });
      await holder.connect();
      await holder.query('begin');
      await holder.query('select pg_advisory_xact_lock($1::bigint)', [lockId]);
      const blocked = await deductPoints({ client: api, body: { amount: 5, idempotencyKey: 'held-key' } });
      expect(blocked.response.status).toBe(409);
      expect(blocked.error).toMatchObject({ code: 'idempotency_key_in_flight' });
      expect((await getBalance({ client: api })).data?.balance).toBe(50);
      await holder.query('commit');
      await holder.end();
      const ok = await deductPoints({ client: api, body: { amount: 5, idempotencyKey: 'held-key' } });
      expect(ok.response.status).toBe(200);
      expect(ok.data?.newBalance).toBe(45);
    } finally {
      await t.stop();
    }
  });
});
