import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addJob } from '../src/jobs/runner.js';
import { scanDue } from '../src/jobs/tasks.js';
import * as ledger from '../src/points/ledger.js';
import { periodStart } from '../src/subscriptions/billing-calendar.js';
import { RENEW_TASK, type RenewJob, runRenewal } from '../src/subscriptions/renewal.js';
import { startTestServer, type TestServer } from './support/harness.js';
import { realPostgresAvailable } from './support/pg.js';

// Renewals, dunning and exactly-once charging, driven by the injected clock (no sleeps): month ends
// and leap years over years of renewals, retries +1/+3/+7 days, double-enqueued jobs, re-run clocks,
// racing workers, a crash between the debit and the commit, and catching up after downtime.

// Racing workers only mean something with many real connections (PGlite is one session).
const real = await realPostgresAvailable();
if (!real)
  console.warn(
    '[tests] subscriptions-renewals: the racing-workers test is SKIPPED: needs the real PostgreSQL server.',
  );

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t?.stop());

const DAY = 86_400_000;
const at = (iso: string) => new Date(iso);

/** A user with `points` and a subscription of `amount` a month started at `start`. */
async function subscribe(start: string, points: number, amount: number) {
  t.clock.set(at(start));
  const partner = await t.partner();
  const user = await t.user({ points });
  const { body } = await t.services.subscriptions.create(
    { partnerId: partner.id, userId: user.id },
    { planName: 'Pro monthly', amount },
  );
  const [row] = await t.db.query<{ id: string }>('select id from subscriptions where public_id = $1', [
    body.subscriptionId,
  ]);
  return { partner, user, publicId: body.subscriptionId, id: String(row?.id) };
}

async function state(userId: number, publicId: string) {
  return t.services.subscriptions.get(
    {
      userId,
      partnerId: Number(
        (
          await t.db.query<{ partner_id: number }>(
            'select partner_id from subscriptions where public_id = $1',
            [publicId],
          )
        )[0]?.partner_id,
      ),
    },
    publicId,
  );
}

/** The periods charged, their ledger charges, and whether the ledger still sums to the balance. */
async function books(userId: number) {
  const periods = await t.db.query<{ period_start: Date }>(
    'select period_start from subscription_periods where user_id = $1 order by period_start',
    [userId],
  );
  const [row] = await t.db.query<{ balance: number; ledger_sum: string; charges: string }>(
    `select u.balance,
       (select coalesce(sum(amount), 0) from ledger_entries where user_id = u.id) as ledger_sum,
       (select count(*) from ledger_entries where user_id = u.id and type = 'subscription_charge') as charges
     from users u where u.id = $1`,
    [userId],
  );
  return {
    periodStarts: periods.map((p) => new Date(p.period_start).toISOString()),
    charges: Number(row?.charges),
    balance: row?.balance,
    ledgerMatchesBalance: Number(row?.ledger_sum) === row?.balance,
  };
}

async function eventTypes(partnerId: number): Promise<string[]> {
  const rows = await t.db.query<{ type: string }>(
    'select type from webhook_events where partner_id = $1 order by id',
    [partnerId],
  );
  return rows.map((r) => r.type);
}

const dueJob = (s: { user: { id: number }; id: string }, periodStartIso: string): RenewJob => ({
  userId: s.user.id,
  subscriptionId: s.id,
  periodStart: periodStartIso,
});

describe('month ends and leap years: every renewal on its clamped anchor day, each charged exactly once', () => {
  for (const anchor of ['2027-01-31T10:00:00.000Z', '2027-01-30T08:30:00.000Z', '2027-01-29T23:45:00.000Z']) {
    it(`a subscription anchored on ${anchor.slice(0, 10)} renews for 26 months on the right days, once each`, async () => {
      const s = await subscribe(anchor, 10_000, 10);
      const expected = [anchor];
      for (let n = 1; n <= 26; n++) {
        const due = periodStart(at(anchor), n);
        // A minute early: nothing happens.
        t.clock.set(new Date(due.getTime() - 60_000));
        await t.runDue();
        expect((await books(s.user.id)).charges, `before renewal ${n}`).toBe(n);
        // On time, and the tick runs twice at the same now (a re-run clock): one charge.
        t.clock.set(due);
        await t.runDue();
        await t.runDue();
        expected.push(due.toISOString());
        const b = await books(s.user.id);
        expect(b.charges, `renewal ${n}`).toBe(n + 1);
        expect(b.periodStarts).toEqual(expected);
      }
      const b = await books(s.user.id);
      expect(b).toMatchObject({ balance: 10_000 - 27 * 10, ledgerMatchesBalance: true });
      const events = await eventTypes(s.partner.id);
      expect(events.filter((e) => e === 'subscription.renewed')).toHaveLength(26);
      expect(await state(s.user.id, s.publicId)).toMatchObject({
        status: 'active',
        currentPeriodStart: periodStart(at(anchor), 26).toISOString(),
        nextChargeAt: periodStart(at(anchor), 27).toISOString(),
      });
    });
  }

  it('the January 31 anchor bills Feb 28, Mar 31, Apr 30 and Feb 29 in 2028', async () => {
    const s = await subscribe('2027-01-31T10:00:00.000Z', 10_000, 1);
    t.clock.set(at('2028-03-31T10:00:00.000Z'));
    await t.runDue();
    const days = (await books(s.user.id)).periodStarts.map((d) => d.slice(0, 10));
    expect(days).toEqual([
      '2027-01-31',
      '2027-02-28',
      '2027-03-31',
      '2027-04-30',
      '2027-05-31',
      '2027-06-30',
      '2027-07-31',
      '2027-08-31',
      '2027-09-30',
      '2027-10-31',
      '2027-11-30',
      '2027-12-31',
      '2028-01-31',
      '2028-02-29',
      '2028-03-31',
    ]);
  });
});

