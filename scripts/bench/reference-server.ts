/**
 * The reference for `npm run bench`: what a competent, naive node:http + pg implementation of the
 * same API does for the same requests, on the same database and tables.
 *
 * - Bearer: the token looked up by its SHA-256 hash (one query, joined with the user to check the
 *   wallet is enabled); legacy: the partner by API key hash, the Privy ES256 session verified with
 *   jose, the user by Privy id.
 * - Balance: one select. Deduct: one transaction of an idempotency lookup, a conditional
 *   `UPDATE ... WHERE balance >= $n`, a ledger insert and an idempotency insert; with a webhook
 *   endpoint, the event and its delivery rows in that transaction too, then after the commit a
 *   signed (Standard Webhooks) POST to the receiver and one statement recording the outcome.
 * - Token info: one select. Refresh: client authentication, then one transaction that locks the
 *   pair, marks it rotated and inserts the new pair.
 * No framework, no request validation beyond what the handlers need, no rate limits.
 *
 * Env: DATABASE_URL, PRIVY_APP_ID, PRIVY_VERIFICATION_KEY, BENCH_WEBHOOK_SECRETS (JSON: endpoint
 * public id -> whsec_ secret; a real service would decrypt them from the endpoint row). Prints
 * `reference listening on <url>` once ready; exits when stdin closes.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import { importSPKI, jwtVerify } from 'jose';
import pg from 'pg';

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 20 });
const privyKey = process.env.PRIVY_VERIFICATION_KEY
  ? await importSPKI(process.env.PRIVY_VERIFICATION_KEY, 'ES256')
  : undefined;
const privyAppId = process.env.PRIVY_APP_ID ?? '';
const webhookSecrets = JSON.parse(process.env.BENCH_WEBHOOK_SECRETS ?? '{}') as Record<string, string>;
const webhookAgent = new http.Agent({ keepAlive: true, maxSockets: 50 });

const ACCESS_TTL_S = 30 * 24 * 3600;
const REFRESH_TTL_S = 90 * 24 * 3600;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
  ) {
    super(code);
  }
}

type User = { userId: number; partnerId: number; scopes: string[] };

async function authenticate(req: http.IncomingMessage, scope: string): Promise<User> {
  const authz = req.headers.authorization;
  let user: User;
  if (authz?.startsWith('Bearer ')) {
    const { rows } = await pool.query(
      `select t.user_id, t.partner_id, t.scope from oauth_tokens t join users u on u.id = t.user_id
       where t.access_hash = $1 and t.revoked_at is null and t.rotated_at is null
         and t.access_expires_at > now() and u.disabled_at is null`,
      [sha256(authz.slice(7))],
    );
    const row = rows[0];
    if (!row) throw new HttpError(401, 'invalid_token');
    user = { userId: Number(row.user_id), partnerId: row.partner_id, scopes: row.scope.split(' ') };
  } else {
    const apiKey = header(req, 'x-api-key');
    const privyId = header(req, 'x-privy-id');
    const session = header(req, 'x-privy-session-token');
    if (!apiKey || !privyId || !session || !privyKey) throw new HttpError(401, 'missing_credentials');
    const partner = (
      await pool.query('select id, allowed_scopes from partners where client_secret_hash = $1', [
        sha256(apiKey),
      ])
    ).rows[0];
    if (!partner) throw new HttpError(401, 'invalid_api_key');
    try {
      const { payload } = await jwtVerify(session, privyKey, {
        algorithms: ['ES256'],
        issuer: 'privy.io',
        audience: privyAppId,
      });
      if (payload.sub !== privyId) throw new Error('subject');
    } catch {
      throw new HttpError(401, 'invalid_session_token');
    }
    const found = (
      await pool.query('select id from users where privy_id = $1 and disabled_at is null', [privyId])
    ).rows[0];
    if (!found) throw new HttpError(404, 'user_not_found');
    user = { userId: Number(found.id), partnerId: partner.id, scopes: partner.allowed_scopes };
  }
  if (!user.scopes.includes(scope)) throw new HttpError(403, 'insufficient_scope');
  return user;
}

function header(req: http.IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return typeof v === 'string' ? v : undefined;
}

async function balance(req: http.IncomingMessage) {
  const u = await authenticate(req, 'balance');
  const { rows } = await pool.query('select balance from users where id = $1', [u.userId]);
  if (!rows[0]) throw new HttpError(404, 'user_not_found');
  return { body: { success: true, userId: u.userId, balance: rows[0].balance } };
}

const newId = (prefix: string) => `${prefix}_${Date.now().toString(36)}${randomBytes(10).toString('hex')}`;

type Delivery = { id: string; url: string; endpoint: string };

async function deduct(req: http.IncomingMessage, raw: string) {
  const u = await authenticate(req, 'deduct');
  const input = JSON.parse(raw) as { amount?: unknown; description?: unknown; idempotencyKey?: unknown };
  const amount = input.amount;
  if (typeof amount !== 'number' || !Number.isInteger(amount) || amount < 1 || amount > 100_000_000) {
    throw new HttpError(400, 'invalid_amount');
  }
  const description = typeof input.description === 'string' ? input.description : null;
  const key = typeof input.idempotencyKey === 'string' ? input.idempotencyKey : undefined;
  const requestHash = sha256(JSON.stringify(['deduct', amount, description]));
  const client = await pool.connect();
  let body: Record<string, unknown>;
  let deliveries: Delivery[] = [];
  let event: { id: string; body: string } | undefined;
  try {
    await client.query('begin');
    if (key !== undefined) {
      const prior = (
        await client.query(
          'select request_hash, response_body from idempotency_keys where user_id = $1 and partner_id = $2 and key = $3',
          [u.userId, u.partnerId, key],
        )
      ).rows[0];
      if (prior) {
        await client.query('commit');
        if (prior.request_hash !== requestHash) throw new HttpError(422, 'idempotency_key_reused');
        return { body: prior.response_body, headers: { 'idempotent-replayed': 'true' } };
      }
    }
    const updated = (
      await client.query(
        'update users set balance = balance - $2 where id = $1 and balance >= $2 returning balance',
        [u.userId, amount],
      )
    ).rows[0];
    if (!updated) throw new HttpError(402, 'insufficient_points');
    const transactionId = newId('txn');
    await client.query(
      `insert into ledger_entries (public_id, user_id, partner_id, type, amount, balance_after, description)
       values ($1, $2, $3, 'deduct', $4, $5, $6)`,
      [transactionId, u.userId, u.partnerId, -amount, updated.balance, description],
    );
    body = {
      success: true,
      creditsDeducted: amount,
      newBalance: updated.balance,
      transactionId,
      webhookDelivered: false,
    };
    if (Object.keys(webhookSecrets).length > 0) {
      const payload = JSON.stringify({
        event: 'points.deducted',
        timestamp: new Date().toISOString(),
        transactionId,
        userId: u.userId,
        amount,
        newBalance: updated.balance,
        description,
      });
      event = { id: newId('evt'), body: payload };
      // The event and a delivery per subscribed endpoint, in the deduct's transaction (the outbox).
      deliveries = (
        await client.query(
          `with ev as (
             insert into webhook_events (public_id, partner_id, type, payload, body)
             values ($1, $2, 'points.deducted', $3::jsonb, $3) returning id
           )
           insert into webhook_deliveries (public_id, event_id, endpoint_id, status)
           select 'wd_' || md5(random()::text), ev.id, e.id, 'pending'
           from webhook_endpoints e, ev
           where e.partner_id = $2 and e.enabled and e.deleted_at is null and 'points.deducted' = any(e.events)
           returning id::text, (select url from webhook_endpoints where id = endpoint_id) as url,
             (select public_id from webhook_endpoints where id = endpoint_id) as endpoint`,
          [event.id, u.partnerId, payload],
        )
      ).rows;
    }
    if (key !== undefined) {
      await client.query(
        `insert into idempotency_keys (user_id, partner_id, key, operation, request_hash, response_status, response_body)
         values ($1, $2, $3, 'deduct', $4, 200, $5)`,
        [u.userId, u.partnerId, key, requestHash, JSON.stringify(body)],
      );
    }
    await client.query('commit');
  } catch (err) {
    await client.query('rollback').catch(() => {});
    // A concurrent request with the same key committed first.
    if ((err as { code?: string }).code === '23505') throw new HttpError(409, 'idempotency_key_in_flight');
    throw err;
  } finally {
    client.release();
  }
  if (event && deliveries.length > 0) {
    const outcomes = await Promise.all(deliveries.map((d) => deliver(d, event)));
    body.webhookDelivered = outcomes.every((ok) => ok);
    if (body.webhookDelivered && key !== undefined) {
      await pool.query(
        'update idempotency_keys set response_body = $4 where user_id = $1 and partner_id = $2 and key = $3',
        [u.userId, u.partnerId, key, JSON.stringify(body)],
      );
    }
  }
  return { body };
}

/** One signed attempt (Standard Webhooks), then its outcome and log row in one statement. */
async function deliver(d: Delivery, event: { id: string; body: string }): Promise<boolean> {
  const secret = webhookSecrets[d.endpoint];
  if (!secret) return false;
  const at = new Date();
  const ts = Math.floor(at.getTime() / 1000);
  const signature = createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64'))
    .update(`${event.id}.${ts}.${event.body}`)
    .digest('base64');
  const started = Date.now();
  const status = await new Promise<number | null>((resolve) => {
    const r = http.request(
      d.url,
      {
        method: 'POST',
        agent: webhookAgent,
        timeout: 2000,
        headers: {
          'content-type': 'application/json',
          'webhook-id': event.id,
          'webhook-timestamp': String(ts),
          'webhook-signature': `v1,${signature}`,
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? null));
      },
    );
    r.on('error', () => resolve(null));
    r.on('timeout', () => r.destroy());
    r.end(event.body);
  });
  const ok = status !== null && status >= 200 && status < 300;
  await pool.query(
    `with attempt as (
       insert into webhook_attempts (delivery_id, attempt, attempted_at, status_code, latency_ms)
       values ($1, 1, $2, $3, $4)
     )
     update webhook_deliveries set status = $5, attempts = 1, last_status_code = $3, last_attempt_at = $2,
       delivered_at = case when $5 = 'succeeded' then $2::timestamptz end
     where id = $1`,
    [d.id, at, status, Date.now() - started, ok ? 'succeeded' : 'failed'],
  );
  return ok;
}

