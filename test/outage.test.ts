import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isConnectionFailure } from '../src/db/connection-failure.js';
import { startTestServer, type TestServer } from './support/harness.js';
import { startOutage, terminateConnections } from './support/outage.js';
import { realPostgresAvailable } from './support/pg.js';

// An outage is the database server refusing or dropping this server's connections: that takes a real
// PostgreSQL server and an administrator connection (the embedded database lives inside the process).
const real = await realPostgresAvailable();
if (!real)
  console.warn(
    '[tests] outage SKIPPED: needs the real PostgreSQL server (ALTER DATABASE, pg_terminate_backend).',
  );

describe.skipIf(!real)('a database outage', () => {
  let t: TestServer;
  let apiKey: string;
  let clientId: string;
  let user: { id: number; privyId: string };
  beforeAll(async () => {
    t = await startTestServer();
    const partner = await t.partner();
    apiKey = partner.clientSecret;
    clientId = partner.clientId;
    user = await t.user({ points: 1_000_000 });
  });
  afterAll(async () => {
    await t?.stop();
  });

  const balance = async () =>
    fetch(`${t.url}/api/v1/points/balance`, { headers: await t.legacyHeaders(apiKey, user.privyId) });
  const deduct = async (key: string) =>
    fetch(`${t.url}/api/v1/points/deduct`, {
      method: 'POST',
      headers: { ...(await t.legacyHeaders(apiKey, user.privyId)), 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 1, idempotencyKey: key }),
    });
  const token = () =>
    fetch(`${t.url}/api/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: 'tcrt_x',
        client_id: clientId,
        client_secret: apiKey,
      }).toString(),
    });
  /** The response and how long it took. */
  const timed = async (send: () => Promise<Response>) => {
    const started = performance.now();
    const res = await send();
    const body = await res.text();
    return { res, body, ms: performance.now() - started };
  };

  it('answers 200 or 503, never a 500, while its connections are terminated under load', async () => {
    const statuses: number[] = [];
    let i = 0;
    const load = async () => {
      for (let n = 0; n < 15; n++) {
        const res = n % 2 ? await balance() : await deduct(`terminate-${i++}`);
        statuses.push(res.status);
        await res.arrayBuffer();
      }
    };
    const killer = async () => {
      for (let n = 0; n < 5; n++) {
        await terminateConnections(t);
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
    };
    await Promise.all([load(), load(), load(), killer()]);
    expect(statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
    // No connection whose transaction died is kept checked out of the pool (it would never come back).
    const pool = await t.db.orm.em.getConnection().getNativeClient();
    expect(pool.totalCount - pool.idleCount).toBe(0);
    // The same process, reconnected by itself.
    expect((await balance()).status).toBe(200);
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
  });

  it('fails fast with 503 and Retry-After while connections are refused, and recovers without a restart', async () => {
    const outage = await startOutage(t);
    try {
      for (const send of [balance, () => deduct('refused-1')]) {
        const { res, body, ms } = await timed(send);
        expect(res.status).toBe(503);
        expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
        expect(JSON.parse(body)).toMatchObject({ status: 503, code: 'service_unavailable' });
        expect(ms).toBeLessThan(10_000);
      }
      // OAuth clients get the RFC 6749 body: temporarily_unavailable (RFC 6749 §4.1.2.1).
      const oauth = await timed(token);
      expect(oauth.res.status).toBe(503);
      expect(oauth.res.headers.get('retry-after')).toBeTruthy();
      expect(JSON.parse(oauth.body)).toMatchObject({ error: 'temporarily_unavailable' });
      expect(oauth.ms).toBeLessThan(10_000);

      const ready = await timed(() => fetch(`${t.url}/readyz`));
      expect(ready.res.status).toBe(503);
      expect(JSON.parse(ready.body)).toMatchObject({ status: 'unavailable', checks: { database: 'failed' } });
      expect(ready.ms).toBeLessThan(10_000);
      // Liveness does not depend on the database: an orchestrator must not restart a healthy process.
      expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    } finally {
      await outage.end();
    }

    expect((await balance()).status).toBe(200);
    expect((await deduct('after-outage')).status).toBe(200);
    const ready = await fetch(`${t.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: 'ready',
      checks: { database: 'ok', migrations: 'ok', jobRunner: 'not_running_here' },
    });
  }, 60_000);
});

describe('what counts as an outage (503 with Retry-After, never a 500)', () => {
  it('a server out of connections (53300) and a dropped connection without a code', () => {
    expect(isConnectionFailure({ code: '53300', message: 'sorry, too many clients already' })).toBe(true);
    expect(isConnectionFailure(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isConnectionFailure({ code: '23505', message: 'duplicate key value' })).toBe(false);
  });
});
