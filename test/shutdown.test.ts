import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createPartner } from '../src/partners/partners.js';
import { startServer } from '../src/server.js';
import { createUser } from '../src/users/users.js';
import { startMain } from './support/main-process.js';
import { legacyHeaders, privyApp } from './support/privy.js';

// `npm start` itself (src/main.ts), on its own embedded database: what an orchestrator's SIGTERM does.
const dir = mkdtempSync(join(tmpdir(), 'tian-shutdown-'));
let receiver: Server | undefined;
afterAll(() => {
  receiver?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A partner's webhook receiver that takes `ms` to answer: it holds a deduct's response open. */
let hookArrived: Promise<void>;
async function slowReceiver(ms: number): Promise<string> {
  let arrived: () => void = () => {};
  hookArrived = new Promise((resolve) => {
    arrived = resolve;
  });
  receiver = createServer((req, res) => {
    req.resume();
    arrived();
    setTimeout(() => res.writeHead(200).end('ok'), ms);
  });
  await new Promise<void>((resolve) => receiver?.listen(0, '127.0.0.1', resolve));
  const addr = receiver.address();
  if (!addr || typeof addr !== 'object') throw new Error('receiver has no port');
  return `http://127.0.0.1:${addr.port}/hooks`;
}

/** Whether a new TCP connection to `url` is accepted. */
const accepts = (url: string) =>
  new Promise<boolean>((resolve) => {
    const { hostname, port } = new URL(url);
    const socket = connect(Number(port), hostname);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

describe('SIGTERM', () => {
  it('lets the request in flight finish with its 200, refuses new connections, and exits 0', async () => {
    const privy = await privyApp('shutdown-test');
    const env = { PORT: '0', DATA_DIR: join(dir, 'pglite'), ...privy.env };
    const hookUrl = await slowReceiver(3000);

    // Seed the data directory first (one process owns it at a time), then hand it to `npm start`.
    const seed = await startServer(loadConfig(env), { worker: false });
    const { clientSecret } = await seed.services.db.transaction((tx) =>
      createPartner(tx, { name: 'Shutdown', redirectUris: [], allowedScopes: ['deduct', 'balance'] }),
    );
    await seed.services.db.transaction((tx) => createUser(tx, { privyId: 'did:privy:shutdown', points: 40 }));
    const endpoint = await fetch(`${seed.url}/api/v1/partner/webhook-endpoints`, {
      method: 'POST',
      headers: { 'x-api-key': clientSecret, 'content-type': 'application/json' },
      body: JSON.stringify({ url: hookUrl, events: ['points.deducted'] }),
    });
    expect(endpoint.status).toBe(201);
    await seed.close();

    const main = await startMain({
      ...process.env,
      ...env,
      DATABASE_URL: '',
      WEBHOOK_DELIVERED_WAIT_MS: '5000',
    });
    const { url } = main;

    const headers = legacyHeaders(clientSecret, 'did:privy:shutdown', await privy.sign('did:privy:shutdown'));
    const started = performance.now();
    const deduct = fetch(`${url}/api/v1/points/deduct`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 15, idempotencyKey: 'shutdown-1' }),
    });
    // Once the receiver holds the deduct's webhook (3 s), stop the server under it.
    await hookArrived;
    main.child.kill('SIGTERM');
    await main.printed(/SIGTERM: finishing in-flight requests/);
    // The listening socket closes as the loop turns: new connections are refused from then on.
    await vi.waitFor(async () => expect(await accepts(url)).toBe(false), { timeout: 5_000, interval: 20 });

    const res = await deduct;
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ success: true, newBalance: 25 });
    // It really was in flight across the signal: the receiver held it for 3 s.
    expect(performance.now() - started).toBeGreaterThan(2500);
    expect(await main.exited).toBe(0);
  }, 120_000);
});
