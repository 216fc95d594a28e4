import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deductPoints } from '../generated/sdk/index.js';
import { startTestServer, type TestServer } from './support/harness.js';
import { WebhookReceiver } from './support/webhook-receiver.js';
import { partnerApi } from './support/webhooks.js';

/** The partner webhook API: endpoints, the event filter, secrets and their rotation, the delivery log. */
const HOUR = 3_600_000;

let t: TestServer;
let rx: WebhookReceiver;

beforeAll(async () => {
  t = await startTestServer({ WEBHOOK_TIMEOUT_MS: '2000' });
  rx = await WebhookReceiver.start();
});
afterAll(async () => {
  await rx?.close();
  await t?.stop();
});

async function newPartner() {
  const partner = await t.partner();
  return { partner, api: partnerApi(t, partner.clientSecret) };
}

const endpointCount = async (partnerId: number) =>
  (
    await t.db.query<{ n: number }>(
      'select count(*)::int as n from webhook_endpoints where partner_id = $1',
      [partnerId],
    )
  )[0]?.n;

describe('webhook endpoints', () => {
  it('registers an endpoint and shows its whsec_ signing secret only once', async () => {
    const { api } = await newPartner();
    const created = await api.call('POST', '/api/v1/partner/webhook-endpoints', {
      url: 'https://partner.example/hooks',
      events: ['points.deducted', 'token.revoked'],
      description: 'Production receiver',
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      endpointId: expect.stringMatching(/^we_[0-9A-Z]{26}$/),
      url: 'https://partner.example/hooks',
      events: ['points.deducted', 'token.revoked'],
      enabled: true,
      description: 'Production receiver',
      disabledReason: null,
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
    });
    expect(Buffer.from(String(created.body.secret).slice(6), 'base64')).toHaveLength(32);
    const id = String(created.body.endpointId);
    const got = await api.endpoint(id);
    expect(got.status).toBe(200);
    expect(got.body).not.toHaveProperty('secret');
    const list = await api.call<{ data: unknown[] }>('GET', '/api/v1/partner/webhook-endpoints');
    expect(list.body.data).toEqual([got.body]);
  });

  it('stores signing secrets encrypted, never in plain text', async () => {
    const { api } = await newPartner();
    const { endpointId, secret } = await api.createEndpoint('https://partner.example/hooks', [
      'points.deducted',
    ]);
    await api.rotate(endpointId);
    const [row] = await t.db.query<Record<string, unknown>>(
      'select * from webhook_endpoints where public_id = $1',
      [endpointId],
    );
    const dump = JSON.stringify(row);
    const raw = secret.slice('whsec_'.length);
    expect(dump).not.toContain(raw);
    expect(dump).not.toContain(Buffer.from(raw, 'base64').toString('hex'));
    expect(row?.secret_encrypted).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    expect(row?.previous_secret_encrypted).toMatch(/^v1\./);
  });

  it('refuses an empty or unknown event filter with a 400 and writes nothing', async () => {
    const { partner, api } = await newPartner();
    for (const events of [[], ['points.stolen'], ['points.deducted', 'points.deducted']]) {
      const res = await api.call('POST', '/api/v1/partner/webhook-endpoints', {
        url: 'https://partner.example/hooks',
        events,
      });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'validation_failed' });
    }
    expect(await endpointCount(partner.id)).toBe(0);
  });

  it('refuses URLs that are not https or point into private networks, with invalid_webhook_url', async () => {
    const { partner, api } = await newPartner();
    for (const url of [
      'http://partner.example/hooks',
      'https://10.0.0.8/hooks',
      'https://169.254.169.254/latest/meta-data',
      'https://[fd00:ec2::254]/',
      'https://user:pass@partner.example/hooks',
      'ftp://partner.example/hooks',
    ]) {
      const res = await api.call('POST', '/api/v1/partner/webhook-endpoints', {
        url,
        events: ['points.deducted'],
      });
      expect(res.status, url).toBe(422);
      expect(res.body, url).toMatchObject({ code: 'invalid_webhook_url', param: 'url' });
    }
    expect(await endpointCount(partner.id)).toBe(0);
  });

  it('accepts http to loopback on a development server', async () => {
    const { api } = await newPartner();
    const res = await api.call('POST', '/api/v1/partner/webhook-endpoints', {
      url: rx.url(),
      events: ['points.deducted'],
    });
    expect(res.status).toBe(201);
  });

  it('allows at most 20 endpoints per partner', async () => {
    const { api } = await newPartner();
    for (let i = 0; i < 20; i++)
      await api.createEndpoint(`https://partner.example/hooks/${i}`, ['points.deducted']);
    const res = await api.call('POST', '/api/v1/partner/webhook-endpoints', {
      url: 'https://partner.example/one-more',
      events: ['points.deducted'],
    });
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ code: 'too_many_webhook_endpoints' });
  });

  it('changes the URL, event filter and note, and refuses a bad URL without changing anything', async () => {
    const { api } = await newPartner();
    const { endpointId } = await api.createEndpoint('https://partner.example/a', ['points.deducted']);
    const changed = await api.update(endpointId, {
      url: 'https://partner.example/b',
      events: ['token.revoked'],
      description: 'moved',
    });
    expect(changed.body).toMatchObject({
      url: 'https://partner.example/b',
      events: ['token.revoked'],
      description: 'moved',
    });
    const bad = await api.update(endpointId, {
      url: 'http://partner.example/c',
      events: ['points.refunded'],
    });
    expect(bad.status).toBe(422);
    expect((await api.endpoint(endpointId)).body).toEqual(changed.body);
  });

  it("answers 404 for another partner's endpoint and delivery, whatever the operation", async () => {
    const owner = await newPartner();
    const other = await newPartner();
    const { endpointId } = await owner.api.createEndpoint(rx.url(), ['points.deducted']);
    const { deliveryId } = (await owner.api.ping(endpointId)).body;
    const notFound = { status: 404, body: expect.objectContaining({ code: 'webhook_endpoint_not_found' }) };
    expect(await other.api.endpoint(endpointId)).toMatchObject(notFound);
    expect(await other.api.update(endpointId, { enabled: false })).toMatchObject(notFound);
    expect(await other.api.remove(endpointId)).toMatchObject(notFound);
    expect(await other.api.ping(endpointId)).toMatchObject(notFound);
    expect(await other.api.rotate(endpointId)).toMatchObject(notFound);
    expect(await other.api.recover(endpointId, { since: new Date(0).toISOString() })).toMatchObject(notFound);
    const noDelivery = { status: 404, body: expect.objectContaining({ code: 'webhook_delivery_not_found' }) };
    expect(await other.api.delivery(deliveryId)).toMatchObject(noDelivery);
    expect(await other.api.resend(deliveryId)).toMatchObject(noDelivery);
    expect((await other.api.deliveries({ endpointId })).body.data).toEqual([]);
    expect((await owner.api.endpoint(endpointId)).body.enabled).toBe(true);
  });

  it('deletes an endpoint: it is gone from the API, with its deliveries, and gets nothing more', async () => {
    const { api } = await newPartner();
    const receiver = await WebhookReceiver.start();
    const { endpointId } = await api.createEndpoint(receiver.url(), ['points.deducted']);
    await api.ping(endpointId);
    expect((await api.remove(endpointId)).status).toBe(204);
    expect((await api.endpoint(endpointId)).status).toBe(404);
    expect((await api.deliveries()).body.data).toEqual([]);
    await t.drainJobs();
    expect(receiver.received).toHaveLength(0);
    await receiver.close();
  });
});

