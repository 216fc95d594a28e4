import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CounterTable, SyncedCounter } from '../src/http/rate-limits.js';
import { ManualClock } from '../src/lib/clock.js';
import { type Running, startServer } from '../src/server.js';
import { startTestServer, type TestServer } from './support/harness.js';
import { realPostgresAvailable } from './support/pg.js';

// Two instances of the server on one database (as behind a load balancer) share every budget:
// failed authentications and sign-in views exactly (one upsert per counted event), a verified
// identity's requests within one sync (each instance counts in memory and adds its counts to the
// shared table every RATE_LIMIT_SYNC_MS; here the test calls sync() instead of waiting for it).

// The embedded database has one owner process: two instances need the PostgreSQL server.
const shared = await realPostgresAvailable();
if (!shared)
  console.log('[rate-limits-shared] skipped: no PostgreSQL server (the embedded database has one instance)');

let a: TestServer;
let b: Running;
let addr = 0;
const freshAddress = () => `198.51.100.${++addr}`;
const junk = () => randomBytes(24).toString('base64url');

beforeAll(async () => {
  if (!shared) return;
  a = await startTestServer({
    RATE_LIMIT_PER_MINUTE: '8',
    AUTH_RATE_LIMIT_PER_MINUTE: '5',
    TRUST_PROXY: 'loopback',
    RATE_LIMIT_SYNC_MS: '60000',
  });
  // The second instance: its own process state and pool, the same database and the same clock.
  b = await startServer({ ...a.services.config, publicUrl: a.url }, { clock: a.clock, worker: false });
});
afterAll(async () => {
  await b?.close();
  await a?.stop();
});

async function balance(url: string, from: string, headers: Record<string, string>) {
  const res = await fetch(`${url}/api/v1/points/balance`, {
    headers: { 'X-Forwarded-For': from, ...headers },
  });
  return res.status;
}

async function revoke(url: string, from: string, clientId: string, clientSecret: string) {
  const res = await fetch(`${url}/api/oauth2/revoke`, {
    method: 'POST',
    headers: { 'X-Forwarded-For': from, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: `tcat_${junk()}`, client_id: clientId, client_secret: clientSecret }),
  });
  return res.status;
}

