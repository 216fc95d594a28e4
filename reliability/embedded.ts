import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Database } from '../src/db/database.js';
import { createPartner } from '../src/partners/partners.js';
import { createUser } from '../src/users/users.js';
import { type MainProcess, startMain } from '../test/support/main-process.js';
import { legacyHeaders } from '../test/support/privy.js';
import { type Cluster, stop, track } from './cluster.js';
import { checkLedger, describeLoad, loadProblems, runLoad } from './load.js';
import { log, tally } from './report.js';

/** A free TCP port on loopback (the restarted server listens where the clients already send). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/**
 * The embedded database (PGlite in DATA_DIR, one owner process): `npm start` is SIGKILLed while
 * clients deduct, restarted on the same directory and port, and the clients retry what was not
 * acknowledged. Then the server stops, the directory is opened again in this process, and every
 * acknowledged deduct is in its ledger exactly once, every balance its ledger's sum.
 */
export async function embeddedKillDuringWrites(c: Cluster, problems: string[]): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'tian-reliability-'));
  const dataDir = join(root, 'pglite');
  const privyId = 'did:privy:reliability-embedded';
  try {
    const setup = await Database.open({ url: undefined, dataDir });
    await setup.migrate();
    const { clientSecret } = await setup.transaction((tx) =>
      createPartner(tx, {
        name: 'Reliability Embedded',
        redirectUris: ['https://partner.test/callback'],
        allowedScopes: ['deduct', 'balance'],
      }),
    );
    const user = await setup.transaction((tx) => createUser(tx, { privyId, points: 1_000_000 }));
    await setup.close();

    const env: NodeJS.ProcessEnv = {
      ...c.env,
      DATABASE_URL: '',
      DATA_DIR: dataDir,
      PORT: String(await freePort()),
      RUN_JOBS: 'true',
    };
    const start = async () => {
      const s = await startMain(env, 120_000);
      track('embedded', s);
      return s;
    };
    let server: MainProcess = await start();
    const url = server.url;
    const headers = legacyHeaders(clientSecret, privyId, await c.t.privyToken(privyId));
    let restarted: Promise<void> | undefined;
    const load = await runLoad({
      prefix: 'emb',
      deducts: 240,
      concurrency: 4,
      users: [{ id: user.id, headers }],
      urls: () => [url],
      onAck: (acked) => {
        if (acked !== 80) return;
        restarted = (async () => {
          server.child.kill('SIGKILL');
          await server.exited;
          tally.faults++;
          log(
            '  npm start (embedded) SIGKILLed after 80 acknowledged deducts; restarting on the same DATA_DIR',
          );
          server = await start();
        })().catch((err: Error) => {
          problems.push(`the restart failed: ${err.message}`);
        });
      },
    });
    await restarted;
    log(`  ${describeLoad(load)}`);
    await stop(server.child, server.exited);

    const reopened = await Database.open({ url: undefined, dataDir });
    try {
      const ledger = await checkLedger(reopened, 'emb', load.outcomes);
      problems.push(...loadProblems(load, ledger));
    } finally {
      await reopened.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