describe('catching up after downtime', () => {
  it('a clock that jumps three months charges the three renewals that fell due, once each, then waits', async () => {
    const s = await subscribe('2027-01-31T10:00:00.000Z', 1000, 100);
    t.clock.set(at('2027-05-15T00:00:00.000Z'));
    await t.runDue();
    await t.runDue();
    const b = await books(s.user.id);
    expect(b.periodStarts).toEqual([
      '2027-01-31T10:00:00.000Z',
      '2027-02-28T10:00:00.000Z',
      '2027-03-31T10:00:00.000Z',
      '2027-04-30T10:00:00.000Z',
    ]);
    expect(b).toMatchObject({ charges: 4, balance: 600, ledgerMatchesBalance: true });
    expect(await state(s.user.id, s.publicId)).toMatchObject({
      status: 'active',
      currentPeriodStart: '2027-04-30T10:00:00.000Z',
      nextChargeAt: '2027-05-31T10:00:00.000Z',
    });
    expect((await eventTypes(s.partner.id)).filter((e) => e === 'subscription.renewed')).toHaveLength(3);
  });
});

describe('dunning: a renewal the user cannot pay', () => {
  it('goes past_due and is retried 1, 3 and 7 days after the due date, then canceled', async () => {
    const s = await subscribe('2027-01-31T10:00:00.000Z', 100, 100);
    const due = at('2027-02-28T10:00:00.000Z');
    const expectState = async (status: string, nextChargeAt: string | null) =>
      expect(await state(s.user.id, s.publicId)).toMatchObject({ status, nextChargeAt });

    t.clock.set(due);
    await t.runDue();
    await expectState('past_due', '2027-03-01T10:00:00.000Z');
    expect(await eventTypes(s.partner.id)).toEqual(['subscription.created', 'subscription.payment_failed']);

    // Between retries nothing happens, however often the tick runs.
    t.clock.set(new Date(due.getTime() + 0.5 * DAY));
    await t.runDue();
    await t.runDue();
    expect(await eventTypes(s.partner.id)).toHaveLength(2);

    t.clock.set(new Date(due.getTime() + 1 * DAY));
    await t.runDue();
    await expectState('past_due', '2027-03-03T10:00:00.000Z');
    t.clock.set(new Date(due.getTime() + 3 * DAY));
    await t.runDue();
    await expectState('past_due', '2027-03-07T10:00:00.000Z');
    t.clock.set(new Date(due.getTime() + 7 * DAY));
    await t.runDue();
    await t.runDue();
    const ended = await state(s.user.id, s.publicId);
    expect(ended).toMatchObject({
      status: 'canceled',
      nextChargeAt: null,
      canceledAt: '2027-03-07T10:00:00.000Z',
      endedAt: '2027-03-07T10:00:00.000Z',
      currentPeriodEnd: '2027-02-28T10:00:00.000Z',
    });
    expect(await eventTypes(s.partner.id)).toEqual([
      'subscription.created',
      'subscription.payment_failed',
      'subscription.payment_failed',
      'subscription.payment_failed',
      'subscription.payment_failed',
      'subscription.canceled',
    ]);
    // Never charged again, even when the points come back.
    await t.db.transaction((tx) =>
      ledger.credit(tx, { userId: s.user.id, amount: 500, description: 'top up', now: t.clock.now() }),
    );
    t.clock.set(at('2027-06-01T00:00:00.000Z'));
    await t.runDue();
    expect(await books(s.user.id)).toMatchObject({ charges: 1, balance: 500, ledgerMatchesBalance: true });
  });

  it('a retry that succeeds makes it active again, with the period still starting on the due date', async () => {
    const s = await subscribe('2027-01-31T10:00:00.000Z', 100, 100);
    t.clock.set(at('2027-02-28T10:00:00.000Z'));
    await t.runDue();
    expect((await state(s.user.id, s.publicId)).status).toBe('past_due');
    await t.db.transaction((tx) =>
      ledger.credit(tx, { userId: s.user.id, amount: 150, description: 'top up', now: t.clock.now() }),
    );

    t.clock.set(at('2027-03-01T10:00:00.000Z'));
    await t.runDue();
    expect(await state(s.user.id, s.publicId)).toMatchObject({
      status: 'active',
      currentPeriodStart: '2027-02-28T10:00:00.000Z',
      currentPeriodEnd: '2027-03-31T10:00:00.000Z',
      nextChargeAt: '2027-03-31T10:00:00.000Z',
    });
    expect(await eventTypes(s.partner.id)).toEqual([
      'subscription.created',
      'subscription.payment_failed',
      'subscription.renewed',
    ]);
    // The retry schedule starts afresh for the next period: fails on Mar 31, retried Apr 1.
    t.clock.set(at('2027-03-31T10:00:00.000Z'));
    await t.runDue();
    expect(await state(s.user.id, s.publicId)).toMatchObject({
      status: 'past_due',
      nextChargeAt: '2027-04-01T10:00:00.000Z',
    });
    expect(await books(s.user.id)).toMatchObject({ charges: 2, balance: 50, ledgerMatchesBalance: true });
  });

  it('takes its retry days from SUBSCRIPTION_RETRY_DAYS', async () => {
    const other = await startTestServer({ SUBSCRIPTION_RETRY_DAYS: '2' });
    try {
      other.clock.set(at('2027-01-31T10:00:00.000Z'));
      const partner = await other.partner();
      const user = await other.user({ points: 5 });
      const { body } = await other.services.subscriptions.create(
        { partnerId: partner.id, userId: user.id },
        { planName: 'P', amount: 5 },
      );
      other.clock.set(at('2027-02-28T10:00:00.000Z'));
      await other.runDue();
      const actor = { partnerId: partner.id, userId: user.id };
      expect(await other.services.subscriptions.get(actor, body.subscriptionId)).toMatchObject({
        status: 'past_due',
        nextChargeAt: '2027-03-02T10:00:00.000Z',
      });
      other.clock.set(at('2027-03-02T10:00:00.000Z'));
      await other.runDue();
      expect((await other.services.subscriptions.get(actor, body.subscriptionId)).status).toBe('canceled');
    } finally {
      await other.stop();
    }
  });
});

