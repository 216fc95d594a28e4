/**
 * npm run bench: throughput of the real app against a reference measured in the same run, on
 * loopback only, each run bounded in time. Figures are reported as ratios to the reference because
 * these machines are shared and noisy.
 *
 * reference  a bare node:http + pg server running the same SQL (no auth, no validation)
 * app        the real app (legacy flow: API key + Privy ES256 session per request)
 *            with response validation on (dev/test default) and off (production)
 */
import http from 'node:http';
import autocannon from 'autocannon';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import { Database } from '../src/db/database.js';
import { newId } from '../src/lib/ids.js';
import { createPartner } from '../src/partners/partners.js';
import { startServer } from '../src/server.js';
import { createUser } from '../src/users/users.js';
import { createTestDatabase } from '../test/support/pg.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);

const testDb = await createTestDatabase();
console.log(
  `[bench] database: ${testDb.kind === 'postgres' ? 'real PostgreSQL' : 'embedded PGlite (numbers mean little: one session)'}; ${SECONDS}s per run, ${CONNECTIONS} connections`,
);
const { publicKey, privateKey } = await generateKeyPair('ES256');
const baseEnv = {
  PORT: '0',
  NODE_ENV: 'test',
  PRIVY_APP_ID: 'bench',
  PRIVY_VERIFICATION_KEY: await exportSPKI(publicKey),
  RATE_LIMIT_PER_MINUTE: '100000000',
  DATA_DIR: 'memory://',
  ...(testDb.url ? { DATABASE_URL: testDb.url } : {}),
};
const db = await Database.open({ url: testDb.url, dataDir: 'memory://', poolMax: 20 });
await db.migrate();
const { partner, clientSecret } = await db.transaction((tx) =>
  createPartner(tx, { name: 'Bench', redirectUris: [], allowedScopes: ['deduct', 'balance'] }),
);
const user = await db.transaction((tx) =>
  createUser(tx, { privyId: 'did:privy:bench', points: 1_000_000_000 }),
);
const session = await new SignJWT({})
  .setProtectedHeader({ alg: 'ES256' })
  .setIssuer('privy.io')
  .setAudience('bench')
  .setSubject('did:privy:bench')
  .setIssuedAt()
  .setExpirationTime('1h')
  .sign(privateKey);

const reference = await startReference(testDb.url);

type Result = { name: string; rps: number; p99: number; errors: number };
async function load(
  name: string,
  url: string,
  method: 'GET' | 'POST',
  headers: Record<string, string>,
): Promise<Result> {
  const r = await autocannon({
    url,
    method,
    headers: { ...headers, 'content-type': 'application/json' },
    body: method === 'POST' ? JSON.stringify({ amount: 1, description: 'bench' }) : undefined,
    connections: CONNECTIONS,
    duration: SECONDS,
  });
  const errors = r.errors + r.timeouts + r.non2xx;
  return { name, rps: r.requests.average, p99: r.latency.p99, errors };
}

const auth = { 'x-api-key': clientSecret, 'x-privy-id': 'did:privy:bench', 'x-privy-session-token': session };
const rows: { op: string; results: Result[] }[] = [];
for (const [op, method, path] of [
  ['balance', 'GET', '/api/v1/points/balance'],
  ['deduct', 'POST', '/api/v1/points/deduct'],
] as const) {
  const results: Result[] = [];
  results.push(
    await load(
      'reference (node:http + pg)',
      `${reference.url}${path}?user=${user.id}&partner=${partner.id}`,
      method,
      {},
    ),
  );
  for (const validate of ['true', 'false']) {
    const app = await startServer(loadConfig({ ...baseEnv, VALIDATE_RESPONSES: validate }), { db });
    results.push(
      await load(
        `app, response validation ${validate === 'true' ? 'on ' : 'off'}`,
        `${app.url}${path}`,
        method,
        auth,
      ),
    );
    await app.close();
  }
  rows.push({ op, results });
}

for (const { op, results } of rows) {
  const ref = results[0]?.rps ?? 1;
  console.log(`\n${op}`);
  for (const r of results) {
    console.log(
      `  ${r.name.padEnd(32)} ${r.rps.toFixed(0).padStart(7)} req/s  ${(r.rps / ref).toFixed(2)}x reference  p99 ${r.p99} ms  errors ${r.errors}`,
    );
  }
}
const [row] = await db.query<{ sum: string; balance: number }>(
  'select (select sum(amount) from ledger_entries where user_id = $1) as sum, balance from users where id = $1',
  [user.id],
);
console.log(
  `\nledger check: sum of ledger ${row?.sum} == balance ${row?.balance}: ${Number(row?.sum) === row?.balance}`,
);

await reference.close();
await db.close();
await testDb.drop();

async function startReference(url: string | undefined) {
  const pool = new pg.Pool({ connectionString: url ?? (await db.query('select 1'), ''), max: 20 });
  const server = http.createServer(async (req, res) => {
    const q = new URL(req.url ?? '/', 'http://x').searchParams;
    const userId = Number(q.get('user'));
    try {
      if (req.method === 'GET') {
        const r = await pool.query('select balance from users where id = $1', [userId]);
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ success: true, userId, balance: r.rows[0].balance }));
        return;
      }
      let body = '';
      for await (const chunk of req) body += chunk;
      const { amount, description } = JSON.parse(body);
      const r = await pool.query(
        `with upd as (update users set balance = balance - $2 where id = $1 and balance >= $2 returning id, balance)
         insert into ledger_entries (public_id, user_id, partner_id, type, amount, balance_after, description)
         select $3, id, $4, 'deduct', -$2::integer, balance, $5 from upd returning public_id, balance_after`,
        [userId, amount, newId('txn'), Number(q.get('partner')), description],
      );
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ success: true, newBalance: r.rows[0].balance_after }));
    } catch (err) {
      res.writeHead(500).end(String(err));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${addr.port}`,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pool.end();
    },
  };
}
