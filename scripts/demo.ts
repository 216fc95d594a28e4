/**
 * `npm run demo`: the OAuth authorization code flow end to end against a running server, the way
 * `hydra perform authorization-code` does it for Ory Hydra. It
 * 1. creates (or reuses) a demo partner and a demo wallet user with points, in the server's own
 *    database (DATABASE_URL, or the embedded one through the running server's socket, as the admin
 *    CLI does);
 * 2. starts a callback listener on 127.0.0.1 and prints the authorize URL (state + PKCE S256);
 * 3. waits (bounded) for the browser to come back, exchanges the code at the token endpoint;
 * 4. prints the tokens and ready-to-paste curl commands: a deduct with an Idempotency-Key, token info.
 *
 *   npm run demo -- [--server URL] [--port N] [--scope "balance deduct"] [--timeout-seconds 300]
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.js';
import type { Sql } from '../src/db/database.js';
import { Database } from '../src/db/database.js';
import { hashPassword } from '../src/lib/passwords.js';
import { s256 } from '../src/oauth2/pkce.js';
import { createPartner, rotateClientSecret } from '../src/partners/partners.js';
import { createUser, creditPoints } from '../src/users/users.js';

const PARTNER_NAME = 'Demo partner (npm run demo)';
const USER_EMAIL = 'demo@example.com';
const DEMO_POINTS = 1000;

class DemoError extends Error {}

type Metadata = { issuer: string; authorization_endpoint: string; token_endpoint: string };
type TokenResponse = {
  access_token: string;
  refresh_token: string;
  token_type: string;
  scope: string;
  expires_in: number;
};

const { values: args } = parseArgs({
  options: {
    server: { type: 'string' },
    port: { type: 'string', default: '0' },
    scope: { type: 'string', default: 'balance deduct' },
    'timeout-seconds': { type: 'string', default: '300' },
    'allow-remote-database': { type: 'boolean', default: false },
  },
  strict: true,
});

/** A database on this machine: a loopback host, or a Unix socket (no host, or a host that is a path). */
function isLoopbackDatabase(url: string): boolean {
  const { hostname, searchParams } = new URL(url);
  const host = decodeURIComponent(searchParams.get('host') ?? hostname);
  return host === '' || host.startsWith('/') || ['localhost', '127.0.0.1', '[::1]', '::1'].includes(host);
}

const say = (line = '') => process.stdout.write(`${line}\n`);
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

async function main(): Promise<void> {
  const config = loadConfig();
  if (config.production)
    throw new DemoError('npm run demo creates a demo account with a known password: not in production.');
  // A NODE_ENV left unset on a real host must not let the demo add accounts to a real database.
  if (config.databaseUrl && !isLoopbackDatabase(config.databaseUrl) && !args['allow-remote-database'])
    throw new DemoError(
      'DATABASE_URL is not on this machine: the demo writes a demo partner and user there. Pass --allow-remote-database if that is what you want.',
    );
  const server = (args.server ?? config.publicUrl ?? `http://127.0.0.1:${config.port}`).replace(/\/+$/, '');
  const timeoutMs = Number(args['timeout-seconds']) * 1000;
  if (!(timeoutMs > 0)) throw new DemoError('--timeout-seconds must be a positive number.');

  const metadata = await discover(server);
  const callback = await listen(Number(args.port));
  try {
    const demo = await ensureDemoAccounts(config, callback.redirectUri);
    await expectServerKnows(server, demo.clientSecret);

    const state = randomBytes(16).toString('base64url');
    const verifier = randomBytes(32).toString('base64url');
    const authorizeUrl = `${metadata.authorization_endpoint}?${new URLSearchParams({
      response_type: 'code',
      client_id: demo.clientId,
      redirect_uri: callback.redirectUri,
      scope: args.scope ?? '',
      state,
      code_challenge: s256(verifier),
      code_challenge_method: 'S256',
    })}`;

    say(`Server:       ${server}`);
    say(`Demo partner: ${PARTNER_NAME}`);
    say(`  client_id:     ${demo.clientId}`);
    say(`  client_secret: ${demo.clientSecret}   (new on every run; also the X-API-Key)`);
    say(`Demo user:    ${USER_EMAIL}`);
    say(`  password:      ${demo.password}   (a local demo account; new on every run)`);
    say(`  balance:       ${demo.balance} points`);
    say();
    say('Open this URL in a browser, sign in as the demo user and approve:');
    say();
    say(`  ${authorizeUrl}`);
    say();
    say(
      `Waiting for the browser to come back to ${callback.redirectUri} (up to ${timeoutMs / 1000} s; Ctrl-C to stop)...`,
    );

    const code = await callback.code(state, metadata.issuer, timeoutMs);
    const tokens = await exchange(metadata, {
      clientId: demo.clientId,
      clientSecret: demo.clientSecret,
      code,
      redirectUri: callback.redirectUri,
      verifier,
    });
    printTokens(server, metadata, demo, tokens);
  } finally {
    await callback.close();
  }
}

