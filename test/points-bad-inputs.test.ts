import { generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/harness.js';

let t: TestServer;
let apiKey: string;
let user: { id: number; privyId: string };
let good: Record<string, string>;

beforeAll(async () => {
  t = await startTestServer();
  apiKey = (await t.partner()).clientSecret;
  user = await t.user({ points: 100 });
  good = { 'content-type': 'application/json', ...(await t.legacyHeaders(apiKey, user.privyId)) };
});
afterAll(() => t?.stop());

const state = () => t.moneyState(user.id);

type Case = {
  name: string;
  status: number;
  code: string;
  headers?: Record<string, string | null | undefined>;
  body?: string;
};

const json = (v: unknown) => JSON.stringify(v);
const otherKey = await generateKeyPair('ES256');

describe('bad inputs to POST /api/v1/points/deduct get a clear 4xx and change nothing', () => {
  const cases: () => Case[] = () => [
    { name: 'missing amount', status: 400, code: 'validation_failed', body: json({ description: 'x' }) },
    { name: 'amount zero', status: 400, code: 'validation_failed', body: json({ amount: 0 }) },
    { name: 'negative amount', status: 400, code: 'validation_failed', body: json({ amount: -5 }) },
    { name: 'fractional amount', status: 400, code: 'validation_failed', body: json({ amount: 1.5 }) },
    { name: 'amount as a string', status: 400, code: 'validation_failed', body: json({ amount: '10' }) },
    { name: 'huge amount', status: 400, code: 'validation_failed', body: json({ amount: 1e12 }) },
    {
      name: 'amount beyond 2^53',
      status: 400,
      code: 'validation_failed',
      body: '{"amount": 99999999999999999999}',
    },
    { name: 'amount null', status: 400, code: 'validation_failed', body: json({ amount: null }) },
    { name: 'extra field', status: 400, code: 'validation_failed', body: json({ amount: 1, admin: true }) },
    {
      name: 'description too long',
      status: 400,
      code: 'validation_failed',
      body: json({ amount: 1, description: 'x'.repeat(501) }),
    },
    {
      name: 'description not a string',
      status: 400,
      code: 'validation_failed',
      body: json({ amount: 1, description: 42 }),
    },
    {
      name: 'idempotency key with spaces',
      status: 400,
      code: 'validation_failed',
      body: json({ amount: 1, idempotencyKey: 'a b' }),
    },
    {
      name: 'idempotency key too long',
      status: 400,
      code: 'validation_failed',
      body: json({ amount: 1, idempotencyKey: 'k'.repeat(256) }),
    },
    {
      name: 'empty idempotency key',
      status: 400,
      code: 'validation_failed',
      body: json({ amount: 1, idempotencyKey: '' }),
    },
    {
      name: 'header and body keys differ',
      status: 400,
      code: 'idempotency_key_mismatch',
      headers: { 'idempotency-key': 'k1' },
      body: json({ amount: 1, idempotencyKey: 'k2' }),
    },
    { name: 'body is an array', status: 400, code: 'validation_failed', body: json([{ amount: 1 }]) },
    { name: 'malformed JSON', status: 400, code: 'invalid_json', body: '{"amount": 1' },
    { name: 'empty body', status: 400, code: 'validation_failed', body: '' },
    {
      name: 'text/plain body',
      status: 415,
      code: 'unsupported_media_type',
      headers: { 'content-type': 'text/plain' },
      body: 'amount=1',
    },
    {
      name: 'oversized body',
      status: 413,
      code: 'payload_too_large',
      body: json({ amount: 1, description: 'x'.repeat(20_000) }),
    },
    {
      name: 'no API key',
      status: 401,
      code: 'missing_api_key',
      headers: { 'x-api-key': null },
      body: json({ amount: 1 }),
    },
    {
      name: 'wrong API key',
      status: 401,
      code: 'invalid_api_key',
      headers: { 'x-api-key': 'tcsk_nope' },
      body: json({ amount: 1 }),
    },
    {
      name: 'no session token',
      status: 401,
      code: 'missing_session_token',
      headers: { 'x-privy-session-token': null },
      body: json({ amount: 1 }),
    },
    {
      name: 'no privyId',
      status: 401,
      code: 'missing_session_token',
      headers: { 'x-privy-id': null },
      body: json({ amount: 1 }),
    },
    {
      name: 'garbage session token',
      status: 401,
      code: 'invalid_session_token',
      headers: { 'x-privy-session-token': 'not.a.jwt' },
      body: json({ amount: 1 }),
    },
    {
      name: 'malformed Authorization header',
      status: 401,
      code: 'invalid_token',
      headers: { authorization: 'Basic abc' },
      body: json({ amount: 1 }),
    },
    {
      name: 'unknown bearer token',
      status: 401,
      code: 'invalid_token',
      headers: { authorization: 'Bearer tcat_unknown' },
      body: json({ amount: 1 }),
    },
  ];

  it.each(cases().map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const before = await state();
    const headers: Record<string, string> = { ...good };
    for (const [k, v] of Object.entries(c.headers ?? {})) {
      if (v === undefined) continue;
      if (v === null) delete headers[k];
      else headers[k] = v;
    }
    const res = await fetch(`${t.url}/api/v1/points/deduct`, {
      method: 'POST',
      headers,
      body: c.body ?? null,
    });
    expect(res.status).toBe(c.status);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    const body = await res.json();
    expect(body).toMatchObject({ status: c.status, code: c.code });
    expect(typeof body.detail).toBe('string');
    expect(await state()).toEqual(before);
  });

  it.each([
    ['expired', { expiresInSec: -60 }, 'expired'],
    ['for another Privy app', { audience: 'someone-else' }, 'aud'],
    ['from another issuer', { issuer: 'evil.example' }, 'iss'],
  ] as const)('a session token %s is refused', async (_n, opts, words) => {
    const before = await state();
    const token = await t.privyToken(user.privyId, opts);
    const res = await fetch(`${t.url}/api/v1/points/deduct`, {
      method: 'POST',
      headers: { ...good, 'x-privy-session-token': token },
      body: json({ amount: 1 }),
    });
    expect(res.status).toBe(401);
    const body = await res.json();
    expect(body.code).toBe('invalid_session_token');
    expect(body.detail).toContain(words);
    expect(await state()).toEqual(before);
  });

  it('a session token forged with another key is refused', async () => {
    const before = await state();
    const forged = await t.privyToken(user.privyId, { key: otherKey.privateKey });
    const res = await fetch(`${t.url}/api/v1/points/deduct`, {
      method: 'POST',
      headers: { ...good, 'x-privy-session-token': forged },
      body: json({ amount: 1 }),
    });
    expect(res.status).toBe(401);
    expect((await res.json()).code).toBe('invalid_session_token');
    expect(await state()).toEqual(before);
  });

  it("another user's session token cannot act for this privyId", async () => {
    const before = await state();
    const other = await t.user({ points: 5 });
    const res = await fetch(`${t.url}/api/v1/points/deduct`, {
      method: 'POST',
      headers: { ...good, 'x-privy-session-token': await t.privyToken(other.privyId) },
      body: json({ amount: 1 }),
    });
    expect(res.status).toBe(401);
    expect(await state()).toEqual(before);
  });

  it('a valid session for a Privy user with no wallet is 404 user_not_found', async () => {
    const res = await fetch(`${t.url}/api/v1/points/balance`, {
      headers: {
        ...good,
        'x-privy-id': 'did:privy:nobody',
        'x-privy-session-token': await t.privyToken('did:privy:nobody'),
      },
    });
    expect(res.status).toBe(404);
    expect((await res.json()).code).toBe('user_not_found');
  });
});

