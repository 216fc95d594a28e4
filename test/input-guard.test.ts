import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/http/app.js';
import { routes } from '../src/http/routes.js';
import { decodeCursor, encodeCursor } from '../src/lib/ids.js';
import { startTestServer, type TestServer } from './support/harness.js';

/**
 * The inputs that used to end in a 500 (found by contract-tests/hostile-inputs.test.ts), each pinned
 * to its 4xx, and 500 bodies that never carry the exception's text.
 */
let t: TestServer;
let partner: { clientId: string; clientSecret: string };
let user: { id: number; privyId: string };
let legacy: Record<string, string>;

beforeAll(async () => {
  t = await startTestServer();
  partner = await t.partner();
  user = await t.user({ points: 100 });
  legacy = await t.legacyHeaders(partner.clientSecret, user.privyId);
});
afterAll(() => t?.stop());

async function call(method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  const res = await fetch(new URL(path, t.url), {
    method,
    headers,
    redirect: 'manual',
    ...(body === undefined ? {} : { body }),
  });
  const text = await res.text();
  return { status: res.status, type: res.headers.get('content-type') ?? '', text };
}

const moneyState = () => t.moneyState(user.id);

describe('strings PostgreSQL cannot store are a 400 before anything reads them', () => {
  const JSON_CT = { 'content-type': 'application/json' };
  it.each([
    ['a NUL in description', '{"amount":1,"description":"a\\u0000b"}', 'description'],
    ['a lone high surrogate in description', '{"amount":1,"description":"x\\ud800"}', 'description'],
    ['a lone low surrogate in description', '{"amount":1,"description":"\\udfffx"}', 'description'],
    ['a NUL in idempotencyKey', '{"amount":1,"idempotencyKey":"\\u0000"}', 'idempotencyKey'],
    ['a NUL in a key', '{"amount":1,"\\u0000":1}', '\\u0000'],
  ])('deduct with %s: 400 validation_failed naming it, nothing changed', async (_name, body, param) => {
    const before = await moneyState();
    const res = await call('POST', '/api/v1/points/deduct', { ...legacy, ...JSON_CT }, body);
    expect(res.status).toBe(400);
    expect(res.type).toMatch(/^application\/problem\+json/);
    expect(JSON.parse(res.text)).toMatchObject({ code: 'validation_failed', param });
    expect(await moneyState()).toEqual(before);
  });

  it('refund with a NUL or lone surrogate in reason: 400, nothing changed', async () => {
    const deduct = await call('POST', '/api/v1/points/deduct', { ...legacy, ...JSON_CT }, '{"amount":5}');
    const { transactionId } = JSON.parse(deduct.text) as { transactionId: string };
    for (const reason of ['\\u0000', '\\ud800', 'ok\\udc00']) {
      const before = await moneyState();
      const res = await call(
        'POST',
        `/api/v1/points/transactions/${transactionId}/refund`,
        { ...legacy, ...JSON_CT },
        `{"amount":1,"reason":"${reason}"}`,
      );
      expect(res.status).toBe(400);
      expect(JSON.parse(res.text)).toMatchObject({ code: 'validation_failed', param: 'reason' });
      expect(await moneyState()).toEqual(before);
    }
  });

  it('a well-formed surrogate pair (an emoji) is fine', async () => {
    const res = await call(
      'POST',
      '/api/v1/points/deduct',
      { ...legacy, ...JSON_CT },
      '{"amount":1,"description":"ok \\ud83d\\ude42"}',
    );
    expect(res.status).toBe(200);
  });

  it.each([
    ['JSON body', JSON_CT, (id: string) => JSON.stringify({ client_id: `${id}\u0000`, client_secret: 'x' })],
    [
      'form body',
      { 'content-type': 'application/x-www-form-urlencoded' },
      (id: string) => `client_id=${id}%00&client_secret=x`,
    ],
  ])('a NUL in client_id at token and revoke (%s): 400 invalid_request', async (_n, headers, body) => {
    for (const [path, extra] of [
      ['/api/oauth2/token', { grant_type: 'refresh_token', refresh_token: 'tcrt_x' }],
      ['/api/oauth2/revoke', { token: 'tcat_x' }],
    ] as const) {
      const raw = body(partner.clientId);
      const full = headers['content-type'].includes('json')
        ? JSON.stringify({ ...JSON.parse(raw), ...extra })
        : `${raw}&${new URLSearchParams(extra)}`;
      const res = await call('POST', path, headers, full);
      expect(res.status, path).toBe(400);
      expect(JSON.parse(res.text), path).toMatchObject({ error: 'invalid_request' });
    }
  });

  it('a NUL in HTTP Basic client credentials: 400 invalid_request', async () => {
    const basic = Buffer.from(`${partner.clientId}%00:${partner.clientSecret}`).toString('base64');
    const res = await call(
      'POST',
      '/api/oauth2/token',
      { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      'grant_type=refresh_token&refresh_token=tcrt_x',
    );
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toMatchObject({ error: 'invalid_request' });
  });

  it('a NUL in client_id at authorize: the 400 error page openapi.yaml documents, no redirect', async () => {
    const res = await call(
      'GET',
      `/api/oauth2/authorize?client_id=${partner.clientId}%00&redirect_uri=${encodeURIComponent('https://partner.test/callback')}&response_type=code&scope=balance`,
    );
    expect(res.status).toBe(400);
    expect(res.type).toMatch(/^text\/html/);
    expect(res.text).toContain('client_id');
  });

  it('a NUL in a query or path parameter: 400', async () => {
    expect((await call('GET', '/api/v1/points/transactions?cursor=%00', legacy)).status).toBe(400);
    expect((await call('GET', '/api/v1/points/transactions/txn_%00', legacy)).status).toBe(400);
  });
});

describe('numbers and cursors beyond what the database holds', () => {
  it.each(['Infinity', '1e309', '-1e309', '0x10', '1e1'])('limit=%s is a 400', async (limit) => {
    const res = await call('GET', `/api/v1/points/transactions?limit=${limit}`, legacy);
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toMatchObject({ code: 'validation_failed', param: 'limit' });
  });

  it.each(['9223372036854775808', '9999999999999999999'])(
    'a cursor of %s is refused, not a 500',
    async (n) => {
      const res = await call(
        'GET',
        `/api/v1/points/transactions?cursor=${Buffer.from(n).toString('base64url')}`,
        legacy,
      );
      expect(res.status).toBe(400);
      expect(JSON.parse(res.text)).toMatchObject({ code: 'invalid_cursor' });
    },
  );

  it('decodeCursor keeps every bigint and nothing past it', () => {
    expect(decodeCursor(encodeCursor('9223372036854775807'))).toBe('9223372036854775807');
    expect(decodeCursor(encodeCursor(1))).toBe('1');
    expect(decodeCursor(encodeCursor('9223372036854775808'))).toBeUndefined();
    expect(decodeCursor(encodeCursor('-1'))).toBeUndefined();
  });
});

describe('a 500 never carries the exception text', () => {
  let server: Server;
  let url: string;
  beforeAll(async () => {
    const secret = () => {
      throw new Error('relation "users" does not exist at character 15 (password=hunter2)');
    };
    const app = createApp({
      services: t.services,
      handlers: routes(t.services, { getAuthorizationServerMetadata: secret, getPartner: secret }),
    });
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const addr = server.address();
    url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });
  afterAll(() => new Promise<void>((resolve) => server?.close(() => resolve())));

  it.each([
    ['/api/v1/partner', 'problem+json'],
    ['/.well-known/oauth-authorization-server', 'problem+json'],
  ])('GET %s: a generic 500 (%s)', async (path) => {
    const res = await fetch(new URL(path, url), { headers: { 'x-api-key': partner.clientSecret } });
    const text = await res.text();
    expect(res.status).toBe(500);
    expect(text).not.toMatch(/relation|users|hunter2|character/);
    expect(JSON.parse(text)).toMatchObject({
      code: 'internal_error',
      detail: 'Something went wrong on our side.',
    });
  });
});
