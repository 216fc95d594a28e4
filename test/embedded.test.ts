import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createClient } from '../generated/sdk/client/index.js';
import { deductPoints, getBalance } from '../generated/sdk/index.js';
import { loadConfig } from '../src/config.js';
import { createPartner } from '../src/partners/partners.js';
import { startServer } from '../src/server.js';
import { createUser } from '../src/users/users.js';
import { startMain } from './support/main-process.js';
import { legacyHeaders, privyApp } from './support/privy.js';

// The README's default: no DATABASE_URL, so the server runs on the embedded PGlite in DATA_DIR.
const dir = mkdtempSync(join(tmpdir(), 'tian-embedded-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('embedded database (the default without DATABASE_URL)', () => {
  it('serves the points API and keeps the data across a restart', async () => {
    const privy = await privyApp('embedded-test');
    const env = { PORT: '0', DATA_DIR: join(dir, 'pglite'), ...privy.env };

    const first = await startServer(loadConfig(env));
    expect(first.services.db.kind).toBe('embedded');
    const { clientSecret } = await first.services.db.transaction((tx) =>
      createPartner(tx, { name: 'Embedded', redirectUris: [], allowedScopes: ['deduct', 'balance'] }),
    );
    await first.services.db.transaction((tx) =>
      createUser(tx, { privyId: 'did:privy:embedded', points: 40 }),
    );
    const headers = legacyHeaders(clientSecret, 'did:privy:embedded', await privy.sign('did:privy:embedded'));
    const api = createClient({ baseUrl: first.url, headers });
    const d = await deductPoints({ client: api, body: { amount: 15, idempotencyKey: 'emb-1' } });
    expect(d.data?.newBalance).toBe(25);
    await first.close();

    const second = await startServer(loadConfig(env));
    const api2 = createClient({ baseUrl: second.url, headers });
    expect((await getBalance({ client: api2 })).data?.balance).toBe(25);
    const replay = await deductPoints({ client: api2, body: { amount: 15, idempotencyKey: 'emb-1' } });
    expect(replay.response.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.data?.transactionId).toBe(d.data?.transactionId);
    expect((await getBalance({ client: api2 })).data?.balance).toBe(25);
    await second.close();
  });

  it('`npm start` (src/main.ts) boots on the embedded database, says so, and stops on SIGTERM', async () => {
    const main = await startMain({
      ...process.env,
      PORT: '0',
      DATA_DIR: join(dir, 'main'),
      DATABASE_URL: '',
    });
    expect(main.output()).toContain('embedded PostgreSQL (PGlite)');
    const res = await fetch(`${main.url}/api/v1/points/balance`);
    expect(res.status).toBe(401);
    main.child.kill('SIGTERM');
    expect(await main.exited).toBe(0);
  }, 90_000);
});