describe.skipIf(!shared)('two instances on one database share the rate limits', () => {
  it('failed API keys on A count on B: 3 on A and 2 on B use the budget of 5 on both', async () => {
    const from = freshAddress();
    const made = { 'X-API-Key': `tcsk_${junk()}` };
    const statuses = [
      await balance(a.url, from, made),
      await balance(a.url, from, made),
      await balance(a.url, from, made),
      await balance(b.url, from, made),
      await balance(b.url, from, made),
      // The 6th failure is refused wherever it lands, without waiting for a sync.
      await balance(a.url, from, made),
      await balance(b.url, from, made),
    ];
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429]);
    // Both instances now refuse the address even with valid credentials.
    const partner = await a.partner();
    const user = await a.user({ points: 5 });
    expect(await balance(a.url, from, await a.legacyHeaders(partner.clientSecret, user.privyId))).toBe(429);
    expect(await balance(b.url, from, await a.legacyHeaders(partner.clientSecret, user.privyId))).toBe(429);
    expect(
      await balance(b.url, freshAddress(), await a.legacyHeaders(partner.clientSecret, user.privyId)),
    ).toBe(200);
  });

  it('an address blocked on B is refused on A once A has synced, even with valid credentials', async () => {
    const from = freshAddress();
    for (let i = 0; i < 5; i++)
      expect(await balance(b.url, from, { 'X-API-Key': `tcsk_${junk()}` })).toBe(401);
    await a.services.limits.sync();
    const partner = await a.partner();
    const user = await a.user({ points: 5 });
    expect(await balance(a.url, from, await a.legacyHeaders(partner.clientSecret, user.privyId))).toBe(429);
  });

  it('wrong client secrets for one client_id on A and B lock it on both at once (exact), never its owner', async () => {
    const target = await a.partner();
    const statuses: number[] = [];
    for (const url of [a.url, b.url, a.url, b.url, a.url]) {
      statuses.push(await revoke(url, freshAddress(), target.clientId, `tcsk_${junk()}`));
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401]);
    // No sync in between: each further failure is counted in the shared table and refused, on both.
    expect(await revoke(b.url, freshAddress(), target.clientId, `tcsk_${junk()}`)).toBe(429);
    expect(await revoke(a.url, freshAddress(), target.clientId, `tcsk_${junk()}`)).toBe(429);
    // The client_id is public: failing on purpose must not lock out the partner holding the secret.
    expect(await revoke(b.url, freshAddress(), target.clientId, target.clientSecret)).toBe(200);
    expect(await revoke(a.url, freshAddress(), target.clientId, target.clientSecret)).toBe(200);
  });

  it('a verified identity has one budget across instances, exact within one sync interval', async () => {
    const partner = await a.partner();
    const user = await a.user({ points: 5 });
    const headers = await a.legacyHeaders(partner.clientSecret, user.privyId);
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push(await balance(a.url, freshAddress(), headers));
    for (let i = 0; i < 4; i++) statuses.push(await balance(b.url, freshAddress(), headers));
    expect(statuses).toEqual(Array(8).fill(200));
    await a.services.limits.sync();
    await b.services.limits.sync();
    // 8 of 8 used in the cluster: B learnt A's 4 when it added its own.
    expect(await balance(b.url, freshAddress(), headers)).toBe(429);
    // A has not heard of B's 4 yet: until its next sync it counts on what it knew (the documented
    // lag: an instance may admit what it counts in one sync interval beyond the budget).
    expect(await balance(a.url, freshAddress(), headers)).toBe(200);
    await a.services.limits.sync();
    expect(await balance(a.url, freshAddress(), headers)).toBe(429);
    // The window is on the injected clock: the next minute is a new budget on both.
    a.clock.advance(60_000);
    expect(await balance(a.url, freshAddress(), headers)).toBe(200);
    expect(await balance(b.url, freshAddress(), headers)).toBe(200);
  });

  it('views of the wallet sign-in page count on both instances (exact)', async () => {
    const from = freshAddress();
    const view = async (url: string) =>
      (await fetch(`${url}/wallet/login`, { headers: { 'X-Forwarded-For': from } })).status;
    const statuses = [];
    for (const url of [a.url, b.url, a.url, b.url, a.url, b.url, a.url]) statuses.push(await view(url));
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
  });

  it('the housekeeping purge deletes ended windows', async () => {
    const count = async () =>
      Number((await a.db.query<{ n: string }>('select count(*) as n from rate_limit_counters'))[0]?.n);
    await a.services.limits.sync();
    expect(await count()).toBeGreaterThan(0);
    a.clock.advance(10 * 60_000);
    const { purgeExpired } = await import('../src/housekeeping.js');
    await purgeExpired(a.services);
    expect(await count()).toBe(0);
  });
});

