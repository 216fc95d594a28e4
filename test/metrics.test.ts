import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/harness.js';
import { startWorker } from './support/main-process.js';
import { tokenRequest } from './support/oauth.js';
import { createTestDatabase } from './support/pg.js';
import { WebhookReceiver } from './support/webhook-receiver.js';
import { partnerApi } from './support/webhooks.js';

/** Prometheus at /metrics: each counter moves with what it counts; who may scrape it. */

/** The value of one sample in a Prometheus text exposition (0 when absent). */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-z_]+)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? '').split(',');
    if (wanted.every((w) => have.includes(w))) return Number(m[3]);
  }
  return 0;
}

const scrape = async (t: TestServer, headers: Record<string, string> = {}) => {
  const res = await fetch(new URL('/metrics', t.url), { headers });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
};

describe('metrics', () => {
  let t: TestServer;
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    t = await startTestServer({ WEBHOOK_DELIVERED_WAIT_MS: '3000' });
    receiver = await WebhookReceiver.start();
  });
  afterAll(async () => {
    await t?.stop();
    await receiver?.close();
  });

  it('after a deduct, a token grant, a refresh replay and a webhook delivery, the scrape shows each counter moved', async () => {
    const partner = await t.partner();
    await partnerApi(t, partner.clientSecret).createEndpoint(receiver.url(), ['points.deducted']);
    const user = await t.user({ points: 500 });
    const before = (await scrape(t)).text;
    expect(sample(before, 'tian_points_deducts_total')).toBe(0);

    // A deduct (bearer), its webhook acknowledged by the receiver before the response.
    const pair = await t.tokens(partner.id, user.id, 'deduct balance');
    const deduct = await fetch(new URL('/api/v1/points/deduct', t.url), {
      method: 'POST',
      headers: { authorization: `Bearer ${pair.accessToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 42, idempotencyKey: 'metrics-1' }),
    });
    expect(deduct.status).toBe(200);
    expect(((await deduct.json()) as { webhookDelivered: boolean }).webhookDelivered).toBe(true);

    // A refresh grant, then the same refresh token again: a replay.
    const refresh = {
      grant_type: 'refresh_token',
      refresh_token: pair.refreshToken,
      client_id: partner.clientId,
      client_secret: partner.clientSecret,
    };
    expect((await tokenRequest(t, refresh)).status).toBe(200);
    expect((await tokenRequest(t, refresh)).status).toBe(400);

    const res = await scrape(t);
    expect(res.status).toBe(200);
    expect(res.type).toMatch(/^text\/plain; version=0\.0\.4/);
    const m = res.text;
    expect(sample(m, 'tian_points_deducts_total')).toBe(1);
    expect(sample(m, 'tian_points_moved_total', { kind: 'deduct' })).toBe(42);
    expect(
      sample(m, 'tian_oauth_token_grants_total', { grant_type: 'refresh_token', outcome: 'success' }),
    ).toBe(1);
    expect(
      sample(m, 'tian_oauth_token_grants_total', { grant_type: 'refresh_token', outcome: 'invalid_grant' }),
    ).toBe(1);
    expect(sample(m, 'tian_oauth_refresh_replays_total')).toBe(1);
    expect(sample(m, 'tian_webhook_delivery_attempts_total', { outcome: 'succeeded' })).toBe(1);
    expect(sample(m, 'tian_webhook_delivery_lag_seconds_count')).toBe(1);
    expect(
      sample(m, 'tian_http_request_duration_seconds_count', { operation: 'deductPoints', status: '200' }),
    ).toBe(1);
    expect(
      sample(m, 'tian_http_request_duration_seconds_count', { operation: 'createToken', status: '400' }),
    ).toBe(1);
    // Read at scrape time: the queue (the deduct's delivery job is still queued: nothing drained it) and the pools.
    expect(
      sample(m, 'tian_jobs_queued', { state: 'ready' }) +
        sample(m, 'tian_jobs_queued', { state: 'scheduled' }),
    ).toBeGreaterThanOrEqual(1);
    expect(sample(m, 'tian_db_pool_connections', { pool: 'api', state: 'total' })).toBeGreaterThanOrEqual(1);
    expect(m).toContain('tian_db_pool_connections{pool="jobs",state="waiting"}');
    // The process's own: CPU, memory, event-loop lag.
    expect(sample(m, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(m).toContain('nodejs_eventloop_lag_p99_seconds');
  });

  it('one registry per server: a second server in the same process starts from zero', async () => {
    const other = await startTestServer();
    try {
      expect(sample((await scrape(other)).text, 'tian_points_deducts_total')).toBe(0);
    } finally {
      await other.stop();
    }
  });
});

describe('who may scrape /metrics', () => {
  it('with METRICS_TOKEN set, /metrics needs that bearer token', async () => {
    const token = 'scrape-token-0123456789abcdef';
    const t = await startTestServer({ METRICS_TOKEN: token });
    try {
      const none = await scrape(t);
      expect(none.status).toBe(401);
      expect(none.text).not.toContain('tian_');
      expect((await scrape(t, { authorization: `Bearer ${token}x` })).status).toBe(401);
      expect((await scrape(t, { authorization: token })).status).toBe(401);
      const ok = await scrape(t, { authorization: `Bearer ${token}` });
      expect(ok.status).toBe(200);
      expect(ok.text).toContain('tian_http_request_duration_seconds');
    } finally {
      await t.stop();
    }
  });

  it('in production without METRICS_TOKEN, /metrics is not served on the public port', async (ctx) => {
    const t = await startProduction({}).catch((err: Error) => err);
    if (t instanceof Error) {
      // Production refuses the embedded database: this check needs the real PostgreSQL.
      if (/DATABASE_URL/.test(t.message))
        return skipWithoutPostgres(ctx, 'production mode refuses the embedded database');
      throw t;
    }
    try {
      const res = await scrape(t);
      expect(res.status).toBe(404);
      expect(res.text).not.toContain('tian_');
    } finally {
      await t.stop();
    }
  });

  it('in production with METRICS_TOKEN, /metrics answers its holder only', async (ctx) => {
    const token = 'prod-scrape-token-0123456789';
    const t = await startProduction({ METRICS_TOKEN: token }).catch((err: Error) => err);
    if (t instanceof Error) {
      if (/DATABASE_URL/.test(t.message))
        return skipWithoutPostgres(ctx, 'production mode refuses the embedded database');
      throw t;
    }
    try {
      expect((await scrape(t)).status).toBe(401);
      expect((await scrape(t, { authorization: `Bearer ${token}` })).status).toBe(200);
    } finally {
      await t.stop();
    }
  });
});

/** Skips a test that needs the real PostgreSQL server, saying why (the summary lists the file). */
function skipWithoutPostgres(ctx: { skip: () => void; task: { name: string } }, why: string): void {
  console.warn(`[tests] "${ctx.task.name}" SKIPPED: ${why} (no PostgreSQL server here).`);
  ctx.skip();
}

describe('npm run worker', () => {
  it('serves its own /metrics on METRICS_PORT (it has no API), behind METRICS_TOKEN', async (ctx) => {
    const db = await createTestDatabase();
    if (!db.url) return skipWithoutPostgres(ctx, 'npm run worker needs a PostgreSQL server');
    const token = 'worker-scrape-token-0123456789';
    const worker = await startWorker({
      PATH: process.env.PATH,
      DATABASE_URL: db.url,
      METRICS_PORT: '0',
      METRICS_TOKEN: token,
      SHUTDOWN_TIMEOUT_MS: '2000',
    });
    try {
      const url = /metrics at (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(worker.output())?.[1] ?? '';
      expect(url).not.toBe('');
      expect((await fetch(url)).status).toBe(401);
      const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text).toContain('tian_jobs_queued{state="ready"}');
      expect(
        sample(text, 'tian_db_pool_connections', { pool: 'jobs', state: 'total' }),
      ).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
      expect((await fetch(new URL('/api/v1/points/balance', url))).status).toBe(404);
    } finally {
      worker.child.kill('SIGTERM');
      expect(await worker.exited).toBe(0);
      await db.drop();
    }
  }, 120_000);
});

/** A production-mode server (NODE_ENV=production with everything it requires) on the test database. */
function startProduction(extra: Record<string, string>): Promise<TestServer> {
  return startTestServer({
    NODE_ENV: 'production',
    PUBLIC_URL: 'https://wallet.example',
    WEBHOOK_SECRET_KEY: Buffer.alloc(32, 9).toString('base64'),
    SESSION_SECRET: 'p'.repeat(40),
    ...extra,
  });
}
