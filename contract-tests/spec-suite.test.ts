/**
 * Spec-driven contract suite: for every (operation, documented status) pair of openapi.yaml, a real
 * request through the real server that provokes that status, and a check of the raw response (status,
 * Content-Type, body, declared headers) against the spec with ajv (OpenAPI 3.1 = JSON Schema 2020-12).
 * Prints the coverage of those pairs; fails when a documented pair has no driver, and when any
 * operation answers 501 (every operation is implemented: a 501 is never documented, so never expected).
 */
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { OperationId } from '../src/http/operations.js';
import {
  deref,
  listOperations,
  loadSpec,
  type OpenApiDocument,
  type SpecOperation,
} from '../src/http/spec.js';
import { advisoryKey } from '../src/points/idempotency.js';
import { authorizePath } from '../test/support/browser.js';
import { FAKE_IDS } from '../test/support/fake-ids.js';
import { startTestServer, type TestServer } from '../test/support/harness.js';
import { obtainTokens, type TokenSet } from '../test/support/oauth.js';
import { type Outage, startOutage } from '../test/support/outage.js';
import { schemaErrors } from '../test/support/spec-schemas.js';

// ---------------------------------------------------------------- spec + schema validation
const spec = loadSpec();

/** Everything wrong with `res` as the documented `status` response of `op`; [] when it conforms. */
async function conformance(op: SpecOperation, status: string, res: Response): Promise<string[]> {
  const problems: string[] = [];
  const text = await res.text();
  if (String(res.status) !== status)
    problems.push(`status ${res.status}, expected ${status}: ${text.slice(0, 400)}`);
  const def = deref(spec.paths[op.path][op.method].responses[status]);
  const content = def.content as Record<string, { schema?: OpenApiDocument }> | undefined;
  if (content) {
    const type = (res.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
    const media = content[type];
    if (!media)
      problems.push(`Content-Type ${type || '(none)'} is not one of ${Object.keys(content).join(', ')}`);
    else if (media.schema) {
      let body: unknown = text;
      if (/json/.test(type)) {
        try {
          body = JSON.parse(text);
        } catch {
          problems.push(`body is not JSON: ${text.slice(0, 200)}`);
        }
      }
      const err = schemaErrors(media.schema, body, 'body');
      if (err) problems.push(`body: ${err} in ${text.slice(0, 400)}`);
    }
  } else if (text !== '') problems.push(`documented without a body, got ${text.slice(0, 200)}`);
  for (const [name, h] of Object.entries<OpenApiDocument>(def.headers ?? {})) {
    const header = deref(h);
    const value = res.headers.get(name);
    if (value === null) {
      if (header.required) problems.push(`required header ${name} missing`);
      continue;
    }
    const schema = header.schema ?? {};
    const typed = deref(schema).type === 'integer' && /^-?\d+$/.test(value) ? Number(value) : value;
    const err = schemaErrors(schema, typed);
    if (err) problems.push(`header ${name}: ${err}`);
  }
  return problems;
}

// ---------------------------------------------------------------- servers and seed data
const REDIRECT_URI = 'https://partner.test/callback';

const t: TestServer = await startTestServer({ AUTH_RATE_LIMIT_PER_MINUTE: '100000' });
// A second server whose rate limits (API and credential endpoints) allow one request a minute.
const limited: TestServer = await startTestServer({
  RATE_LIMIT_PER_MINUTE: '1',
  AUTH_RATE_LIMIT_PER_MINUTE: '1',
});
// A third server whose database refuses connections (real PostgreSQL only): every 503 and /readyz's.
const down: TestServer | undefined = t.dbKind === 'postgres' ? await startTestServer() : undefined;
const outage: Outage | undefined = down ? await startOutage(down) : undefined;
afterAll(async () => {
  await t?.stop();
  await limited?.stop();
  await outage?.end();
  await down?.stop();
});
/** Sends `req` to the server whose database is down. */
const whileDown = (req: Req): Promise<Response> => {
  if (!down) throw new Error('a database outage needs the real PostgreSQL server');
  return send({ ...req, server: down });
};

const partner = await t.partner({ name: 'Contract Partner', redirectUris: [REDIRECT_URI] });
const rotating = await t.partner({ name: 'Contract Rotating Partner' });
const rich = await t.user({ points: 10_000_000 });
const poor = await t.user({ points: 5 });
const ghostPrivyId = 'did:privy:contract-no-wallet';
const oauthUser = { email: 'contract-oauth@example.test', password: 'contract-password-1' };
await t.user({ ...oauthUser, points: 1_000_000 });

type User = { id: number; privyId: string };
const legacy = (u: Pick<User, 'privyId'>, apiKey = partner.clientSecret) =>
  t.legacyHeaders(apiKey, u.privyId);
const partnerKey = (apiKey = partner.clientSecret) => ({ 'x-api-key': apiKey });
const JSON_CT = { 'content-type': 'application/json' };

type Req = {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
  server?: TestServer;
};
const send = ({ method, path, headers = {}, body, server = t }: Req): Promise<Response> => {
  const url = new URL(path, server.url);
  if (url.hostname !== '127.0.0.1') throw new Error(`refusing to talk to ${url.host}`);
  return fetch(url, { method, headers, redirect: 'manual', ...(body === undefined ? {} : { body }) });
};
const json = (v: unknown) => JSON.stringify(v);
const ok = async <T>(res: Response): Promise<T> => {
  const text = await res.text();
  if (res.status >= 300) throw new Error(`setup request failed: ${res.status} ${text}`);
  return JSON.parse(text) as T;
};
const uniq = (p: string) => `${p}_${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;

async function deduct(user: User, amount: number): Promise<string> {
  const res = await send({
    method: 'POST',
    path: '/api/v1/points/deduct',
    headers: { ...(await legacy(user)), ...JSON_CT },
    body: json({ amount, description: 'contract setup' }),
  });
  return (await ok<{ transactionId: string }>(res)).transactionId;
}

const tokenCache = new Map<string, Promise<TokenSet>>();
/** A token set from the real authorize -> sign-in -> consent -> token flow (fresh ones for one-shot use). */
function oauthTokens(scope: string, fresh = false): Promise<TokenSet> {
  const run = () => obtainTokens(t, { client: partner, redirectUri: REDIRECT_URI, user: oauthUser, scope });
  if (fresh) return run();
  let p = tokenCache.get(scope);
  if (!p) {
    p = run();
    tokenCache.set(scope, p);
  }
  return p;
}

/** Sends `req` to the rate-limited server until it answers 429 (its limit is one request a minute). */
async function until429(req: Req): Promise<Response> {
  let res: Response | undefined;
  for (let i = 0; i < 4; i++) {
    res = await send({ ...req, server: limited });
    if (res.status === 429) return res;
    await res.arrayBuffer();
  }
  return res as Response;
}

/** Runs `req` while another connection holds the idempotency key's advisory lock: a 409 at once. */
async function whileKeyInFlight(userId: number, key: string, req: Req): Promise<Response> {
  const url = t.services.config.databaseUrl;
  if (!url) throw new Error('409 needs the real PostgreSQL server (PGlite is one session)');
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query('begin');
    await client.query('select pg_advisory_xact_lock($1::bigint)', [
      advisoryKey({ partnerId: partner.id, userId, key }),
    ]);
    return await send(req);
  } finally {
    await client.query('rollback').catch(() => {});
    await client.end();
  }
}

// ---------------------------------------------------------------- drivers
type Driver = () => Promise<Response>;
type Drivers = Partial<Record<OperationId, Record<string, Driver>>>;

/** The statuses every authenticated operation shares, built from one valid request. */
function common(
  kind: 'user' | 'partner',
  valid: () => Promise<Req>,
  opts: { badPath?: string; scope?: string; userNotFound?: boolean } = {},
): Record<string, Driver> {
  const d: Record<string, Driver> = {
    '401': async () => {
      const r = await valid();
      const headers = { ...r.headers };
      delete headers['x-api-key'];
      delete headers['x-privy-session-token'];
      return send({ ...r, headers });
    },
    '429': async () => until429(await valid()),
    '503': async () => whileDown(await valid()),
    '400': async () => {
      const r = await valid();
      if (opts.badPath) return send({ ...r, path: opts.badPath });
      if (r.body !== undefined)
        return send({ ...r, body: json({ ...JSON.parse(r.body), unexpectedField: 1 }) });
      return send({ ...r, path: `${r.path}${r.path.includes('?') ? '&' : '?'}unexpectedParam=1` });
    },
    '413': async () => {
      const r = await valid();
      return send({
        ...r,
        body: json({ ...JSON.parse(r.body ?? '{}'), description: 'x'.repeat(17 * 1024) }),
      });
    },
    '415': async () => {
      const r = await valid();
      return send({ ...r, headers: { ...r.headers, 'content-type': 'text/plain' }, body: 'amount=1' });
    },
  };
  if (kind === 'user') {
    d['404'] = async () => {
      const r = await valid();
      return send({ ...r, headers: { ...r.headers, ...(await legacy({ privyId: ghostPrivyId })) } });
    };
    if (opts.userNotFound === false) delete d['404'];
    d['403'] = async () => {
      // A token granted only a scope this operation does not accept.
      const wrong = opts.scope === 'balance' ? 'deduct' : 'balance';
      const token = await oauthTokens(wrong);
      const r = await valid();
      const headers: Record<string, string> = { ...r.headers, authorization: `Bearer ${token.access_token}` };
      delete headers['x-api-key'];
      delete headers['x-privy-id'];
      delete headers['x-privy-session-token'];
      return send({ ...r, headers });
    };
  }
  return d;
}

const userReq = async (method: string, path: string, body?: unknown, user: User = rich): Promise<Req> => ({
  method,
  path,
  headers: { ...(await legacy(user)), ...(body === undefined ? {} : JSON_CT) },
  ...(body === undefined ? {} : { body: json(body) }),
});
const partnerReq = (method: string, path: string, body?: unknown, apiKey?: string): Req => ({
  method,
  path,
  headers: { ...partnerKey(apiKey), ...(body === undefined ? {} : JSON_CT) },
  ...(body === undefined ? {} : { body: json(body) }),
});

async function newSubscription(): Promise<string> {
  const res = await send(await userReq('POST', '/api/v1/subscriptions', { planName: 'Contract', amount: 1 }));
  return (await ok<{ subscriptionId: string }>(res)).subscriptionId;
}
/**
 * A webhook endpoint of the contract partner (disabled when `enabled` is false). Its host is a
 * reserved name our resolver never sends to DNS, so deliveries to it fail at once, talking to no one.
 */
async function newEndpoint(enabled = true): Promise<string> {
  const res = await send(
    partnerReq('POST', '/api/v1/partner/webhook-endpoints', {
      url: 'https://partner.test/hooks',
      events: ['points.deducted'],
    }),
  );
  const { endpointId } = await ok<{ endpointId: string }>(res);
  if (!enabled)
    await ok(
      await send(partnerReq('PATCH', `/api/v1/partner/webhook-endpoints/${endpointId}`, { enabled: false })),
    );
  return endpointId;
}
/** A queued delivery (a test event) to a fresh endpoint. */
async function newDelivery(): Promise<string> {
  const res = await send(partnerReq('POST', `/api/v1/partner/webhook-endpoints/${await newEndpoint()}/test`));
  return (await ok<{ deliveryId: string }>(res)).deliveryId;
}

const oauthBody = (headers: Record<string, string>, body: Record<string, string>, form = false): Req => ({
  method: 'POST',
  path: '',
  headers: { ...headers, 'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json' },
  body: form ? new URLSearchParams(body).toString() : json(body),
});
const client = () => ({ client_id: partner.clientId, client_secret: partner.clientSecret });
const authorizeQuery = (q: Record<string, string>) =>
  authorizePath({
    client_id: partner.clientId,
    redirect_uri: REDIRECT_URI,
    scope: 'balance',
    state: 'contract',
    ...q,
  });

const drivers: Drivers = {
  getBalance: {
    ...common('user', () => userReq('GET', '/api/v1/points/balance'), { scope: 'balance' }),
    '200': async () => send(await userReq('GET', '/api/v1/points/balance')),
  },
  deductPoints: {
    ...common('user', () => userReq('POST', '/api/v1/points/deduct', { amount: 1 }), { scope: 'deduct' }),
    '200': async () =>
      send(await userReq('POST', '/api/v1/points/deduct', { amount: 3, idempotencyKey: uniq('d') })),
    '402': async () => send(await userReq('POST', '/api/v1/points/deduct', { amount: 10 }, poor as User)),
    '409': async () => {
      const key = uniq('inflight');
      return whileKeyInFlight(
        rich.id,
        key,
        await userReq('POST', '/api/v1/points/deduct', { amount: 1, idempotencyKey: key }),
      );
    },
    '422': async () => {
      const key = uniq('reused');
      await ok(
        await send(await userReq('POST', '/api/v1/points/deduct', { amount: 1, idempotencyKey: key })),
      );
      return send(await userReq('POST', '/api/v1/points/deduct', { amount: 2, idempotencyKey: key }));
    },
  },
  listTransactions: {
    ...common('user', () => userReq('GET', '/api/v1/points/transactions?limit=5'), { scope: 'balance' }),
    '200': async () => send(await userReq('GET', '/api/v1/points/transactions?limit=5')),
  },
  getTransaction: {
    ...common('user', () => userReq('GET', `/api/v1/points/transactions/${FAKE_IDS.transactionId}`), {
      scope: 'balance',
      badPath: '/api/v1/points/transactions/not-an-id',
    }),
    '200': async () => send(await userReq('GET', `/api/v1/points/transactions/${await deduct(rich, 1)}`)),
    '404': async () => send(await userReq('GET', `/api/v1/points/transactions/${FAKE_IDS.transactionId}`)),
  },
  refundTransaction: {
    ...common(
      'user',
      () => userReq('POST', `/api/v1/points/transactions/${FAKE_IDS.transactionId}/refund`, { amount: 1 }),
      {
        scope: 'deduct',
        badPath: '/api/v1/points/transactions/not-an-id/refund',
      },
    ),
    '200': async () =>
      send(
        await userReq('POST', `/api/v1/points/transactions/${await deduct(rich, 5)}/refund`, {
          amount: 2,
          idempotencyKey: uniq('r'),
        }),
      ),
    '404': async () =>
      send(
        await userReq('POST', `/api/v1/points/transactions/${FAKE_IDS.transactionId}/refund`, { amount: 1 }),
      ),
    '409': async () => {
      const key = uniq('inflight');
      const txn = await deduct(rich, 2);
      return whileKeyInFlight(
        rich.id,
        key,
        await userReq('POST', `/api/v1/points/transactions/${txn}/refund`, { idempotencyKey: key }),
      );
    },
    '422': async () =>
      send(
        await userReq('POST', `/api/v1/points/transactions/${await deduct(rich, 2)}/refund`, { amount: 3 }),
      ),
  },
  createSubscription: {
    ...common('user', () => userReq('POST', '/api/v1/subscriptions', { planName: 'Contract', amount: 1 }), {
      scope: 'subscriptions',
    }),
    '201': async () =>
      send(
        await userReq('POST', '/api/v1/subscriptions', {
          planName: 'Contract',
          amount: 1,
          idempotencyKey: uniq('s'),
        }),
      ),
    '402': async () =>
      send(
        await userReq('POST', '/api/v1/subscriptions', { planName: 'Contract', amount: 10 }, poor as User),
      ),
    '409': async () => {
      const key = uniq('inflight');
      return whileKeyInFlight(
        rich.id,
        key,
        await userReq('POST', '/api/v1/subscriptions', { planName: 'C', amount: 1, idempotencyKey: key }),
      );
    },
    '422': async () => {
      const key = uniq('reused');
      await ok(
        await send(
          await userReq('POST', '/api/v1/subscriptions', { planName: 'C', amount: 1, idempotencyKey: key }),
        ),
      );
      return send(
        await userReq('POST', '/api/v1/subscriptions', { planName: 'C', amount: 2, idempotencyKey: key }),
      );
    },
  },
  listSubscriptions: {
    ...common('user', () => userReq('GET', '/api/v1/subscriptions?limit=5'), { scope: 'subscriptions' }),
    '200': async () => send(await userReq('GET', '/api/v1/subscriptions?limit=5')),
  },
  getSubscription: {
    ...common('user', () => userReq('GET', `/api/v1/subscriptions/${FAKE_IDS.subscriptionId}`), {
      scope: 'subscriptions',
      badPath: '/api/v1/subscriptions/not-an-id',
      userNotFound: false,
    }),
    '200': async () => send(await userReq('GET', `/api/v1/subscriptions/${await newSubscription()}`)),
    '404': async () => send(await userReq('GET', `/api/v1/subscriptions/${FAKE_IDS.subscriptionId}`)),
  },
  cancelSubscription: {
    ...common(
      'user',
      () =>
        userReq('POST', `/api/v1/subscriptions/${FAKE_IDS.subscriptionId}/cancel`, { atPeriodEnd: false }),
      {
        scope: 'subscriptions',
        badPath: '/api/v1/subscriptions/not-an-id/cancel',
        userNotFound: false,
      },
    ),
    '200': async () =>
      send(
        await userReq('POST', `/api/v1/subscriptions/${await newSubscription()}/cancel`, {
          atPeriodEnd: true,
        }),
      ),
    '404': async () => send(await userReq('POST', `/api/v1/subscriptions/${FAKE_IDS.subscriptionId}/cancel`)),
    '409': async () => {
      const id = await newSubscription();
      await ok(await send(await userReq('POST', `/api/v1/subscriptions/${id}/cancel`)));
      return send(await userReq('POST', `/api/v1/subscriptions/${id}/cancel`));
    },
  },
  getPartner: {
    ...common('partner', async () => partnerReq('GET', '/api/v1/partner')),
    '200': async () => send(partnerReq('GET', '/api/v1/partner')),
  },
  rotateClientSecret: {
    ...common('partner', async () =>
      partnerReq('POST', '/api/v1/partner/client-secret/rotate', undefined, rotating.clientSecret),
    ),
    '200': async () =>
      send(partnerReq('POST', '/api/v1/partner/client-secret/rotate', undefined, rotating.clientSecret)),
  },
  listWebhookEndpoints: {
    ...common('partner', async () => partnerReq('GET', '/api/v1/partner/webhook-endpoints')),
    '200': async () => send(partnerReq('GET', '/api/v1/partner/webhook-endpoints')),
  },
  createWebhookEndpoint: {
    ...common('partner', async () =>
      partnerReq('POST', '/api/v1/partner/webhook-endpoints', {
        url: 'https://partner.test/hooks',
        events: ['points.deducted'],
      }),
    ),
    '201': async () =>
      send(
        partnerReq('POST', '/api/v1/partner/webhook-endpoints', {
          url: 'https://partner.test/hooks',
          events: ['points.deducted'],
        }),
      ),
    '422': async () =>
      send(
        partnerReq('POST', '/api/v1/partner/webhook-endpoints', {
          url: 'http://partner.test/plain-http',
          events: ['points.deducted'],
        }),
      ),
  },
  getWebhookEndpoint: {
    ...common(
      'partner',
      async () => partnerReq('GET', `/api/v1/partner/webhook-endpoints/${FAKE_IDS.endpointId}`),
      {
        badPath: '/api/v1/partner/webhook-endpoints/not-an-id',
      },
    ),
    '200': async () => send(partnerReq('GET', `/api/v1/partner/webhook-endpoints/${await newEndpoint()}`)),
    '404': async () => send(partnerReq('GET', `/api/v1/partner/webhook-endpoints/${FAKE_IDS.endpointId}`)),
  },
  updateWebhookEndpoint: {
    ...common(
      'partner',
      async () =>
        partnerReq('PATCH', `/api/v1/partner/webhook-endpoints/${FAKE_IDS.endpointId}`, { enabled: true }),
      {
        badPath: '/api/v1/partner/webhook-endpoints/not-an-id',
      },
    ),
    '200': async () =>
      send(
        partnerReq('PATCH', `/api/v1/partner/webhook-endpoints/${await newEndpoint()}`, { enabled: false }),
      ),
    '404': async () =>
      send(
        partnerReq('PATCH', `/api/v1/partner/webhook-endpoints/${FAKE_IDS.endpointId}`, { enabled: true }),
      ),
    '422': async () =>
      send(
        partnerReq('PATCH', `/api/v1/partner/webhook-endpoints/${await newEndpoint()}`, {
          url: 'https://169.254.169.254/latest/meta-data',
        }),
      ),
  },
  deleteWebhookEndpoint: {
    ...common(
      'partner',
      async () => partnerReq('DELETE', `/api/v1/partner/webhook-endpoints/${FAKE_IDS.endpointId}`),
      {
        badPath: '/api/v1/partner/webhook-endpoints/not-an-id',
      },
    ),
    '204': async () => send(partnerReq('DELETE', `/api/v1/partner/webhook-endpoints/${await newEndpoint()}`)),
    '404': async () => send(partnerReq('DELETE', `/api/v1/partner/webhook-endpoints/${FAKE_IDS.endpointId}`)),
  },
  rotateWebhookSecret: {
    ...common(
      'partner',
      async () =>
        partnerReq('POST', `/api/v1/partner/webhook-endpoints/${FAKE_IDS.endpointId}/rotate-secret`),
      { badPath: '/api/v1/partner/webhook-endpoints/not-an-id/rotate-secret' },
    ),
    '200': async () =>
      send(partnerReq('POST', `/api/v1/partner/webhook-endpoints/${await newEndpoint()}/rotate-secret`)),
    '404': async () =>
      send(partnerReq('POST', `/api/v1/partner/webhook-endpoints/${FAKE_IDS.endpointId}/rotate-secret`)),
  },
  sendTestWebhook: {
    ...common(
      'partner',
      async () => partnerReq('POST', `/api/v1/partner/webhook-endpoints/${FAKE_IDS.endpointId}/test`),
      {
        badPath: '/api/v1/partner/webhook-endpoints/not-an-id/test',
      },
    ),
    '202': async () =>
      send(partnerReq('POST', `/api/v1/partner/webhook-endpoints/${await newEndpoint()}/test`)),
    '404': async () =>
      send(partnerReq('POST', `/api/v1/partner/webhook-endpoints/${FAKE_IDS.endpointId}/test`)),
    '409': async () =>
      send(partnerReq('POST', `/api/v1/partner/webhook-endpoints/${await newEndpoint(false)}/test`)),
  },
  recoverWebhookDeliveries: {
    ...common(
      'partner',
      async () =>
        partnerReq('POST', `/api/v1/partner/webhook-endpoints/${FAKE_IDS.endpointId}/recover`, {
          since: '2026-01-01T00:00:00.000Z',
        }),
      { badPath: '/api/v1/partner/webhook-endpoints/not-an-id/recover' },
    ),
    '202': async () =>
      send(
        partnerReq('POST', `/api/v1/partner/webhook-endpoints/${await newEndpoint()}/recover`, {
          since: new Date(t.clock.now().getTime() - 3_600_000).toISOString(),
        }),
      ),
    '404': async () =>
      send(
        partnerReq('POST', `/api/v1/partner/webhook-endpoints/${FAKE_IDS.endpointId}/recover`, {
          since: '2026-01-01T00:00:00.000Z',
        }),
      ),
    '409': async () =>
      send(
        partnerReq('POST', `/api/v1/partner/webhook-endpoints/${await newEndpoint(false)}/recover`, {
          since: '2026-01-01T00:00:00.000Z',
        }),
      ),
    '422': async () =>
      send(
        partnerReq('POST', `/api/v1/partner/webhook-endpoints/${await newEndpoint()}/recover`, {
          since: new Date(t.clock.now().getTime() + 3_600_000).toISOString(),
        }),
      ),
  },
  listWebhookDeliveries: {
    ...common('partner', async () => partnerReq('GET', '/api/v1/partner/webhook-deliveries?limit=5')),
    '200': async () => {
      await newDelivery();
      return send(partnerReq('GET', '/api/v1/partner/webhook-deliveries?limit=5'));
    },
  },
  getWebhookDelivery: {
    ...common(
      'partner',
      async () => partnerReq('GET', `/api/v1/partner/webhook-deliveries/${FAKE_IDS.deliveryId}`),
      {
        badPath: '/api/v1/partner/webhook-deliveries/not-an-id',
      },
    ),
    '200': async () => {
      const id = await newDelivery();
      await t.drainJobs(); // one attempt (refused: a reserved name is never resolved), so the log has one
      return send(partnerReq('GET', `/api/v1/partner/webhook-deliveries/${id}`));
    },
    '404': async () => send(partnerReq('GET', `/api/v1/partner/webhook-deliveries/${FAKE_IDS.deliveryId}`)),
  },
  resendWebhookDelivery: {
    ...common(
      'partner',
      async () => partnerReq('POST', `/api/v1/partner/webhook-deliveries/${FAKE_IDS.deliveryId}/resend`),
      {
        badPath: '/api/v1/partner/webhook-deliveries/not-an-id/resend',
      },
    ),
    '202': async () =>
      send(partnerReq('POST', `/api/v1/partner/webhook-deliveries/${await newDelivery()}/resend`)),
    '404': async () =>
      send(partnerReq('POST', `/api/v1/partner/webhook-deliveries/${FAKE_IDS.deliveryId}/resend`)),
    '409': async () => {
      const endpointId = await newEndpoint();
      const test = await ok<{ deliveryId: string }>(
        await send(partnerReq('POST', `/api/v1/partner/webhook-endpoints/${endpointId}/test`)),
      );
      await ok(
        await send(
          partnerReq('PATCH', `/api/v1/partner/webhook-endpoints/${endpointId}`, { enabled: false }),
        ),
      );
      return send(partnerReq('POST', `/api/v1/partner/webhook-deliveries/${test.deliveryId}/resend`));
    },
  },
  authorize: {
    '200': () => send({ method: 'GET', path: authorizeQuery({}) }),
    '302': () => send({ method: 'GET', path: authorizeQuery({ scope: 'no_such_scope' }) }),
    '400': () => send({ method: 'GET', path: authorizeQuery({ client_id: 'tc_live_unknown' }) }),
    '429': () => until429({ method: 'GET', path: authorizeQuery({}) }),
    '503': () => whileDown({ method: 'GET', path: authorizeQuery({}) }),
  },
  createToken: {
    '200': async () => {
      const tokens = await oauthTokens('deduct balance', true);
      return send({
        ...oauthBody(
          {},
          { grant_type: 'refresh_token', refresh_token: tokens.refresh_token, ...client() },
          true,
        ),
        path: '/api/oauth2/token',
      });
    },
    '400': () =>
      send({
        ...oauthBody(
          {},
          {
            grant_type: 'authorization_code',
            code: 'tcac_not_a_real_code',
            redirect_uri: REDIRECT_URI,
            ...client(),
          },
        ),
        path: '/api/oauth2/token',
      }),
    '401': () =>
      send({
        ...oauthBody(
          { authorization: `Basic ${Buffer.from(`${partner.clientId}:tcsk_wrong`).toString('base64')}` },
          { grant_type: 'refresh_token', refresh_token: 'tcrt_x' },
        ),
        path: '/api/oauth2/token',
      }),
    '413': () =>
      send({
        ...oauthBody({}, { grant_type: 'refresh_token', refresh_token: 'x'.repeat(17 * 1024), ...client() }),
        path: '/api/oauth2/token',
      }),
    '415': () =>
      send({
        method: 'POST',
        path: '/api/oauth2/token',
        headers: { 'content-type': 'text/plain' },
        body: 'grant_type=refresh_token',
      }),
    '429': () =>
      until429({
        ...oauthBody({}, { grant_type: 'refresh_token', refresh_token: 'tcrt_x', ...client() }),
        path: '/api/oauth2/token',
      }),
    '503': () =>
      whileDown({
        ...oauthBody({}, { grant_type: 'refresh_token', refresh_token: 'tcrt_x', ...client() }),
        path: '/api/oauth2/token',
      }),
  },
  revokeToken: {
    '200': async () => {
      const tokens = await oauthTokens('balance', true);
      return send({
        ...oauthBody({}, { token: tokens.access_token, ...client() }),
        path: '/api/oauth2/revoke',
      });
    },
    '400': () => send({ ...oauthBody({}, { ...client() }), path: '/api/oauth2/revoke' }),
    '401': () =>
      send({
        ...oauthBody({}, { token: 'tcat_x', client_id: partner.clientId, client_secret: 'tcsk_wrong' }),
        path: '/api/oauth2/revoke',
      }),
    '413': () =>
      send({ ...oauthBody({}, { token: 'x'.repeat(17 * 1024), ...client() }), path: '/api/oauth2/revoke' }),
    '415': () =>
      send({
        method: 'POST',
        path: '/api/oauth2/revoke',
        headers: { 'content-type': 'text/plain' },
        body: 'token=x',
      }),
    '429': () => until429({ ...oauthBody({}, { token: 'tcat_x', ...client() }), path: '/api/oauth2/revoke' }),
    '503': () =>
      whileDown({ ...oauthBody({}, { token: 'tcat_x', ...client() }), path: '/api/oauth2/revoke' }),
  },
  introspectToken: {
    '200': async () => {
      const tokens = await oauthTokens('balance', true);
      return send({
        ...oauthBody({}, { token: tokens.access_token, ...client() }, true),
        path: '/api/oauth2/introspect',
      });
    },
    '400': () => send({ ...oauthBody({}, { ...client() }, true), path: '/api/oauth2/introspect' }),
    '401': () =>
      send({
        ...oauthBody({}, { token: 'tcat_x', client_id: partner.clientId, client_secret: 'tcsk_wrong' }, true),
        path: '/api/oauth2/introspect',
      }),
    '413': () =>
      send({
        ...oauthBody({}, { token: 'x'.repeat(17 * 1024), ...client() }, true),
        path: '/api/oauth2/introspect',
      }),
    '415': () =>
      send({
        method: 'POST',
        path: '/api/oauth2/introspect',
        headers: { 'content-type': 'text/plain' },
        body: 'token=x',
      }),
    '429': () =>
      until429({ ...oauthBody({}, { token: 'tcat_x', ...client() }, true), path: '/api/oauth2/introspect' }),
    '503': () =>
      whileDown({ ...oauthBody({}, { token: 'tcat_x', ...client() }, true), path: '/api/oauth2/introspect' }),
  },
  getTokenInfo: {
    '200': async () => {
      const tokens = await oauthTokens('deduct balance');
      return send({
        method: 'GET',
        path: '/api/oauth2/token/info',
        headers: { authorization: `Bearer ${tokens.access_token}` },
      });
    },
    '401': () =>
      send({
        method: 'GET',
        path: '/api/oauth2/token/info',
        headers: { authorization: 'Bearer tcat_not_a_real_token' },
      }),
    '429': () =>
      until429({
        method: 'GET',
        path: '/api/oauth2/token/info',
        headers: { authorization: 'Bearer tcat_x' },
      }),
    '503': () =>
      whileDown({
        method: 'GET',
        path: '/api/oauth2/token/info',
        headers: { authorization: 'Bearer tcat_x' },
      }),
  },
  getAuthorizationServerMetadata: {
    '200': () => send({ method: 'GET', path: '/.well-known/oauth-authorization-server' }),
  },
  getHealth: {
    '200': () => send({ method: 'GET', path: '/healthz' }),
  },
  getReadiness: {
    '200': () => send({ method: 'GET', path: '/readyz' }),
    '503': () => whileDown({ method: 'GET', path: '/readyz' }),
  },
};

/** Pairs no request can provoke on purpose, with the reason. Keep this tiny. */
const notDrivable: Partial<Record<OperationId, Record<string, string>>> = {};
// An idempotency key in flight is held by a second connection's transaction; the embedded database
// is one session, so there the 409s cannot be provoked (CI runs them on the real server).
if (t.dbKind === 'embedded') {
  const inFlight =
    'needs the real PostgreSQL server: a second connection holds the key (PGlite is one session)';
  for (const op of ['deductPoints', 'refundTransaction', 'createSubscription'] as const)
    notDrivable[op] = { '409': inFlight };
  console.warn(`[tests] contract: the idempotency-key-in-flight 409s are SKIPPED: ${inFlight}.`);
  // Refusing connections to one database is an ALTER DATABASE on the real server.
  const outageOnly = 'needs the real PostgreSQL server: the 503s refuse connections to a database';
  for (const op of listOperations(spec))
    if (op.responses.includes('503'))
      notDrivable[op.operationId] = { ...notDrivable[op.operationId], '503': outageOnly };
  console.warn(`[tests] contract: the database-outage 503s are SKIPPED: ${outageOnly}.`);
}

// ---------------------------------------------------------------- the table, run
const operations = listOperations(spec);
type Outcome = 'pass' | 'fail' | 'notDrivable' | 'missing';
const results = new Map<string, { op: OperationId; status: string; outcome: Outcome; note?: string }>();
const record = (op: OperationId, status: string, outcome: Outcome, note?: string) =>
  results.set(`${op} ${status}`, { op, status, outcome, ...(note ? { note } : {}) });

describe('every documented (operation, status) pair, provoked for real and checked against openapi.yaml', () => {
  for (const op of operations) {
    describe(op.operationId, () => {
      for (const status of op.responses) {
        const reason = notDrivable[op.operationId]?.[status];
        const driver = drivers[op.operationId]?.[status];
        if (reason) {
          record(op.operationId, status, 'notDrivable', reason);
          continue;
        }
        if (!driver) {
          record(op.operationId, status, 'missing', 'no driver');
          continue;
        }
        it(`${op.method.toUpperCase()} ${op.path} -> ${status}`, async () => {
          let res: Response;
          try {
            res = await driver();
          } catch (err) {
            record(op.operationId, status, 'fail', (err as Error).message);
            throw err;
          }
          const problems = await conformance(op, status, res);
          record(op.operationId, status, problems.length ? 'fail' : 'pass', problems.join('; '));
          expect(problems, `${op.operationId} ${status}`).toEqual([]);
        });
      }
    });
  }

  it('documents no 501: every operation is implemented', () => {
    const stubs = operations.filter((op) => op.responses.includes('501')).map((op) => op.operationId);
    expect(stubs, `operations documenting 501: ${stubs.join(', ')}`).toEqual([]);
  });

  it('has a driver for every documented pair', () => {
    const missing = [...results.values()]
      .filter((r) => r.outcome === 'missing')
      .map((r) => `${r.op} ${r.status}`);
    expect(missing, `pairs without a driver: ${missing.join(', ')}`).toEqual([]);
  });
});

afterAll(() => {
  const rows = [...results.values()];
  const documented = operations.reduce((n, op) => n + op.responses.length, 0);
  const covered = rows.filter((r) => r.outcome === 'pass').length;
  const lines = ['', 'contract coverage per operation (passed / documented):'];
  for (const op of operations) {
    const mine = rows.filter((r) => r.op === op.operationId);
    const passed = mine.filter((r) => r.outcome === 'pass').map((r) => r.status);
    const other = mine.filter((r) => r.outcome !== 'pass').map((r) => `${r.status}:${r.outcome}`);
    lines.push(
      `  ${op.operationId.padEnd(32)} ${String(passed.length).padStart(2)}/${String(op.responses.length).padEnd(2)} ${other.length ? `  not covered: ${other.join(' ')}` : ''}`,
    );
  }
  for (const kind of ['notDrivable', 'missing', 'fail'] as Outcome[]) {
    const list = rows.filter((r) => r.outcome === kind);
    if (list.length === 0) continue;
    lines.push(`${kind} (${list.length}):`);
    const byNote = new Map<string, string[]>();
    for (const r of list)
      byNote.set(r.note ?? '', [...(byNote.get(r.note ?? '') ?? []), `${r.op} ${r.status}`]);
    for (const [note, pairs] of byNote)
      lines.push(`  - ${pairs.join(', ')}${note ? `: ${note.slice(0, 300)}` : ''}`);
  }
  lines.push(
    `contract coverage: ${covered}/${documented} pairs (${((100 * covered) / documented).toFixed(1)} %)`,
  );
  console.log(lines.join('\n'));
});