describe('the in-memory request counter between syncs (no database)', () => {
  /** The shared table as a map, with a switch to make the next add fail (a database outage). */
  class FakeTable {
    rows = new Map<string, number>();
    writes: { key: string; n: number }[][] = [];
    failNext = false;
    /** While set, add() waits for it (a sync whose round trip is under way). */
    gate: Promise<void> | undefined;
    async add(_counter: string, rows: { windowStart: number; key: string; n: number }[]) {
      await this.gate;
      if (this.failNext) {
        this.failNext = false;
        throw new Error('connection refused');
      }
      this.writes.push(rows.map((r) => ({ key: r.key, n: r.n })));
      const out = new Map<string, number>();
      for (const r of rows) {
        const id = `${r.windowStart} ${r.key}`;
        this.rows.set(id, (this.rows.get(id) ?? 0) + r.n);
        out.set(id, this.rows.get(id) ?? 0);
      }
      return out;
    }
  }
  const counter = (limit: number, table: FakeTable, clock: ManualClock) =>
    new SyncedCounter('requests', limit, 60_000, table as unknown as CounterTable, clock);

  it('refuses past the budget without any I/O, and a failed sync keeps its counts for the next', async () => {
    const clock = new ManualClock(new Date('2026-11-24T00:00:10Z'));
    const table = new FakeTable();
    const c = counter(5, table, clock);
    const waits = Array.from({ length: 6 }, () => c.hit(['partner:1']));
    expect(waits).toEqual([undefined, undefined, undefined, undefined, undefined, 50]);
    table.failNext = true;
    await expect(c.flush()).rejects.toThrow('connection refused');
    await c.flush();
    expect(table.writes).toEqual([[{ key: 'partner:1', n: 6 }]]);
  });

  it('hits counted while a sync is under way still see the ones it is sending', async () => {
    const clock = new ManualClock(new Date('2026-11-24T00:00:10Z'));
    const table = new FakeTable();
    const c = counter(4, table, clock);
    for (let i = 0; i < 3; i++) c.hit(['k']);
    let open = () => {};
    table.gate = new Promise((resolve) => {
      open = resolve;
    });
    const syncing = c.flush();
    expect([c.hit(['k']), c.hit(['k'])]).toEqual([undefined, 50]);
    open();
    await syncing;
    expect(c.hit(['k'])).toBe(50);
  });

  it('identities far below their budget are not written; past 1 % of it they are, once per sync', async () => {
    const clock = new ManualClock(new Date('2026-11-24T00:00:10Z'));
    const table = new FakeTable();
    const c = counter(6000, table, clock);
    for (let i = 0; i < 59; i++) c.hit(['quiet']);
    for (let i = 0; i < 60; i++) c.hit(['busy']);
    await c.flush();
    expect(table.writes).toEqual([[{ key: 'busy', n: 60 }]]);
    // The quiet identity's minute ends below the threshold: its counts are dropped, never written.
    clock.advance(60_000);
    c.hit(['quiet']);
    await c.flush();
    expect(table.writes).toHaveLength(1);
  });

  it('tryHit admits up to the budget and counts nothing past it; unhit takes one back, in its own window', async () => {
    const clock = new ManualClock(new Date('2026-11-24T00:00:50Z'));
    const table = new FakeTable();
    const c = counter(3, table, clock);
    const counted = [c.tryHit('k'), c.tryHit('k'), c.tryHit('k')];
    expect(counted.every((w) => w !== undefined)).toBe(true);
    expect(c.tryHit('k')).toBeUndefined();
    // Refused by tryHit: not counted, so hit() still finds room for nothing more but one taken back.
    c.unhit(counted[2] as NonNullable<(typeof counted)[2]>);
    expect(c.hit(['k'])).toBeUndefined();
    expect(c.hit(['k'])).toBe(10);
    // Taken back after the minute ended: the old window loses it, the new one is untouched.
    const late = c.tryHit('j');
    clock.advance(20_000);
    expect(c.tryHit('j')).toBeDefined();
    c.unhit(late as NonNullable<typeof late>);
    expect([c.tryHit('j'), c.tryHit('j'), c.tryHit('j')].map((w) => w !== undefined)).toEqual([
      true,
      true,
      false,
    ]);
  });

  it("a window's counts are still written when the next minute starts before the sync", async () => {
    const clock = new ManualClock(new Date('2026-11-24T00:00:50Z'));
    const table = new FakeTable();
    const c = counter(4, table, clock);
    c.hit(['k']);
    c.hit(['k']);
    clock.advance(20_000);
    c.hit(['k']);
    await c.flush();
    expect(table.rows).toEqual(
      new Map([
        [`${Date.parse('2026-11-24T00:00:00Z')} k`, 2],
        [`${Date.parse('2026-11-24T00:01:00Z')} k`, 1],
      ]),
    );
  });
});