describe('exactly once per period, whatever runs twice', () => {
  it('the same renewal job enqueued twice (no job key) charges once', async () => {
    const s = await subscribe('2027-01-31T10:00:00.000Z', 1000, 100);
    t.clock.set(at('2027-02-28T10:00:00.000Z'));
    const job = dueJob(s, '2027-02-28T10:00:00.000Z');
    await t.db.transaction(async (tx) => {
      await addJob(tx, RENEW_TASK, job);
      await addJob(tx, RENEW_TASK, job);
    });
    await t.drainJobs();
    expect(await runRenewal(t.services, job)).toBe('skipped');
    expect(await books(s.user.id)).toMatchObject({ charges: 2, balance: 800, ledgerMatchesBalance: true });
    expect((await eventTypes(s.partner.id)).filter((e) => e === 'subscription.renewed')).toHaveLength(1);
  });

  it('the scan run twice at the same now, before and after the job ran, charges once', async () => {
    const s = await subscribe('2027-01-31T10:00:00.000Z', 1000, 100);
    t.clock.set(at('2027-02-28T10:00:00.000Z'));
    await scanDue(t.services);
    await scanDue(t.services);
    const [{ jobs } = { jobs: '0' }] = await t.db.query<{ jobs: string }>(
      `select count(*) as jobs from graphile_worker.jobs where key like $1 || ':' || $2 || ':%'`,
      [RENEW_TASK, s.id],
    );
    expect(Number(jobs)).toBe(1);
    await t.drainJobs();
    await t.runDue();
    expect(await books(s.user.id)).toMatchObject({ charges: 2, balance: 800 });
  });

  it.skipIf(!real)(
    'two workers racing on one due renewal (two transactions on the real PostgreSQL) charge once',
    async () => {
      const s = await subscribe('2027-01-31T10:00:00.000Z', 1000, 100);
      t.clock.set(at('2027-02-28T10:00:00.000Z'));
      const job = dueJob(s, '2027-02-28T10:00:00.000Z');
      const outcomes = await Promise.all(Array.from({ length: 6 }, () => runRenewal(t.services, job)));
      expect(outcomes.sort()).toEqual(['renewed', 'skipped', 'skipped', 'skipped', 'skipped', 'skipped']);
      // And two job runners draining duplicated jobs at once.
      t.clock.set(at('2027-03-31T10:00:00.000Z'));
      const next = dueJob(s, '2027-03-31T10:00:00.000Z');
      await t.db.transaction(async (tx) => {
        for (let i = 0; i < 4; i++) await addJob(tx, RENEW_TASK, next);
      });
      await Promise.all([t.drainJobs(), t.drainJobs()]);
      expect(await books(s.user.id)).toMatchObject({ charges: 3, balance: 700, ledgerMatchesBalance: true });
      expect((await eventTypes(s.partner.id)).filter((e) => e === 'subscription.renewed')).toHaveLength(2);
    },
  );

  it('a job for a period already charged, or not yet due, does nothing', async () => {
    const s = await subscribe('2027-01-31T10:00:00.000Z', 1000, 100);
    t.clock.set(at('2027-02-27T10:00:00.000Z'));
    expect(await runRenewal(t.services, dueJob(s, '2027-02-28T10:00:00.000Z'))).toBe('skipped');
    expect(await runRenewal(t.services, dueJob(s, '2027-01-31T10:00:00.000Z'))).toBe('skipped');
    expect((await books(s.user.id)).charges).toBe(1);
  });

  it('if the period row already exists, the second charge fails on its unique key and its debit rolls back', async () => {
    const s = await subscribe('2027-01-31T10:00:00.000Z', 1000, 100);
    const [first] = await t.db.query<{ ledger_entry_id: string }>(
      'select ledger_entry_id from subscription_periods where subscription_id = $1',
      [s.id],
    );
    // A period row for Feb 28 that the subscription itself does not know about (as if a buggy path wrote it).
    await t.db.query(
      'alter table subscription_periods drop constraint subscription_periods_ledger_entry_id_key',
    );
    try {
      await t.db.query(
        `insert into subscription_periods (user_id, subscription_id, period_start, period_end, ledger_entry_id, charged_at)
         values ($1, $2, '2027-02-28T10:00:00Z', '2027-03-31T10:00:00Z', $3, now())`,
        [s.user.id, s.id, first?.ledger_entry_id],
      );
      t.clock.set(at('2027-02-28T10:00:00.000Z'));
      await expect(runRenewal(t.services, dueJob(s, '2027-02-28T10:00:00.000Z'))).rejects.toThrow(
        /duplicate key/,
      );
      expect(await books(s.user.id)).toMatchObject({ charges: 1, balance: 900, ledgerMatchesBalance: true });
    } finally {
      await t.db.query('delete from subscription_periods where subscription_id = $1 and period_start = $2', [
        s.id,
        '2027-02-28T10:00:00Z',
      ]);
      await t.db.query(
        'alter table subscription_periods add constraint subscription_periods_ledger_entry_id_key unique (ledger_entry_id)',
      );
    }
  });

  it('a renewal that crashes after its debit (before commit) leaves nothing, and its retry charges once', async () => {
    const s = await subscribe('2027-01-31T10:00:00.000Z', 1000, 100);
    // The failure is injected in the database: the period insert, which follows the debit in the
    // same transaction, raises while the switch is on.
    await t.db.query('create table test_crash_switch (on_ boolean not null)');
    await t.db.query('insert into test_crash_switch values (true)');
    await t.db.query(`
      create function test_crash_after_debit() returns trigger language plpgsql as $$
      begin
        if exists (select 1 from test_crash_switch where on_) then
          raise exception 'injected crash between the debit and the commit';
        end if;
        return new;
      end $$`);
    await t.db.query(
      'create trigger test_crash_after_debit before insert on subscription_periods for each row execute function test_crash_after_debit()',
    );
    try {
      t.clock.set(at('2027-02-28T10:00:00.000Z'));
      await expect(runRenewal(t.services, dueJob(s, '2027-02-28T10:00:00.000Z'))).rejects.toThrow(
        /injected crash/,
      );
      // The same through the job runner: the job fails (graphile-worker retries it later).
      await t.runDue();
      expect(await books(s.user.id)).toMatchObject({ charges: 1, balance: 900, ledgerMatchesBalance: true });
      expect((await state(s.user.id, s.publicId)).currentPeriodEnd).toBe('2027-02-28T10:00:00.000Z');

      // The worker comes back: the next tick re-queues the renewal at once, and it charges once.
      await t.db.query('update test_crash_switch set on_ = false');
      t.clock.advance(60_000);
      await t.runDue();
      await t.runDue();
      expect(await books(s.user.id)).toMatchObject({ charges: 2, balance: 800, ledgerMatchesBalance: true });
      expect((await eventTypes(s.partner.id)).filter((e) => e === 'subscription.renewed')).toHaveLength(1);
    } finally {
      await t.db.query('drop trigger test_crash_after_debit on subscription_periods');
      await t.db.query('drop function test_crash_after_debit');
      await t.db.query('drop table test_crash_switch');
    }
  });
});