/** RFC 8414 metadata: where to send the user and where to exchange the code. */
async function discover(server: string): Promise<Metadata> {
  let res: Response;
  try {
    res = await fetch(`${server}/.well-known/oauth-authorization-server`, {
      signal: AbortSignal.timeout(10_000),
    });
  } catch {
    throw new DemoError(`No server answers at ${server}: start it with \`npm start\`, or pass --server URL.`);
  }
  if (!res.ok)
    throw new DemoError(
      `${server} answered ${res.status} for its OAuth metadata: is it a TIAN Points server?`,
    );
  return (await res.json()) as Metadata;
}

/**
 * The demo partner and user, in the server's database. The client secret is stored only as a hash,
 * so a reused partner gets a new one; the user gets a new random password and is topped up.
 */
async function ensureDemoAccounts(config: ReturnType<typeof loadConfig>, redirectUri: string) {
  const db = await Database.open({ url: config.databaseUrl, dataDir: config.dataDir, embeddedRole: 'cli' });
  try {
    const password = `demo-${randomBytes(9).toString('base64url')}`;
    const partner = await db.transaction(async (tx) => {
      const [existing] = await tx.query<{ id: number }>(
        'select id from partners where name = $1 order by id limit 1',
        [PARTNER_NAME],
      );
      if (existing) return rotateClientSecret(tx, Number(existing.id), new Date());
      return createPartner(tx, {
        name: PARTNER_NAME,
        // A loopback IP literal: the port may differ on every run (RFC 8252 §7.3).
        redirectUris: [redirectUri],
        allowedScopes: ['balance', 'deduct', 'subscriptions'],
        requirePkce: true,
      });
    });
    const balance = await db.transaction((tx) => ensureUser(tx, password));
    return { clientId: partner.partner.clientId, clientSecret: partner.clientSecret, password, balance };
  } finally {
    await db.close();
  }
}

async function ensureUser(tx: Sql, password: string): Promise<number> {
  const [row] = await tx.query<{ id: string; balance: number }>(
    'select id, balance from users where email = $1',
    [USER_EMAIL],
  );
  if (!row) return (await createUser(tx, { email: USER_EMAIL, password, points: DEMO_POINTS })).balance;
  // A new password (argon2id, as createUser hashes it); the demo account is enabled again if it was disabled.
  await tx.query('update users set password_hash = $1, disabled_at = null where id = $2', [
    await hashPassword(password),
    row.id,
  ]);
  const short = DEMO_POINTS - Number(row.balance);
  return short > 0
    ? creditPoints(tx, Number(row.id), short, 'Demo top-up (npm run demo)')
    : Number(row.balance);
}

/** The server at --server must use this command's database, or the flow would fail later, less clearly. */
async function expectServerKnows(server: string, apiKey: string): Promise<void> {
  const res = await fetch(`${server}/api/v1/partner`, { headers: { 'X-API-Key': apiKey } });
  if (res.ok) return;
  throw new DemoError(
    `The server at ${server} does not know the demo partner (${res.status}): it runs on another database than this command. Run the demo with the server's DATABASE_URL or DATA_DIR.`,
  );
}

type Callback = {
  redirectUri: string;
  code(state: string, issuer: string, timeoutMs: number): Promise<string>;
  close(): Promise<void>;
};

