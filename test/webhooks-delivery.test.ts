import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deductPoints, refundTransaction } from '../generated/sdk/index.js';
import { startTestServer, type TestServer } from './support/harness.js';
import { WebhookReceiver } from './support/webhook-receiver.js';
import { partnerApi } from './support/webhooks.js';

/**
 * Delivery through the real server to a real receiver on 127.0.0.1: retries, restarts, the event
 * filter, disabling, redirects, timeouts and the deduct's `webhookDelivered`. Time moves only with
 * the injected clock; the receiver is a real HTTP peer.
 */
const WAIT_MS = 1_000;
const TIMEOUT_MS = 3_000;
/** A receiver this much slower than the wait (still inside the timeout). */
const SLOW_MS = WAIT_MS + 1_200;
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({
    WEBHOOK_TIMEOUT_MS: String(TIMEOUT_MS),
    WEBHOOK_DELIVERED_WAIT_MS: String(WAIT_MS),
  });
});
afterAll(() => t?.stop());

/** A fresh partner with one user and a receiver of its own (so tests never see each other's events). */
async function setup(
  events: Parameters<ReturnType<typeof partnerApi>['createEndpoint']>[1] = ['points.deducted'],
) {
  const partner = await t.partner();
  const api = partnerApi(t, partner.clientSecret);
  const receiver = await WebhookReceiver.start();
  const endpoint = await api.createEndpoint(receiver.url(), events);
  const user = await t.user({ points: 1_000 });
  const client = await t.legacyClient(partner.clientSecret, user.privyId);
  const deduct = async (amount = 10, idempotencyKey?: string) => {
    const res = await deductPoints({
      client,
      body: { amount, ...(idempotencyKey ? { idempotencyKey } : {}) },
    });
    if (!res.data) throw new Error(`deduct failed: ${JSON.stringify(res.error)}`);
    return { ...res.data, replayed: res.response.headers.get('idempotent-replayed') === 'true' };
  };
  return { partner, api, receiver, endpoint, user, client, deduct };
}

/** Moves the clock and runs what fell due, as the every-minute tick would. */
async function after(ms: number) {
  t.clock.advance(ms);
  await t.runDue();
}

const deliveriesOf = async (api: ReturnType<typeof partnerApi>) => (await api.deliveries()).body.data;

