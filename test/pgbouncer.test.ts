import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Database } from '../src/db/database.js';
import { createPartner } from '../src/partners/partners.js';
import { createUser } from '../src/users/users.js';
import type { TestServer } from './support/harness.js';
import { type MainProcess, startMain, startWorker } from './support/main-process.js';
import { obtainTokens } from './support/oauth.js';
import { createTestDatabase, realPostgresAvailable, type TestDatabase } from './support/pg.js';
import { WebhookReceiver } from './support/webhook-receiver.js';

// Several instances behind PgBouncer in transaction pooling mode (README "Scaling"): two API
// processes (`npm start` with RUN_JOBS=false) reach PostgreSQL through Debian's pgbouncer, and one
// `npm run worker` connects directly (graphile-worker's LISTEN needs a session of its own; its
// polling would still find the jobs without it). The partner flow runs across them.

const PGBOUNCER = '/usr/sbin/pgbouncer';
const haveBouncer = existsSync(PGBOUNCER);
const havePostgres = await realPostgresAvailable();
if (!haveBouncer && process.env.CI === 'true') {
  throw new Error(`CI needs pgbouncer at ${PGBOUNCER} (.ci/run installs it)`);
}
const skipReason = !haveBouncer
  ? `pgbouncer is not installed (${PGBOUNCER}; apt-get install pgbouncer)`
  : !havePostgres
    ? 'no PostgreSQL server at 127.0.0.1:5432'
    : undefined;
if (skipReason) console.log(`[pgbouncer] skipped: ${skipReason}`);

const REDIRECT_URI = 'https://partner.test/callback';
const PASSWORD = 'correct horse battery staple';
const dir = mkdtempSync(join(tmpdir(), 'tian-pgbouncer-'));
const children: { child: ChildProcess; exited: Promise<number | null> }[] = [];
let testDb: TestDatabase | undefined;
let bouncer: { child: ChildProcess; exited: Promise<number | null>; output(): string } | undefined;
let receiver: WebhookReceiver | undefined;

afterAll(async () => {
  for (const c of children) c.child.kill('SIGTERM');
  await Promise.all(children.map((c) => bounded(c.exited, 15_000)));
  await receiver?.close();
  bouncer?.child.kill('SIGTERM');
  if (bouncer) await bounded(bouncer.exited, 5_000);
  await testDb?.drop();
  rmSync(dir, { recursive: true, force: true });
}, 60_000);

const bounded = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<void>((resolve) => setTimeout(resolve, ms).unref())]);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address ? address.port : 0;
}

/** Debian's pgbouncer on a free loopback port, transaction pooling, in front of 127.0.0.1:5432. */
async function startBouncer(): Promise<number> {
  const port = await freePort();
  // pgbouncer refuses to run as root: it drops to another user, which must read the files.
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'userlist.txt'), '"postgres" ""\n', { mode: 0o644 });
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      '* = host=127.0.0.1 port=5432',
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'userlist.txt')}`,
      'pool_mode = transaction',
      'max_client_conn = 500',
      'default_pool_size = 10',
      'ignore_startup_parameters = extra_float_digits,options',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  // As root it must drop to another user (postgresql-common's `postgres`, else `nobody`).
  const runAs = /^postgres:/m.test(readFileSync('/etc/passwd', 'utf8')) ? 'postgres' : 'nobody';
  const ini = join(dir, 'pgbouncer.ini');
  const args = process.getuid?.() === 0 ? ['-u', runAs, ini] : [ini];
  const child = spawn(PGBOUNCER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let out = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
  bouncer = { child, exited, output: () => out };
  // Ready when it accepts connections (an event, polled briefly; bounded).
  const deadline = Date.now() + 10_000;
  for (;;) {
    const exitedEarly = await Promise.race([
      exited.then(() => true),
      new Promise((r) => setTimeout(r, 100, false)),
    ]);
    if (exitedEarly) throw new Error(`pgbouncer exited: ${out}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(true)); // taken: pgbouncer listens
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)));
    });
    if (ok) return port;
    if (Date.now() > deadline) throw new Error(`pgbouncer did not listen on ${port}: ${out}`);
  }
}