async function tokenInfo(req: http.IncomingMessage) {
  const authz = req.headers.authorization;
  if (!authz?.startsWith('Bearer ')) throw new HttpError(401, 'missing_token');
  const row = (
    await pool.query(
      'select user_id, partner_id, scope, access_expires_at, revoked_at, rotated_at from oauth_tokens where access_hash = $1',
      [sha256(authz.slice(7))],
    )
  ).rows[0];
  if (!row) throw new HttpError(401, 'invalid_token');
  const revokedAt: Date | null = row.revoked_at ?? row.rotated_at;
  return {
    body: {
      active: revokedAt === null && row.access_expires_at > new Date(),
      scope: row.scope,
      userId: Number(row.user_id),
      partnerId: row.partner_id,
      expiresAt: row.access_expires_at.toISOString(),
      revokedAt: revokedAt?.toISOString() ?? null,
    },
    headers: { 'cache-control': 'no-store', pragma: 'no-cache' },
  };
}

async function refresh(raw: string) {
  const input = JSON.parse(raw) as Record<string, string | undefined>;
  if (input.grant_type !== 'refresh_token' || !input.refresh_token)
    throw new HttpError(400, 'invalid_request');
  const partner = (
    await pool.query('select id, client_id, name, client_secret_hash from partners where client_id = $1', [
      input.client_id,
    ])
  ).rows[0];
  const given = Buffer.from(sha256(input.client_secret ?? ''));
  if (!partner || !timingSafeEqual(given, Buffer.from(partner.client_secret_hash))) {
    throw new HttpError(401, 'invalid_client');
  }
  const client = await pool.connect();
  try {
    await client.query('begin');
    const pair = (
      await client.query(
        `select id, user_id, partner_id, scope, granted_scope, code_id, refresh_expires_at, rotated_at, revoked_at
         from oauth_tokens where refresh_hash = $1 for update`,
        [sha256(input.refresh_token)],
      )
    ).rows[0];
    if (!pair || pair.partner_id !== partner.id || pair.revoked_at || pair.refresh_expires_at <= new Date()) {
      throw new HttpError(400, 'invalid_grant');
    }
    if (pair.rotated_at) {
      // Replay: every token of this user for the client dies.
      await client.query(
        `update oauth_tokens set revoked_at = now(), revoked_by = 'partner'
         where user_id = $1 and partner_id = $2 and revoked_at is null`,
        [pair.user_id, partner.id],
      );
      await client.query('commit');
      throw new HttpError(400, 'invalid_grant');
    }
    await client.query('update oauth_tokens set rotated_at = now() where id = $1', [pair.id]);
    const enabled = await client.query('select 1 from users where id = $1 and disabled_at is null', [
      pair.user_id,
    ]);
    if (enabled.rowCount === 0) throw new HttpError(400, 'invalid_grant');
    const access = `tcat_${randomBytes(32).toString('base64url')}`;
    const refreshToken = `tcrt_${randomBytes(32).toString('base64url')}`;
    const now = Date.now();
    await client.query(
      `insert into oauth_tokens (user_id, partner_id, access_hash, refresh_hash, scope, granted_scope, code_id,
         parent_id, created_at, access_expires_at, refresh_expires_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        pair.user_id,
        partner.id,
        sha256(access),
        sha256(refreshToken),
        pair.scope,
        pair.granted_scope,
        pair.code_id,
        pair.id,
        new Date(now),
        new Date(now + ACCESS_TTL_S * 1000),
        new Date(now + REFRESH_TTL_S * 1000),
      ],
    );
    await client.query('commit');
    return {
      body: {
        access_token: access,
        token_type: 'Bearer',
        scope: pair.scope,
        expires_in: ACCESS_TTL_S,
        refresh_token: refreshToken,
        refresh_token_expires_in: REFRESH_TTL_S,
        client_id: partner.client_id,
        client_name: partner.name,
        user_id: String(pair.user_id),
        expires_at: now + ACCESS_TTL_S * 1000,
      },
      headers: { 'cache-control': 'no-store', pragma: 'no-cache' },
    };
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

type Reply = { body: unknown; headers?: Record<string, string> };

async function route(req: http.IncomingMessage, raw: string): Promise<Reply> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'GET' && path === '/api/v1/points/balance') return balance(req);
  if (req.method === 'POST' && path === '/api/v1/points/deduct') return deduct(req, raw);
  if (req.method === 'GET' && path === '/api/oauth2/token/info') return tokenInfo(req);
  if (req.method === 'POST' && path === '/api/oauth2/token') return refresh(raw);
  throw new HttpError(404, 'not_found');
}

const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > 16 * 1024) req.destroy();
    else chunks.push(c);
  });
  req.on('end', () => {
    route(req, Buffer.concat(chunks).toString('utf8')).then(
      (reply) => {
        res.writeHead(200, { 'content-type': 'application/json', ...reply.headers });
        res.end(JSON.stringify(reply.body));
      },
      (err: unknown) => {
        const status = err instanceof HttpError ? err.status : err instanceof SyntaxError ? 400 : 500;
        const code = err instanceof HttpError ? err.code : 'internal_error';
        if (status === 500) console.error('[reference]', (err as Error).message);
        res.writeHead(status, { 'content-type': 'application/problem+json' });
        res.end(JSON.stringify({ status, code }));
      },
    );
  });
});
server.keepAliveTimeout = 30_000;
server.listen(0, '127.0.0.1', () => {
  const addr = server.address() as { port: number };
  console.log(`reference listening on http://127.0.0.1:${addr.port}`);
});
// The orchestrator owns this process: when it goes away (stdin closes), so does the reference.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.on('SIGTERM', () => process.exit(0));
