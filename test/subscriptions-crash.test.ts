import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanDue } from '../src/jobs/tasks.js';
import { startTestServer, type TestServer } from './support/harness.js';
import { realPostgresAvailable } from './support/pg.js';

// A worker process is SIGKILLed in the middle of a renewal: after its debit, before its commit.
// After the restart the renewal is charged exactly once. Needs a second process on the same
// database, so it runs on the real PostgreSQL only (the embedded one is owned by one process).

let t: TestServer;
let worker: ChildProcess | undefined;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  worker?.kill('SIGKILL');
  await t?.stop();
});

const DAY = 86_400_000;

async function books(userId: number) {
  const [row] = await t.db.query<{ balance: number; charges: string; periods: string; ledger_sum: string }>(
    `select u.balance,
       (select count(*) from ledger_entries where user_id = u.id and type = 'subscription_charge') as charges,
       (select count(*) from subscription_periods where user_id = u.id) as periods,
       (select coalesce(sum(amount), 0) from ledger_entries where user_id = u.id) as ledger_sum
     from users u where u.id = $1`,
    [userId],
  );
  return {
    balance: row?.balance,
    charges: Number(row?.charges),
    periods: Number(row?.periods),
    ledgerSum: Number(row?.ledger_sum),
  };
}

/** Resolves once a backend of this database is asleep inside the renewal's transaction. */
async function renewalInFlight(): Promise<number> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const [row] = await t.db.query<{ pid: number }>(
      `select pid from pg_stat_activity
       where datname = current_database() and state = 'active' and query like '%insert into subscription_periods%'
         and wait_event = 'PgSleep'`,
    );
    if (row) return row.pid;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the worker never reached the renewal');
}

const real = await realPostgresAvailable();
if (!real)
  console.warn(
    '[tests] subscriptions-crash SKIPPED: needs the real PostgreSQL server (a second process on the database).',
  );

describe.skipIf(!real)('a worker killed mid-renewal', () => {
  it('is charged exactly once after the restart', async () => {
    // Subscribed 31 days ago (on the injected clock), so the renewal is due now for the worker,
    // which runs on the real clock.
    const now = new Date();
    t.clock.set(new Date(now.getTime() - 31 * DAY));
    const partner = await t.partner();
    const user = await t.user({ points: 1000 });
    await t.services.subscriptions.create(
      { partnerId: partner.id, userId: user.id },
      { planName: 'Pro', amount: 100 },
    );
    t.clock.set(now);
    expect(await books(user.id)).toMatchObject({ balance: 900, charges: 1, periods: 1 });

    // The renewal's period row waits before it is written: the debit is done, the commit is not.
    await t.db.query(`create or replace function tian_test_pause() returns trigger language plpgsql as
      $$ begin perform pg_sleep(60); return new; end $$`);
    await t.db.query(
      'create trigger tian_test_pause before insert on subscription_periods for each row execute function tian_test_pause()',
    );
    await scanDue(t.services); // queues the renewal job; the worker process picks it up

    worker = spawn(process.execPath, ['--import', 'tsx', 'src/worker.ts', '--once'], {
      env: { ...process.env, NODE_ENV: 'test', DATABASE_URL: t.services.config.databaseUrl ?? '' },
      stdio: 'ignore',
    });
    const backend = await renewalInFlight();
    worker.kill('SIGKILL');
    // The kill drops the worker's connection; PostgreSQL aborts its transaction (ended here at
    // once instead of after the sleep).
    await t.db.query('select pg_terminate_backend($1)', [backend]);
    await t.db.query('drop trigger tian_test_pause on subscription_periods');
    expect(await books(user.id)).toMatchObject({ balance: 900, charges: 1, periods: 1 });

    // Restart: the next tick queues the renewal again and a worker runs it.
    await t.runDue();
    await t.runDue();
    const after = await books(user.id);
    expect(after).toMatchObject({ balance: 800, charges: 2, periods: 2 });
    expect(after.ledgerSum).toBe(after.balance);
  }, 120_000);
});