describe('webhook delivery', () => {
  it('a receiver that answers 500 then 200 gets the event on the retry, validly signed, with the same webhook-id', async () => {
    const { api, receiver, endpoint, deduct } = await setup();
    receiver.reply({ status: 500, body: 'try later' });
    const deducted = await deduct(25);
    expect(deducted.webhookDelivered).toBe(false);
    expect(receiver.received).toHaveLength(1);
    const [failed] = await deliveriesOf(api);
    expect(failed).toMatchObject({
      status: 'pending',
      attempts: 1,
      lastStatusCode: 500,
      lastError: 'HTTP 500',
    });
    // The first retry is due 5 s (±20 %) after the failure.
    const waitMs = new Date(failed?.nextAttemptAt ?? 0).getTime() - t.clock.now().getTime();
    expect(waitMs).toBeGreaterThanOrEqual(4_000);
    expect(waitMs).toBeLessThanOrEqual(6_000);

    await after(6_001);
    expect(receiver.received).toHaveLength(2);
    const [first, second] = receiver.received;
    if (!first || !second) throw new Error('two requests expected');
    expect(second.headers['webhook-id']).toBe(first.headers['webhook-id']);
    expect(second.headers['webhook-id']).toBe(failed?.eventId);
    expect(Number(second.headers['webhook-timestamp'])).toBeGreaterThan(
      Number(first.headers['webhook-timestamp']),
    );
    expect(second.headers['content-type']).toBe('application/json');
    const payload = WebhookReceiver.verify(second, endpoint.secret, t.clock.now());
    expect(Object.keys(payload as object)).toEqual([
      'event',
      'timestamp',
      'transactionId',
      'userId',
      'amount',
      'newBalance',
      'description',
    ]);
    expect(payload).toMatchObject({
      event: 'points.deducted',
      transactionId: deducted.transactionId,
      amount: 25,
    });

    const detail = (await api.delivery(failed?.deliveryId ?? '')).body;
    expect(detail).toMatchObject({
      status: 'succeeded',
      attempts: 2,
      lastStatusCode: 200,
      nextAttemptAt: null,
    });
    expect(detail.attemptLog).toEqual([
      expect.objectContaining({ attempt: 1, statusCode: 500, error: 'HTTP 500', responseBody: 'try later' }),
      expect.objectContaining({ attempt: 2, statusCode: 200, error: null, responseBody: 'ok' }),
    ]);
    expect(detail.attemptLog[0]?.latencyMs).toBeGreaterThanOrEqual(0);
    await receiver.close();
  });

  it('every event reaches the receiver after it was down while the server restarted, none lost', async () => {
    const { api, receiver, deduct, client, partner, user } = await setup([
      'points.deducted',
      'points.refunded',
      'token.revoked',
    ]);
    await receiver.down();
    const d = await deduct(10);
    expect(d.webhookDelivered).toBe(false);
    await refundTransaction({ client, path: { transactionId: d.transactionId }, body: { amount: 4 } });
    const tokens = await t.tokens(partner.id, user.id, 'deduct');
    const revoked = await fetch(new URL('/api/oauth2/revoke', t.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: tokens.accessToken }),
    });
    expect(revoked.status).toBe(200);
    const ping = await api.ping(
      (await api.call<{ data: { endpointId: string }[] }>('GET', '/api/v1/partner/webhook-endpoints')).body
        .data[0]?.endpointId ?? '',
    );
    expect(ping.status).toBe(202);
    await t.drainJobs(); // attempts while the receiver is down: connection refused

    await t.restart();
    await receiver.up();
    await after(10 * MINUTE);

    const events = await t.db.query<{ public_id: string; type: string }>(
      'select public_id, type from webhook_events where partner_id = $1 order by id',
      [partner.id],
    );
    expect(events.map((e) => e.type)).toEqual([
      'points.deducted',
      'points.refunded',
      'token.revoked',
      'test.ping',
    ]);
    const got = new Set(receiver.received.map((r) => r.headers['webhook-id']));
    expect([...got].sort()).toEqual(events.map((e) => e.public_id).sort());
    expect((await deliveriesOf(api)).every((x) => x.status === 'succeeded')).toBe(true);
    const revokedBody = receiver.received.find((r) => r.body.includes('"token.revoked"'))?.body ?? '';
    expect(Object.keys(JSON.parse(revokedBody))).toEqual([
      'event',
      'timestamp',
      'tokenId',
      'userId',
      'scope',
      'revokedAt',
      'revokedBy',
    ]);
    await receiver.close();
  });

  it('sends each endpoint only the event types in its filter', async () => {
    const { api, receiver: deductedRx, client, deduct } = await setup(['points.deducted']);
    const refundedRx = await WebhookReceiver.start();
    await api.createEndpoint(refundedRx.url(), ['points.refunded']);
    const d = await deduct(10);
    await refundTransaction({ client, path: { transactionId: d.transactionId }, body: {} });
    await after(MINUTE);
    expect(deductedRx.received.map((r) => JSON.parse(r.body).event)).toEqual(['points.deducted']);
    expect(refundedRx.received.map((r) => JSON.parse(r.body).event)).toEqual(['points.refunded']);
    await deductedRx.close();
    await refundedRx.close();
  });

  it('a disabled endpoint gets nothing; its events are logged as failed deliveries', async () => {
    const { api, receiver, endpoint, deduct } = await setup();
    expect((await api.update(endpoint.endpointId, { enabled: false })).body).toMatchObject({
      enabled: false,
      disabledReason: 'manual',
    });
    expect((await deduct(10)).webhookDelivered).toBe(false);
    await after(HOUR);
    expect(receiver.received).toHaveLength(0);
    expect(await deliveriesOf(api)).toEqual([
      expect.objectContaining({
        status: 'failed',
        attempts: 0,
        lastError: expect.stringMatching(/disabled/),
      }),
    ]);
    await receiver.close();
  });

  it('410 Gone disables the endpoint at once, with the reason in the API, and nothing more is sent', async () => {
    const { api, receiver, endpoint, deduct } = await setup();
    receiver.reply({ status: 410 });
    await deduct(10);
    const ep = (await api.endpoint(endpoint.endpointId)).body;
    expect(ep).toMatchObject({ enabled: false, disabledReason: 'gone' });
    expect(ep.disabledDetail).toMatch(/410 Gone/);
    expect((await deliveriesOf(api))[0]).toMatchObject({ status: 'failed', lastStatusCode: 410 });
    await deduct(10);
    await after(HOUR);
    expect(receiver.received).toHaveLength(1);
    // Enabling it again clears the reason.
    expect((await api.update(endpoint.endpointId, { enabled: true })).body).toMatchObject({
      enabled: true,
      disabledReason: null,
      disabledDetail: null,
      failingSince: null,
    });
    await receiver.close();
  });

  it('does not follow a redirect and counts it as a failure', async () => {
    const { api, receiver, deduct } = await setup();
    receiver.reply({ status: 302, headers: { location: receiver.url('/elsewhere') } });
    await deduct(10);
    expect(receiver.received.map((r) => r.path)).toEqual(['/hook']);
    expect((await deliveriesOf(api))[0]).toMatchObject({
      status: 'pending',
      lastStatusCode: 302,
      lastError: 'HTTP 302: redirects are not followed',
    });
    await receiver.close();
  });

  it('gives up on a hanging receiver after the timeout and logs the timeout', async () => {
    const { api, receiver, endpoint } = await setup();
    receiver.reply({ hang: true });
    const started = Date.now();
    const ping = await api.ping(endpoint.endpointId);
    await t.drainJobs();
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 3_000);
    expect((await api.delivery(ping.body.deliveryId)).body).toMatchObject({
      status: 'pending',
      attempts: 1,
      lastStatusCode: null,
      lastError: `timed out after ${TIMEOUT_MS} ms`,
    });
    await receiver.close();
  });

  it('honours Retry-After on 429, never sooner than 60 seconds', async () => {
    const { api, receiver, endpoint } = await setup();
    receiver.reply(
      { status: 429, headers: { 'retry-after': '1' } },
      { status: 503, headers: { 'retry-after': '600' } },
    );
    const ping = (await api.ping(endpoint.endpointId)).body;
    await t.drainJobs();
    const first = (await api.delivery(ping.deliveryId)).body;
    expect(new Date(first.nextAttemptAt ?? 0).getTime() - t.clock.now().getTime()).toBe(MINUTE);
    await after(MINUTE);
    const second = (await api.delivery(ping.deliveryId)).body;
    expect(second.attempts).toBe(2);
    expect(new Date(second.nextAttemptAt ?? 0).getTime() - t.clock.now().getTime()).toBe(10 * MINUTE);
    await receiver.close();
  });

  it('gives up after the 8th attempt (about 28 hours) and marks the delivery failed', async () => {
    const { api, receiver, endpoint } = await setup();
    receiver.always({ status: 500 });
    const ping = (await api.ping(endpoint.endpointId)).body;
    await t.drainJobs();
    for (let i = 0; i < 7; i++) await after(12 * HOUR);
    const d = (await api.delivery(ping.deliveryId)).body;
    expect(d).toMatchObject({ status: 'failed', attempts: 8, nextAttemptAt: null });
    expect(receiver.received).toHaveLength(8);
    await receiver.close();
  });

  it('disables an endpoint that has failed for 5 days straight, with the reason in the API', async () => {
    const { api, receiver, endpoint } = await setup();
    receiver.always({ status: 500 });
    await api.ping(endpoint.endpointId);
    await t.drainJobs();
    const failing = (await api.endpoint(endpoint.endpointId)).body;
    expect(failing.failingSince).not.toBeNull();
    expect(failing.enabled).toBe(true);
    await after(5 * 24 * HOUR);
    await api.ping(endpoint.endpointId);
    await t.drainJobs();
    const ep = (await api.endpoint(endpoint.endpointId)).body;
    expect(ep).toMatchObject({ enabled: false, disabledReason: 'failing' });
    expect(ep.disabledDetail).toMatch(/5 days/);
    await receiver.close();
  });

  it('a success ends the failure streak', async () => {
    const { api, receiver, endpoint } = await setup();
    receiver.reply({ status: 500 });
    await api.ping(endpoint.endpointId);
    await t.drainJobs();
    expect((await api.endpoint(endpoint.endpointId)).body.failingSince).not.toBeNull();
    await after(MINUTE);
    expect((await api.endpoint(endpoint.endpointId)).body.failingSince).toBeNull();
    await receiver.close();
  });
});

