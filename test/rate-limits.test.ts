import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from './support/harness.js';

// Limits key on a verified identity only after verifying it; before that, and for every failed
// authentication, on the client address (and the client_id for failed client authentication).
// The server trusts the loopback proxy here, so X-Forwarded-For stands in for distinct addresses.

let t: TestServer;
let addr = 0;
/** A client address no earlier test has used. */
const freshAddress = () => `203.0.113.${++addr}`;

beforeAll(async () => {
  t = await startTestServer({
    // Requests of one identity (or address on public endpoints) per minute; failures have a lower budget.
    RATE_LIMIT_PER_MINUTE: '8',
    AUTH_RATE_LIMIT_PER_MINUTE: '5',
    TRUST_PROXY: 'loopback',
  });
});
afterAll(() => t?.stop());

const junk = () => randomBytes(24).toString('base64url');

async function balance(from: string, headers: Record<string, string>) {
  const res = await fetch(`${t.url}/api/v1/points/balance`, {
    headers: { 'X-Forwarded-For': from, ...headers },
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() };
}

async function oauthPost(path: string, from: string, body: Record<string, string>) {
  const res = await fetch(`${t.url}${path}`, {
    method: 'POST',
    headers: { 'X-Forwarded-For': from, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(body).toString(),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() };
}

async function legacyHeaders(apiKey: string) {
  const user = await t.user({ points: 10 });
  return t.legacyHeaders(apiKey, user.privyId);
}

describe('rate limits on the points API', () => {
  it('made-up API keys get no fresh budget: after 5 failures the address gets 429 with Retry-After', async () => {
    const from = freshAddress();
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof balance>> | undefined;
    for (let i = 0; i < 12; i++) {
      last = await balance(from, { 'X-API-Key': `tcsk_${junk()}`, 'X-Privy-Id': 'did:privy:x' });
      statuses.push(last.status);
    }
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429, 429, 429, 429, 429, 429]);
    expect(Number(last?.retryAfter)).toBeGreaterThan(0);
    expect(last?.body).toMatchObject({ status: 429, code: 'rate_limited' });
  });

  it('other spellings of Bearer and made-up tokens count as failures of the same address', async () => {
    const from = freshAddress();
    const spellings = ['Bearer', 'bearer', 'BEARER', 'Bearer ', 'bEaReR'];
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await balance(from, { Authorization: `${spellings[i % spellings.length]} tcat_${junk()}` });
      statuses.push(res.status);
    }
    expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(statuses.slice(5)).toEqual(Array(7).fill(429));
  });

  it('a blocked address is refused even with valid credentials; other addresses are not affected', async () => {
    const partner = await t.partner();
    const blocked = freshAddress();
    for (let i = 0; i < 5; i++) await balance(blocked, { 'X-API-Key': `tcsk_${junk()}` });
    expect((await balance(blocked, await legacyHeaders(partner.clientSecret))).status).toBe(429);
    expect((await balance(freshAddress(), await legacyHeaders(partner.clientSecret))).status).toBe(200);
  });

  it('a verified identity has its own budget, whatever address it calls from', async () => {
    const partner = await t.partner();
    const headers = await legacyHeaders(partner.clientSecret);
    const statuses: number[] = [];
    for (let i = 0; i < 10; i++) statuses.push((await balance(freshAddress(), headers)).status);
    expect(statuses).toEqual([...Array(8).fill(200), 429, 429]);
    // Another user of the same partner is another identity.
    expect((await balance(freshAddress(), await legacyHeaders(partner.clientSecret))).status).toBe(200);
  });

  it('the budget comes back when the window has passed (injected clock)', async () => {
    const from = freshAddress();
    for (let i = 0; i < 6; i++) await balance(from, { 'X-API-Key': `tcsk_${junk()}` });
    expect((await balance(from, { 'X-API-Key': `tcsk_${junk()}` })).status).toBe(429);
    t.clock.advance(61_000);
    expect((await balance(from, { 'X-API-Key': `tcsk_${junk()}` })).status).toBe(401);
  });
});

describe('rate limits on client authentication (token, revoke and introspection endpoints)', () => {
  for (const path of ['/api/oauth2/token', '/api/oauth2/revoke', '/api/oauth2/introspect']) {
    it(`${path}: 40 wrong client secrets from one address get 429 slow_down after 5`, async () => {
      const partner = await t.partner();
      const from = freshAddress();
      const statuses: number[] = [];
      let last: Awaited<ReturnType<typeof oauthPost>> | undefined;
      for (let i = 0; i < 40; i++) {
        // A different client_id each time: the address alone must stop it.
        last = await oauthPost(path, from, {
          grant_type: 'refresh_token',
          refresh_token: `tcrt_${junk()}`,
          token: `tcat_${junk()}`,
          client_id: i % 2 ? partner.clientId : `tc_live_${junk()}`,
          client_secret: `tcsk_${junk()}`,
        });
        statuses.push(last.status);
      }
      expect(statuses.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
      expect(statuses.slice(5)).toEqual(Array(35).fill(429));
      expect(last?.body).toMatchObject({ error: 'slow_down' });
      expect(Number(last?.retryAfter)).toBeGreaterThan(0);
    });
  }

  it('wrong secrets for one client_id from many addresses lock that client_id, not others, and never its owner', async () => {
    const target = await t.partner();
    const other = await t.partner();
    const guess = (clientId: string) =>
      oauthPost('/api/oauth2/revoke', freshAddress(), {
        token: `tcat_${junk()}`,
        client_id: clientId,
        client_secret: `tcsk_${junk()}`,
      });
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await guess(target.clientId)).status);
    expect(statuses).toEqual([401, 401, 401, 401, 401, 429, 429, 429]);
    expect((await guess(other.clientId)).status).toBe(401);
    // Failing on purpose with a public client_id must not lock its owner out: the right secret works.
    const owner = await oauthPost('/api/oauth2/revoke', freshAddress(), {
      token: `tcat_${junk()}`,
      client_id: target.clientId,
      client_secret: target.clientSecret,
    });
    expect(owner.status).toBe(200);
  });
});

describe('health probes', () => {
  it('are never rate limited: a busy orchestrator keeps getting 200', async () => {
    const from = freshAddress();
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await fetch(`${t.url}/healthz`, { headers: { 'X-Forwarded-For': from } });
      statuses.push(res.status);
    }
    expect(statuses).toEqual(Array(12).fill(200));
    // A public endpoint from the same address still has a budget.
    const metadata: number[] = [];
    for (let i = 0; i < 10; i++) {
      const res = await fetch(`${t.url}/.well-known/oauth-authorization-server`, {
        headers: { 'X-Forwarded-For': from },
      });
      metadata.push(res.status);
    }
    expect(metadata).toEqual([...Array(8).fill(200), 429, 429]);
  });
});