describe('signing secret rotation', () => {
  it('signs with the old and the new secret for 24 hours, then with the new one only', async () => {
    const { api } = await newPartner();
    const receiver = await WebhookReceiver.start();
    const { endpointId, secret: oldSecret } = await api.createEndpoint(receiver.url(), ['points.deducted']);
    const rotated = await api.rotate(endpointId);
    expect(rotated.status).toBe(200);
    expect(rotated.body).toMatchObject({
      endpointId,
      secret: expect.stringMatching(/^whsec_/),
      rotatedAt: t.clock.now().toISOString(),
      previousSecretExpiresAt: new Date(t.clock.now().getTime() + 24 * HOUR).toISOString(),
    });
    const newSecret = rotated.body.secret;
    expect(newSecret).not.toBe(oldSecret);

    await api.ping(endpointId);
    await t.drainJobs();
    const during = receiver.received[0];
    if (!during) throw new Error('no delivery during the overlap');
    expect(during.headers['webhook-signature']?.split(' ')).toHaveLength(2);
    expect(WebhookReceiver.verify(during, newSecret, t.clock.now())).toMatchObject({ event: 'test.ping' });
    expect(WebhookReceiver.verify(during, oldSecret, t.clock.now())).toMatchObject({ event: 'test.ping' });

    t.clock.advance(24 * HOUR + 1_000);
    await api.ping(endpointId);
    await t.drainJobs();
    const afterwards = receiver.received[1];
    if (!afterwards) throw new Error('no delivery after the overlap');
    expect(afterwards.headers['webhook-signature']?.split(' ')).toHaveLength(1);
    expect(WebhookReceiver.verify(afterwards, newSecret, t.clock.now())).toMatchObject({
      event: 'test.ping',
    });
    expect(() => WebhookReceiver.verify(afterwards, oldSecret, t.clock.now())).toThrow(
      /No matching signature/,
    );
    await receiver.close();
  });
});