describe('webhookDelivered in the deduct response', () => {
  it('is true when the receiver acknowledged within the wait, and a replay returns the same', async () => {
    const { deduct, receiver } = await setup();
    const first = await deduct(10, 'delivered-key');
    expect(first.webhookDelivered).toBe(true);
    expect(receiver.received).toHaveLength(1);
    const replay = await deduct(10, 'delivered-key');
    expect(replay).toMatchObject({
      webhookDelivered: true,
      transactionId: first.transactionId,
      replayed: true,
    });
    expect(receiver.received).toHaveLength(1);
    await receiver.close();
  });

  it('is false when the receiver is slower than the wait, and the deduct is not held up by it', async () => {
    const { api, deduct, receiver } = await setup();
    receiver.reply({ delayMs: SLOW_MS });
    const started = Date.now();
    const res = await deduct(10);
    const took = Date.now() - started;
    expect(res.webhookDelivered).toBe(false);
    expect(took).toBeGreaterThanOrEqual(WAIT_MS - 50);
    expect(took).toBeLessThan(SLOW_MS);
    // The attempt carries on in the background and is recorded; no second send is needed.
    const deadline = Date.now() + SLOW_MS + 3_000;
    while ((await deliveriesOf(api))[0]?.status !== 'succeeded' && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect((await deliveriesOf(api))[0]).toMatchObject({ status: 'succeeded', attempts: 1 });
    await after(HOUR);
    expect(receiver.received).toHaveLength(1);
    await receiver.close();
  });

  it('is false at once when no endpoint subscribes to the event', async () => {
    const { deduct, receiver } = await setup(['points.refunded']);
    const started = Date.now();
    expect((await deduct(10)).webhookDelivered).toBe(false);
    expect(Date.now() - started).toBeLessThan(WAIT_MS);
    await receiver.close();
  });
});

describe('claims', () => {
  it('never sends the same attempt twice when two workers pick the delivery at once', async () => {
    const { api, receiver, endpoint } = await setup();
    receiver.always({ delayMs: 200 });
    const ping = (await api.ping(endpoint.endpointId)).body;
    const [row] = await t.db.query<{ id: string }>(
      'select id::text from webhook_deliveries where public_id = $1',
      [ping.deliveryId],
    );
    const id = row?.id ?? '';
    const outcomes = await Promise.all([
      t.services.webhookDelivery.attempt(id, 'due'),
      t.services.webhookDelivery.attempt(id, 'due'),
    ]);
    expect(outcomes.map((o) => o.kind).sort()).toEqual(['claimed', 'succeeded']);
    expect(receiver.received).toHaveLength(1);
    await receiver.close();
  });

  it('keeps at most 10 attempts in flight per endpoint', async () => {
    const { api, receiver, endpoint } = await setup();
    receiver.always({ delayMs: 500 });
    const ids: string[] = [];
    for (let i = 0; i < 11; i++) {
      const ping = (await api.ping(endpoint.endpointId)).body;
      const [row] = await t.db.query<{ id: string }>(
        'select id::text from webhook_deliveries where public_id = $1',
        [ping.deliveryId],
      );
      ids.push(row?.id ?? '');
    }
    const outcomes = await Promise.all(ids.map((id) => t.services.webhookDelivery.attempt(id, 'due')));
    expect(outcomes.filter((o) => o.kind === 'succeeded')).toHaveLength(10);
    expect(outcomes.filter((o) => o.kind === 'busy')).toHaveLength(1);
    await t.drainJobs(); // the busy one is re-queued a second later (database time)
    await after(MINUTE);
    expect(receiver.received).toHaveLength(11);
    await receiver.close();
  });
});
