import type { Cluster } from './cluster.js';
import { log, tally, until } from './report.js';

const DAY = 86_400_000;
const SUBSCRIBERS = 120;
const PRICE = 100;

/**
 * Renewals due during a worker crash: SUBSCRIBERS subscriptions created 31 days ago (on the control
 * server's injected clock) are due now for the worker, which runs on the real clock. The worker is
 * SIGKILLed in the middle of renewing them (each renewal's period insert pauses 30 ms, so some
 * transactions are open at the kill), stays down while the tick is queued, and is restarted: every
 * subscription is then charged for its second month exactly once.
 */
export async function renewalsDuringWorkerCrash(c: Cluster, problems: string[]): Promise<void> {
  const { t } = c;
  const partner = await t.partner({ name: 'Reliability Subscriptions' });
  const now = new Date();
  t.clock.set(new Date(now.getTime() - 31 * DAY));
  const users: number[] = [];
  for (let i = 0; i < SUBSCRIBERS; i++) {
    const user = await t.user({ points: 1000 });
    await t.services.subscriptions.create(
      { partnerId: partner.id, userId: user.id },
      { planName: 'Pro', amount: PRICE },
    );
    users.push(user.id);
  }
  t.clock.set(now);

  const charges = async () => {
    const [row] = await t.db.query<{ n: string }>(
      `select count(*)::text as n from ledger_entries where type = 'subscription_charge' and user_id = any($1::bigint[])`,
      [users],
    );
    return Number(row?.n) - SUBSCRIBERS;
  };

  await t.db.query(`create or replace function reliability_pause() returns trigger language plpgsql as
    $$ begin perform pg_sleep(0.03); return new; end $$`);
  await t.db.query(
    'create trigger reliability_pause before insert on subscription_periods for each row execute function reliability_pause()',
  );
  try {
    await c.tick();
    const started = await until(async () => (await charges()) >= 10, 60_000, 20);
    if (!started) problems.push('the worker renewed nothing within 60 s');
    await c.killWorker();
    tally.faults++;
  } finally {
    await t.db.query('drop trigger if exists reliability_pause on subscription_periods');
  }
  const atKill = await charges();
  log(`  worker SIGKILLed after ${atKill} of ${SUBSCRIBERS} renewals; the tick is queued while it is down`);
  await c.tick();

  await c.startWorker();
  const done = await until(
    async () => {
      await c.tick();
      return (await charges()) >= SUBSCRIBERS;
    },
    90_000,
    1_000,
  );
  if (!done)
    problems.push(`only ${await charges()} of ${SUBSCRIBERS} renewals charged within 90 s of the restart`);

  const books = await t.db.query<{
    id: string;
    balance: number;
    charges: string;
    periods: string;
    sum: string;
  }>(
    `select u.id::text, u.balance,
       (select count(*) from ledger_entries where user_id = u.id and type = 'subscription_charge')::text as charges,
       (select count(*) from subscription_periods where user_id = u.id)::text as periods,
       (select coalesce(sum(amount), 0) from ledger_entries where user_id = u.id)::text as sum
     from users u where u.id = any($1::bigint[])`,
    [users],
  );
  let twice = 0;
  for (const b of books) {
    if (Number(b.charges) > 2) twice++;
    if (
      b.charges !== '2' ||
      b.periods !== '2' ||
      b.balance !== 1000 - 2 * PRICE ||
      String(b.balance) !== b.sum
    )
      problems.push(
        `user ${b.id}: ${b.charges} charges, ${b.periods} periods, balance ${b.balance}, ledger ${b.sum}`,
      );
  }
  tally.duplicated += twice;
  log(`  after the restart: ${await charges()} of ${SUBSCRIBERS} renewals charged, ${twice} charged twice`);
}
