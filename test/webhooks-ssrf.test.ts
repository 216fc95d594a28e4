import type { LookupAddress } from 'node:dns';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressRefusal } from '../src/webhooks/address-policy.js';
import { WebhookHttpClient } from '../src/webhooks/http-client.js';
import { MAX_ATTEMPTS, parseRetryAfter, RETRY_DELAYS_MS, retryDelayMs } from '../src/webhooks/schedule.js';
import { urlRefusal } from '../src/webhooks/url-policy.js';
import { startTestServer, type TestServer } from './support/harness.js';
import { WebhookReceiver } from './support/webhook-receiver.js';
import { partnerApi } from './support/webhooks.js';

/**
 * SSRF: a partner's webhook URL must never reach our network or the cloud's metadata service.
 * Addresses are checked when the connection is made, so the refusals are tested with a stubbed
 * resolver (no DNS is asked); the only traffic is to 127.0.0.1.
 */
let rx: WebhookReceiver;
beforeAll(async () => {
  rx = await WebhookReceiver.start();
});
afterAll(() => rx?.close());

/** A resolver that knows only these names. */
const stub =
  (names: Record<string, string[]>) =>
  async (host: string): Promise<LookupAddress[]> => {
    const addresses = names[host];
    if (!addresses) throw Object.assign(new Error(`stub: ${host} unknown`), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

const client = (allowLoopback: boolean, names: Record<string, string[]>) =>
  new WebhookHttpClient({ timeoutMs: 2_000, allowLoopback, resolve: stub(names) });

describe('addresses a webhook may not reach', () => {
  it.each([
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['127.0.0.1', 'loopback'],
    ['::1', 'loopback'],
    ['169.254.10.10', 'link-local'],
    ['fe80::1', 'link-local'],
    ['100.64.0.1', 'carrier-grade NAT'],
    ['224.0.0.1', 'multicast'],
    ['ff02::1', 'multicast'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['169.254.169.254', 'cloud metadata'],
    ['fd00:ec2::254', 'cloud metadata'],
    ['fd12:3456::1', 'private'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:7f00:1', 'loopback'],
  ])('%s is refused as %s', (address, kind) => {
    expect(addressRefusal(address, false)).toContain(kind);
  });

  it('public addresses are fine, and loopback only with the development switch', () => {
    expect(addressRefusal('93.184.216.34', false)).toBeUndefined();
    expect(addressRefusal('2606:4700::1111', false)).toBeUndefined();
    expect(addressRefusal('127.0.0.1', true)).toBeUndefined();
    expect(addressRefusal('169.254.169.254', true)).toContain('metadata');
  });
});

describe('URLs refused when saved', () => {
  it('refuses http to anything but loopback, and loopback itself in production', () => {
    expect(urlRefusal('http://partner.example/hook', true)).toMatch(/https/);
    expect(urlRefusal('http://93.184.216.34/hook', true)).toMatch(/https/);
    expect(urlRefusal('http://127.0.0.1:8080/hook', true)).toBeUndefined();
    expect(urlRefusal('http://localhost:8080/hook', true)).toBeUndefined();
    expect(urlRefusal('https://partner.example/hook', false)).toBeUndefined();
    // production (no development switch): loopback is refused over http and https alike
    expect(urlRefusal('http://127.0.0.1:8080/hook', false)).toMatch(/https/);
    expect(urlRefusal('https://127.0.0.1/hook', false)).toMatch(/loopback/);
    expect(urlRefusal('https://[::1]/hook', false)).toMatch(/loopback/);
    expect(urlRefusal('https://localhost/hook', false)).toMatch(/loopback/);
  });
});

describe('connections refused when made (stubbed resolver)', () => {
  it('refuses a host that resolves to a private or metadata address, before connecting', async () => {
    const c = client(true, {
      'internal.partner.example': ['10.0.0.5'],
      'metadata.partner.example': ['169.254.169.254'],
      'v6metadata.partner.example': ['fd00:ec2::254'],
      'mixed.partner.example': ['93.184.216.34', '192.168.0.10'],
    });
    for (const host of ['internal', 'metadata', 'v6metadata', 'mixed']) {
      const out = await c.post(`https://${host}.partner.example/hook`, {}, '{}');
      expect(out.statusCode, host).toBeNull();
      expect(out.error, host).toMatch(/^refused: /);
    }
    const metadata = await c.post('https://metadata.partner.example/hook', {}, '{}');
    expect(metadata.error).toContain('cloud metadata');
    await c.close();
  });

  it('in production refuses a host that resolves to loopback: the receiver hears nothing', async () => {
    const port = new URL(rx.url()).port;
    const c = client(false, { 'sneaky.partner.example': ['127.0.0.1'] });
    const out = await c.post(`https://sneaky.partner.example:${port}/hook`, {}, '{}');
    expect(out.error).toMatch(/refused: .*loopback/);
    const plain = await c.post(rx.url(), {}, '{}');
    expect(plain.error).toMatch(/refused: plain http/);
    expect(rx.received).toHaveLength(0);
    await c.close();
  });

  it('with the development switch delivers to a name that resolves to loopback', async () => {
    const port = new URL(rx.url()).port;
    const c = client(true, { 'dev.partner.example': ['127.0.0.1'] });
    const out = await c.post(
      `http://dev.partner.example:${port}/hook`,
      { 'content-type': 'application/json' },
      '{}',
    );
    expect(out).toMatchObject({ statusCode: 200, error: null, responseBody: 'ok' });
    expect(rx.received).toHaveLength(1);
    await c.close();
  });

  it('never follows a redirect', async () => {
    const c = client(true, {});
    rx.reply({ status: 307, headers: { location: rx.url('/next') } });
    const before = rx.received.length;
    const out = await c.post(rx.url(), {}, '{}');
    expect(out.statusCode).toBe(307);
    expect(rx.received.slice(before).map((r) => r.path)).toEqual(['/hook']);
    await c.close();
  });
});

describe('through the server', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ WEBHOOK_ALLOW_HTTP_LOCALHOST: 'false', WEBHOOK_TIMEOUT_MS: '2000' });
  });
  afterAll(() => t?.stop());

  it('without the development switch refuses a loopback URL when it is saved', async () => {
    const partner = await t.partner();
    const api = partnerApi(t, partner.clientSecret);
    const res = await api.call('POST', '/api/v1/partner/webhook-endpoints', {
      url: rx.url(),
      events: ['points.deducted'],
    });
    expect(res).toMatchObject({ status: 422, body: { code: 'invalid_webhook_url', param: 'url' } });
  });

  it('logs a refused connection to a metadata address as the attempt error', async () => {
    const partner = await t.partner();
    const api = partnerApi(t, partner.clientSecret);
    const { endpointId } = await api.createEndpoint('https://hooks.partner.example/tian', [
      'points.deducted',
    ]);
    const real = t.services.webhookDelivery.http;
    t.services.webhookDelivery.http = client(false, { 'hooks.partner.example': ['169.254.169.254'] });
    try {
      const { deliveryId } = (await api.ping(endpointId)).body;
      await t.drainJobs();
      expect((await api.delivery(deliveryId)).body).toMatchObject({
        status: 'pending',
        attempts: 1,
        lastStatusCode: null,
        lastError: expect.stringMatching(/^refused: .*cloud metadata/),
      });
    } finally {
      await t.services.webhookDelivery.http.close();
      t.services.webhookDelivery.http = real;
    }
  });
});

describe('retry schedule', () => {
  it("follows Svix's schedule with ±20 % jitter and gives up after the 8th attempt", () => {
    expect(RETRY_DELAYS_MS).toEqual([
      5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
    ]);
    expect(MAX_ATTEMPTS).toBe(8);
    expect(retryDelayMs(1, () => 0)).toBe(4_000);
    expect(retryDelayMs(1, () => 0.5)).toBe(5_000);
    expect(retryDelayMs(1, () => 0.999_999)).toBe(6_000);
    expect(retryDelayMs(7, () => 0.5)).toBe(36_000_000);
    expect(retryDelayMs(8, () => 0.5)).toBeUndefined();
  });

  it('honours Retry-After (seconds or a date) with a 60-second floor', () => {
    const now = new Date('2026-04-10T07:00:00Z');
    expect(retryDelayMs(1, () => 0.5, parseRetryAfter('1', now))).toBe(60_000);
    expect(retryDelayMs(1, () => 0.5, parseRetryAfter('600', now))).toBe(600_000);
    expect(parseRetryAfter('Fri, 10 Apr 2026 07:02:00 GMT', now)).toBe(120_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
  });
});
