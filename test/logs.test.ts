import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authorizeAsUser } from './support/browser.js';
import { startTestServer, type TestServer } from './support/harness.js';
import { type CapturedLogs, captureLogs } from './support/logs.js';
import { pkcePair, tokenRequest } from './support/oauth.js';
import { WebhookReceiver } from './support/webhook-receiver.js';
import { partnerApi } from './support/webhooks.js';

/**
 * Structured logs: one JSON line per request with its request id (also in `X-Request-Id`), the
 * operationId, partner id, status and latency; and never a secret, whichever flow carried it.
 */
const REDIRECT = 'https://partner.test/callback';

let t: TestServer;
let logs: CapturedLogs;
let receiver: WebhookReceiver;

beforeAll(async () => {
  logs = captureLogs();
  t = await startTestServer(
    { LOG_LEVEL: 'info', LOG_REQUESTS: 'true', WEBHOOK_DELIVERED_WAIT_MS: '3000' },
    { logDestination: logs.stream },
  );
  receiver = await WebhookReceiver.start();
});
afterAll(async () => {
  await t?.stop();
  await receiver?.close();
});

describe('logs', () => {
  it('a full OAuth + deduct + webhook flow (secret rotation included) leaves none of its secrets in the logs', async () => {
    const password = 'correct horse battery staple 9';
    const partner = await t.partner({ redirectUris: [REDIRECT] });
    const email = `logs-${Date.now()}@example.test`;
    const user = await t.user({ email, password, points: 1_000 });
    const api = partnerApi(t, partner.clientSecret);
    const endpoint = await api.createEndpoint(receiver.url(), ['points.deducted', 'token.revoked']);
    const rotated = await api.rotate(endpoint.endpointId);
    expect(rotated.status).toBe(200);

    // authorize (PKCE) -> sign-in -> consent -> code -> tokens
    const { verifier, challenge } = pkcePair();
    const { location, browser } = await authorizeAsUser(
      t,
      {
        client_id: partner.clientId,
        redirect_uri: REDIRECT,
        scope: 'deduct balance',
        state: 'st-123',
        code_challenge: challenge,
        code_challenge_method: 'S256',
      },
      { email, password },
    );
    const code = location.searchParams.get('code') ?? '';
    expect(code).not.toBe('');
    const granted = await tokenRequest(t, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT,
      client_id: partner.clientId,
      client_secret: partner.clientSecret,
      code_verifier: verifier,
    });
    expect(granted.status).toBe(200);
    const first = (await granted.json()) as { access_token: string; refresh_token: string };
    const refreshed = await tokenRequest(t, {
      grant_type: 'refresh_token',
      refresh_token: first.refresh_token,
      client_id: partner.clientId,
      client_secret: partner.clientSecret,
    });
    expect(refreshed.status).toBe(200);
    const second = (await refreshed.json()) as { access_token: string; refresh_token: string };

    // A deduct with the bearer token (its webhook signed with both secrets), one in the legacy flow
    // (API key + Privy session), and a wrong password on the sign-in page.
    const deduct = await fetch(new URL('/api/v1/points/deduct', t.url), {
      method: 'POST',
      headers: {
        authorization: `Bearer ${second.access_token}`,
        'content-type': 'application/json',
        'x-request-id': 'partner-req-42',
      },
      body: JSON.stringify({ amount: 7, idempotencyKey: 'logs-1' }),
    });
    expect(deduct.status).toBe(200);
    expect(deduct.headers.get('x-request-id')).toBe('partner-req-42');
    expect(((await deduct.json()) as { webhookDelivered: boolean }).webhookDelivered).toBe(true);
    const legacy = await t.legacyHeaders(partner.clientSecret, user.privyId);
    const legacyDeduct = await fetch(new URL('/api/v1/points/deduct', t.url), {
      method: 'POST',
      headers: { ...legacy, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 3 }),
    });
    expect(legacyDeduct.status).toBe(200);
    const wrongPassword = 'not-the-password-77';
    await fetch(new URL('/wallet/login', t.url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ method: 'password', email: 'x@example.test', password: wrongPassword }),
    });
    // The replayed refresh token revokes the family (token.revoked goes out too).
    expect(
      (
        await tokenRequest(t, {
          grant_type: 'refresh_token',
          refresh_token: first.refresh_token,
          client_id: partner.clientId,
          client_secret: partner.clientSecret,
        })
      ).status,
    ).toBe(400);
    await t.drainJobs();
    await receiver.waitFor(2);

    const secrets = {
      clientSecret: partner.clientSecret,
      password,
      wrongPassword,
      code,
      codeVerifier: verifier,
      accessToken: first.access_token,
      refreshToken: first.refresh_token,
      accessToken2: second.access_token,
      refreshToken2: second.refresh_token,
      privySession: legacy['x-privy-session-token'] ?? '',
      webhookSecret: endpoint.secret,
      rotatedWebhookSecret: rotated.body.secret,
      ...Object.fromEntries(browser.cookieValues().map((v, i) => [`cookie${i}`, decodeURIComponent(v)])),
    };
    expect(browser.cookieValues().length).toBeGreaterThan(0);
    const text = logs.text();
    for (const [name, value] of Object.entries(secrets)) {
      expect(value.length, name).toBeGreaterThan(8);
      expect(text.includes(value), `${name} appears in the logs`).toBe(false);
      // Nor any recognisable part of it (a prefix logged for "debugging").
      expect(text.includes(value.slice(0, 16)), `the start of ${name} appears in the logs`).toBe(false);
    }

    // The lines are there: one per request, with its id, operationId, partner, status and latency.
    const requests = logs.lines().filter((l) => l.msg === 'request');
    const byOp = (op: string) => requests.filter((l) => l.operationId === op);
    expect(byOp('createToken').map((l) => l.status)).toEqual([200, 200, 400]);
    expect(byOp('createToken').map((l) => l.partnerId)).toEqual([partner.id, partner.id, partner.id]);
    expect(byOp('authorize').length).toBeGreaterThan(0);
    const [partnerDeduct] = requests.filter((l) => l.reqId === 'partner-req-42');
    expect(partnerDeduct).toMatchObject({
      operationId: 'deductPoints',
      method: 'POST',
      partnerId: partner.id,
      status: 200,
      level: 30,
    });
    expect(typeof partnerDeduct?.ms).toBe('number');
    for (const line of requests) {
      expect(line.reqId).toMatch(/^[\w.:@/+=-]{1,128}$/);
      expect(typeof line.status).toBe('number');
    }
    expect(requests.some((l) => l.path === '/wallet/login')).toBe(true);
  });

  it('redacts credential fields and headers should a log call ever carry them', () => {
    const before = logs.text().length;
    t.services.log.warn(
      {
        password: 'pw-0123456789',
        client_secret: 'cs-0123456789',
        refresh_token: 'tcrt_0123456789',
        req: { headers: { authorization: 'Bearer tcat_0123456789', cookie: 'tian_wallet=sid0123456789' } },
        body: { amount: 5, client_secret: 'cs-body-0123456789' },
      },
      'a careless log call',
    );
    const line = logs.text().slice(before);
    expect(line).toContain('a careless log call');
    expect(line).toContain('[redacted]');
    expect(line).not.toMatch(/0123456789/);
  });

  it('an error that quotes a token, a client secret or a Privy session in its message is logged without it', () => {
    const before = logs.text().length;
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJkaWQ6cHJpdnk6eCJ9.c2lnbmF0dXJlMDEyMzQ1Njc4OQ';
    t.services.log.error(
      {
        err: new Error(
          `invalid input syntax for type bigint: "tcat_AbC-123_xyz" (tcsk_q/+=9 whsec_Zm9v/Kw==) ${jwt}`,
        ),
      },
      'unexpected error: answered 500',
    );
    const line = logs.text().slice(before);
    expect(line).toContain('tcat_[redacted]');
    expect(line).toContain('[redacted JWT]');
    for (const leaked of ['AbC-123', 'q/+=9', 'Zm9v', 'c2lnbmF0dXJl']) expect(line).not.toContain(leaked);
  });

  it('a response carries a fresh X-Request-Id unless the caller sent a sane one', async () => {
    const health = (headers: Record<string, string> = {}) => fetch(new URL('/healthz', t.url), { headers });
    const fresh = (await health()).headers.get('x-request-id') ?? '';
    expect(fresh).toMatch(/^[0-9a-f-]{36}$/);
    expect((await health({ 'x-request-id': 'abc-123' })).headers.get('x-request-id')).toBe('abc-123');
    // Too long, or with characters that could forge a log line: replaced.
    for (const bad of ['x'.repeat(129), 'a b', 'a"b', 'a\\nb']) {
      const id = (await health({ 'x-request-id': bad })).headers.get('x-request-id');
      expect(id).not.toBe(bad);
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
    }
  });
});