describe.skipIf(skipReason !== undefined)(
  'two API processes behind PgBouncer (transaction pooling) and a worker',
  () => {
    it('a token issued on one works on the other, a revoke on one is seen at once on the other, webhooks are delivered exactly once', async () => {
      testDb = await createTestDatabase();
      const direct = testDb.url ?? '';
      const viaBouncer = new URL(direct);
      viaBouncer.port = String(await startBouncer());
      const apiEnv = {
        ...process.env,
        NODE_ENV: 'test',
        HOST: '127.0.0.1',
        PORT: '0',
        DATABASE_URL: viaBouncer.toString(),
        RUN_JOBS: 'false',
        WEBHOOK_TIMEOUT_MS: '1000',
        SESSION_SECRET: randomBytes(24).toString('hex'),
      };

      // A migrates the database through PgBouncer; then B and the worker (direct) start.
      const a: MainProcess = await startMain(apiEnv, 120_000);
      children.push(a);
      const [b, worker] = await Promise.all([
        startMain(apiEnv, 120_000),
        startWorker({ ...apiEnv, DATABASE_URL: direct, JOB_POLL_INTERVAL_MS: '200' }, 120_000),
      ]);
      children.push(b, worker);
      expect(a.output()).toContain('RUN_JOBS=false');

      const db = await Database.open({ url: direct, dataDir: '' });
      const seeded = await db.transaction(async (tx) => {
        const p = await createPartner(tx, {
          name: 'Bouncer partner',
          redirectUris: [REDIRECT_URI],
          allowedScopes: ['deduct', 'balance'],
        });
        const u = await createUser(tx, { email: 'bouncer@example.com', password: PASSWORD, points: 100 });
        return { clientId: p.partner.clientId, clientSecret: p.clientSecret, userId: u.id };
      });

      try {
        // The OAuth code flow on A (sign-in, consent, code, token exchange).
        const tokens = await obtainTokens({ url: a.url } as TestServer, {
          client: seeded,
          redirectUri: REDIRECT_URI,
          user: { email: 'bouncer@example.com', password: PASSWORD },
          scope: 'balance deduct',
        });
        const bearer = { authorization: `Bearer ${tokens.access_token}` };
        // ... is good on B.
        const balance = await fetch(`${b.url}/api/v1/points/balance`, { headers: bearer });
        expect(balance.status).toBe(200);
        expect(await balance.json()).toMatchObject({ balance: 100 });

        // A webhook endpoint created on B; a deduct on A (its first attempt is made by A); a test
        // ping queued on B (delivered by the worker).
        receiver = await WebhookReceiver.start();
        const endpoint = await fetch(`${b.url}/api/v1/partner/webhook-endpoints`, {
          method: 'POST',
          headers: { 'x-api-key': seeded.clientSecret, 'content-type': 'application/json' },
          body: JSON.stringify({ url: receiver.url(), events: ['points.deducted'] }),
        });
        expect(endpoint.status).toBe(201);
        const { endpointId } = (await endpoint.json()) as { endpointId: string };
        const deduct = await fetch(`${a.url}/api/v1/points/deduct`, {
          method: 'POST',
          headers: {
            ...bearer,
            'content-type': 'application/json',
            'idempotency-key': randomBytes(8).toString('hex'),
          },
          body: JSON.stringify({ amount: 30, description: 'through PgBouncer' }),
        });
        expect(deduct.status).toBe(200);
        const ping = await fetch(`${b.url}/api/v1/partner/webhook-endpoints/${endpointId}/test`, {
          method: 'POST',
          headers: { 'x-api-key': seeded.clientSecret },
        });
        expect(ping.status).toBe(202);
        await receiver.waitFor(2, 30_000);

        // Revoked on B: refused on A at once.
        const revoke = await fetch(`${b.url}/api/oauth2/revoke`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            token: tokens.access_token,
            client_id: seeded.clientId,
            client_secret: seeded.clientSecret,
          }).toString(),
        });
        expect(revoke.status).toBe(200);
        expect((await fetch(`${a.url}/api/v1/points/balance`, { headers: bearer })).status).toBe(401);

        // Exactly once: when the worker has nothing left to do (the deduct's retry job, held back
        // while A's first attempt ran, finds it delivered), each event arrived once.
        const deadline = Date.now() + 30_000;
        for (;;) {
          const [left] = await db.query<{ n: string }>('select count(*) as n from graphile_worker.jobs');
          if (Number(left?.n) === 0) break;
          if (Date.now() > deadline) throw new Error(`jobs still queued: ${left?.n}`);
          await new Promise((r) => setTimeout(r, 200));
        }
        const ids = receiver.received.map((r) => r.headers['webhook-id']);
        expect(ids).toHaveLength(2);
        expect(new Set(ids).size).toBe(2);
        const [user] = await db.query<{ balance: number }>('select balance from users where id = $1', [
          seeded.userId,
        ]);
        expect(user?.balance).toBe(70);
      } finally {
        await db.close();
      }
    }, 300_000);
  },
);
