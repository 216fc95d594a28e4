import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { createPartner } from '../src/partners/partners.js';
import { startServer } from '../src/server.js';
import { createUser } from '../src/users/users.js';
import { legacyHeaders, privyApp } from './support/privy.js';

// `npm start` itself (src/main.ts), on its own embedded database: what an orchestrator's SIGTERM does.
const dir = mkdtempSync(join(tmpdir(), 'tian-shutdown-'));
let receiver: Server | undefined;
afterAll(() => {
  receiver?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A partner's webhook receiver that takes `ms` to answer: it holds a deduct's response open. */
async function slowReceiver(ms: number): Promise<string> {
  receiver = createServer((req, res) => {
    req.resume();
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

    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { ...process.env, ...env, DATABASE_URL: '', WEBHOOK_DELIVERED_WAIT_MS: '5000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stderr.on('data', (b: Buffer) => {
      out += b.toString();
    });
    const url = await new Promise<string>((resolve, reject) => {
      // A cold start compiles with tsx and opens the database: generous on a loaded 2-core machine.
      const timer = setTimeout(() => reject(new Error(`no start within 80 s: ${out}`)), 80_000);
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /listening on (http:\/\/\S+)/.exec(out);
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));

    const headers = legacyHeaders(clientSecret, 'did:privy:shutdown', await privy.sign('did:privy:shutdown'));
    const started = performance.now();
    const deduct = fetch(`${url}/api/v1/points/deduct`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ amount: 15, idempotencyKey: 'shutdown-1' }),
    });
    // The deduct is now waiting on the slow receiver (3 s): stop the server under it.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await accepts(url)).toBe(false);

    const res = await deduct;
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ success: true, newBalance: 25 });
    // It really was in flight across the signal: the receiver held it for 3 s.
    expect(performance.now() - started).toBeGreaterThan(2500);
    expect(await exited).toBe(0);
    expect(out).toContain('SIGTERM: finishing in-flight requests');
  }, 120_000);
});