describe('test events, the delivery log, resend and recover', () => {
  it('sends test.ping to the endpoint whatever its filter, logged like any other delivery', async () => {
    const { api } = await newPartner();
    const receiver = await WebhookReceiver.start();
    const { endpointId, secret } = await api.createEndpoint(receiver.url(), ['token.revoked']);
    const queued = await api.ping(endpointId);
    expect(queued.status).toBe(202);
    expect(queued.body).toMatchObject({ endpointId, eventType: 'test.ping', status: 'pending', attempts: 0 });
    await t.drainJobs();
    const [req] = receiver.received;
    if (!req) throw new Error('no test event');
    expect(WebhookReceiver.verify(req, secret, t.clock.now())).toEqual({
      event: 'test.ping',
      timestamp: t.clock.now().toISOString(),
      endpointId,
    });
    expect(req.headers['webhook-id']).toBe(queued.body.eventId);
    expect((await api.delivery(queued.body.deliveryId)).body).toMatchObject({
      status: 'succeeded',
      attempts: 1,
      payload: { event: 'test.ping', endpointId },
      attemptLog: [expect.objectContaining({ attempt: 1, statusCode: 200, responseBody: 'ok' })],
    });
    await receiver.close();
  });

  it('refuses to send to a disabled endpoint with webhook_endpoint_disabled', async () => {
    const { api } = await newPartner();
    const { endpointId } = await api.createEndpoint(rx.url(), ['points.deducted']);
    const { deliveryId } = (await api.ping(endpointId)).body;
    await api.update(endpointId, { enabled: false });
    const conflict = { status: 409, body: expect.objectContaining({ code: 'webhook_endpoint_disabled' }) };
    expect(await api.ping(endpointId)).toMatchObject(conflict);
    expect(await api.resend(deliveryId)).toMatchObject(conflict);
    expect(await api.recover(endpointId, { since: new Date(0).toISOString() })).toMatchObject(conflict);
  });

  it('filters the log by endpoint and status and pages through it with a cursor', async () => {
    const { api } = await newPartner();
    const receiver = await WebhookReceiver.start();
    const a = await api.createEndpoint(receiver.url('/a'), ['points.deducted']);
    const b = await api.createEndpoint(receiver.url('/b'), ['points.deducted']);
    receiver.reply({ status: 500 });
    const ids = [];
    for (const ep of [a, b, a]) ids.push((await api.ping(ep.endpointId)).body.deliveryId);
    await t.drainJobs();
    const toA = await api.deliveries({ endpointId: a.endpointId });
    expect(toA.body.data.map((d) => d.deliveryId)).toEqual([ids[2], ids[0]]);
    const retrying = await api.deliveries({ status: 'pending' });
    expect(retrying.body.data.map((d) => d.deliveryId)).toEqual([ids[0]]);
    const page1 = await api.deliveries({ limit: '2' });
    expect(page1.body).toMatchObject({ hasMore: true });
    expect(page1.body.data.map((d) => d.deliveryId)).toEqual([ids[2], ids[1]]);
    const page2 = await api.deliveries({ limit: '2', cursor: page1.body.nextCursor ?? '' });
    expect(page2.body).toMatchObject({ hasMore: false, nextCursor: null });
    expect(page2.body.data.map((d) => d.deliveryId)).toEqual([ids[0]]);
    const bad = await api.deliveries({ cursor: 'bm90LWEtY3Vyc29y' });
    expect(bad).toMatchObject({ status: 400, body: { code: 'invalid_cursor' } });
    await receiver.close();
  });

  it('resends one delivery as the same event with the same webhook-id', async () => {
    const { api } = await newPartner();
    const receiver = await WebhookReceiver.start();
    const { endpointId, secret } = await api.createEndpoint(receiver.url(), ['points.deducted']);
    const first = (await api.ping(endpointId)).body;
    await t.drainJobs();
    const again = await api.resend(first.deliveryId);
    expect(again.status).toBe(202);
    expect(again.body).toMatchObject({ eventId: first.eventId, endpointId, status: 'pending' });
    expect(again.body.deliveryId).not.toBe(first.deliveryId);
    await t.drainJobs();
    expect(receiver.received.map((r) => r.headers['webhook-id'])).toEqual([first.eventId, first.eventId]);
    expect(receiver.received[1]?.body).toBe(receiver.received[0]?.body);
    const resent = receiver.received[1];
    if (!resent) throw new Error('no resend');
    expect(WebhookReceiver.verify(resent, secret, t.clock.now())).toMatchObject({ event: 'test.ping' });
    await receiver.close();
  });

  it('recover resends exactly the failed deliveries since the given time, once', async () => {
    const { partner, api } = await newPartner();
    const receiver = await WebhookReceiver.start();
    const { endpointId } = await api.createEndpoint(receiver.url(), ['points.deducted']);
    const user = await t.user({ points: 100 });
    const client = await t.legacyClient(partner.clientSecret, user.privyId);
    const since = t.clock.now().toISOString();
    const deduct = async () => (await deductPoints({ client, body: { amount: 1 } })).data?.transactionId;
    const delivered = await deduct();
    await api.update(endpointId, { enabled: false });
    const missed = [await deduct(), await deduct()];
    expect(receiver.received).toHaveLength(1);
    await api.update(endpointId, { enabled: true });

    t.clock.advance(HOUR);
    const recovered = await api.recover(endpointId, { since });
    expect(recovered.status).toBe(202);
    expect(recovered.body).toMatchObject({
      endpointId,
      since,
      until: t.clock.now().toISOString(),
      queued: 2,
    });
    await t.drainJobs();
    const sent = receiver.received.map((r) => JSON.parse(r.body).transactionId);
    expect(sent).toEqual([delivered, ...missed]);
    expect((await api.recover(endpointId, { since })).body.queued).toBe(0);

    const future = new Date(t.clock.now().getTime() + HOUR).toISOString();
    expect(await api.recover(endpointId, { since: future })).toMatchObject({
      status: 422,
      body: { code: 'invalid_time_range', param: 'since' },
    });
    expect(await api.recover(endpointId, { since, until: since })).toMatchObject({
      status: 422,
      body: { code: 'invalid_time_range', param: 'until' },
    });
    await receiver.close();
  });
});