/** The redirect URI: a one-shot listener on 127.0.0.1 that takes the authorization response. */
async function listen(port: number): Promise<Callback> {
  let deliver: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => {
    res.writeHead(404).end();
  };
  const server = createServer((req, res) => deliver(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const addr = server.address();
  const bound = typeof addr === 'object' && addr ? addr.port : port;
  const redirectUri = `http://127.0.0.1:${bound}/callback`;
  return {
    redirectUri,
    code: (state, issuer, timeoutMs) =>
      new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new DemoError(`No browser came back to ${redirectUri} within ${timeoutMs / 1000} s.`)),
          timeoutMs,
        );
        deliver = (req, res) => {
          const url = new URL(req.url ?? '/', redirectUri);
          if (url.pathname !== '/callback') return void res.writeHead(404).end();
          const p = url.searchParams;
          // RFC 6749 §10.12: a response without our state is not ours (a stale tab, or a forgery); keep waiting.
          if (p.get('state') !== state)
            return page(res, 400, 'This response does not belong to this demo run.');
          clearTimeout(timer);
          if (p.get('error')) {
            page(res, 400, `The authorization failed: ${p.get('error')}. See the terminal.`);
            return reject(
              new DemoError(`Authorization failed: ${p.get('error')}: ${p.get('error_description') ?? ''}`),
            );
          }
          // RFC 9207: the response names its issuer; a mix-up attack would show another.
          if (p.has('iss') && p.get('iss') !== issuer) {
            page(res, 400, 'The response came from another issuer. See the terminal.');
            return reject(new DemoError(`The response's iss ${p.get('iss')} is not ${issuer}.`));
          }
          page(res, 200, 'Signed in and approved. The tokens are in your terminal; you can close this tab.');
          resolve(p.get('code') ?? '');
        };
      }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function page(res: ServerResponse, status: number, message: string): void {
  res
    .writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
    .end(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>TIAN Points demo</title></head><body><main><h1>TIAN Points demo</h1><p>${message}</p></main></body></html>`,
    );
}

async function exchange(
  metadata: Metadata,
  c: { clientId: string; clientSecret: string; code: string; redirectUri: string; verifier: string },
): Promise<TokenResponse> {
  const res = await fetch(metadata.token_endpoint, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(c.clientId)}:${encodeURIComponent(c.clientSecret)}`).toString('base64')}`,
    },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: c.code,
      redirect_uri: c.redirectUri,
      code_verifier: c.verifier,
    }),
  });
  const body = (await res.json()) as TokenResponse & { error?: string; error_description?: string };
  if (!res.ok)
    throw new DemoError(
      `The token endpoint answered ${res.status}: ${body.error}: ${body.error_description}`,
    );
  return body;
}

function printTokens(
  server: string,
  metadata: Metadata,
  demo: { clientId: string; clientSecret: string },
  t: TokenResponse,
): void {
  const bearer = quote(`Authorization: Bearer ${t.access_token}`);
  const key = `demo-${randomBytes(8).toString('hex')}`;
  say();
  say('Tokens:');
  say(JSON.stringify(t, null, 2));
  say();
  say(
    'Deduct 10 points (run it twice: the same Idempotency-Key replays the first answer, nothing is deducted twice):',
  );
  say();
  say(
    `curl -sS -X POST ${quote(`${server}/api/v1/points/deduct`)} -H ${bearer} -H ${quote(`Idempotency-Key: ${key}`)} -H 'Content-Type: application/json' -d '{"amount":10,"description":"npm run demo"}'`,
  );
  say();
  say('Token info:');
  say();
  say(`curl -sS ${quote(`${server}/api/oauth2/token/info`)} -H ${bearer}`);
  say();
  say('Balance:');
  say();
  say(`curl -sS ${quote(`${server}/api/v1/points/balance`)} -H ${bearer}`);
  say();
  say('Refresh (rotates: the old pair stops working):');
  say();
  say(
    `curl -sS -X POST ${quote(metadata.token_endpoint)} -u ${quote(`${demo.clientId}:${demo.clientSecret}`)} -d grant_type=refresh_token -d ${quote(`refresh_token=${t.refresh_token}`)}`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(
      `npm run demo: ${err instanceof DemoError ? err.message : String((err as Error)?.stack ?? err)}\n`,
    );
    process.exit(1);
  },
);