describe('idempotency', () => {
  it('replays the first response for the same key and parameters, refuses other parameters with 422', async () => {
    const before = await state();
    const send = (body: unknown, extra: Record<string, string> = {}) =>
      fetch(`${t.url}/api/v1/points/deduct`, {
        method: 'POST',
        headers: { ...good, ...extra },
        body: json(body),
      });
    const first = await send({ amount: 3, description: 'pack', idempotencyKey: 'idem-1' });
    expect(first.status).toBe(200);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    const firstBody = await first.json();
    const replay = await send({ amount: 3, description: 'pack' }, { 'idempotency-key': 'idem-1' });
    expect(replay.status).toBe(200);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(await replay.json()).toEqual(firstBody);
    const reused = await send({ amount: 4, description: 'pack', idempotencyKey: 'idem-1' });
    expect(reused.status).toBe(422);
    expect(await reused.json()).toMatchObject({ code: 'idempotency_key_reused', param: 'idempotencyKey' });
    const after = await state();
    expect(after?.balance).toBe((before?.balance ?? 0) - 3);
    expect(Number(after?.n)).toBe(Number(before?.n) + 1);
  });

  it('a failed attempt stores nothing, so the same key works once the user has the points', async () => {
    const u = await t.user({ points: 2 });
    const headers = { ...good, ...(await t.legacyHeaders(apiKey, u.privyId)) };
    const send = () =>
      fetch(`${t.url}/api/v1/points/deduct`, {
        method: 'POST',
        headers,
        body: json({ amount: 5, idempotencyKey: 'retry-me' }),
      });
    expect((await send()).status).toBe(402);
    await t.db.query('update users set balance = balance + 10 where id = $1', [u.id]);
    const ok = await send();
    expect(ok.status).toBe(200);
    expect((await ok.json()).newBalance).toBe(7);
  });

  it('keys are scoped per partner: another partner may use the same key', async () => {
    const other = await t.partner();
    const res = await fetch(`${t.url}/api/v1/points/deduct`, {
      method: 'POST',
      headers: { ...good, 'x-api-key': other.clientSecret },
      body: json({ amount: 3, description: 'pack', idempotencyKey: 'idem-1' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('idempotent-replayed')).toBeNull();
  });
});

describe('unknown routes and methods', () => {
  it('answers problem+json 404 for an unknown path and 405 for a wrong method, never HTML', async () => {
    const a = await fetch(`${t.url}/api/v1/nothing-here`);
    expect(a.status).toBe(404);
    expect(a.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect((await a.json()).code).toBe('not_found');
    const b = await fetch(`${t.url}/api/v1/points/balance`, { method: 'DELETE' });
    expect(b.status).toBe(405);
    expect((await b.json()).code).toBe('method_not_allowed');
  });

  it('refuses an unknown query parameter and a bad cursor with 400', async () => {
    const a = await fetch(`${t.url}/api/v1/points/transactions?foo=1`, { headers: good });
    expect(a.status).toBe(400);
    const b = await fetch(`${t.url}/api/v1/points/transactions?cursor=bm90LWFuLWlk`, { headers: good });
    expect(b.status).toBe(400);
    expect((await b.json()).code).toBe('invalid_cursor');
    const c = await fetch(`${t.url}/api/v1/points/transactions?limit=0`, { headers: good });
    expect(c.status).toBe(400);
  });
});
