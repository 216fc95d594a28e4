import type { Services } from '../container.js';
import type { Sql } from '../db/database.js';
import { addJob } from '../jobs/runner.js';
import * as ledger from '../points/ledger.js';
import { daysAfter, period } from './billing-calendar.js';
import { emitSubscriptionEvent } from './presenter.js';
import {
  dueSubscriptions,
  lockSubscription,
  recordPeriod,
  type Subscription,
  saveSubscription,
} from './store.js';

export const RENEW_TASK = 'subscriptions.renew';

/** A renewal job: one subscription's period (named by its start) that fell due. */
export type RenewJob = { userId: number; subscriptionId: string; periodStart: string };

export type RenewOutcome =
  /** The period was charged: `active`, `subscription.renewed`. */
  | 'renewed'
  /** The charge failed and a retry is scheduled: `past_due`, `subscription.payment_failed`. */
  | 'payment_failed'
  /** The last retry failed: `canceled` (`subscription.payment_failed`, then `subscription.canceled`). */
  | 'canceled'
  /** It was set to end with its period, and now has: `subscription.canceled`. */
  | 'ended'
  /** Nothing to do: already charged, not due yet, canceled, or a stale job. */
  | 'skipped';

/**
 * The one step of a subscription's life at a period boundary, in the caller's transaction: charge
 * the period due (ledger debit + period row + event), or record a failed attempt, or end it.
 *
 * Exactly once per period: the subscription row is locked first, so concurrent runs of the same job
 * (a double enqueue, two workers, a re-run clock) queue behind each other and every later one finds
 * the period charged and does nothing. Behind the lock, the period row's primary key refuses a
 * second charge of a period in any case, rolling its debit back. A crash before commit leaves no
 * trace at all, so the retried job charges once.
 */
export async function renewOne(
  tx: Sql,
  job: RenewJob,
  opts: { now: Date; retryDays: readonly number[] },
): Promise<{ outcome: RenewOutcome; subscription?: Subscription }> {
  const { now } = opts;
  const sub = await lockSubscription(tx, job.userId, job.subscriptionId);
  if (!sub || sub.status === 'canceled') return { outcome: 'skipped' };
  // The job names the period it was queued for; once that period is charged the job is stale.
  if (sub.currentPeriodEnd.toISOString() !== job.periodStart) return { outcome: 'skipped' };
  if (!sub.nextAttemptAt || sub.nextAttemptAt > now) return { outcome: 'skipped' };

  if (sub.cancelAtPeriodEnd) {
    const ended: Subscription = {
      ...sub,
      status: 'canceled',
      nextAttemptAt: null,
      endedAt: sub.currentPeriodEnd,
    };
    await saveSubscription(tx, ended);
    await emitSubscriptionEvent(tx, ended, 'subscription.canceled', now);
    return { outcome: 'ended', subscription: ended };
  }

  const due = period(sub.anchorAt, sub.periodsPaid);
  const charge = await ledger.debit(tx, {
    userId: sub.userId,
    partnerId: sub.partnerId,
    amount: sub.amount,
    type: 'subscription_charge',
    description: chargeDescription(sub.planName, due),
    now,
  });
  if (charge) {
    await recordPeriod(tx, {
      userId: sub.userId,
      subscriptionId: sub.id,
      start: due.start,
      end: due.end,
      ledgerEntryId: charge.id,
      chargedAt: now,
    });
    // A period paid by a retry still starts on its due date: the anchor never moves.
    const renewed: Subscription = {
      ...sub,
      status: 'active',
      periodsPaid: sub.periodsPaid + 1,
      currentPeriodStart: due.start,
      currentPeriodEnd: due.end,
      nextAttemptAt: due.end,
      failedAttempts: 0,
    };
    await saveSubscription(tx, renewed);
    await emitSubscriptionEvent(tx, renewed, 'subscription.renewed', now, charge.publicId);
    return { outcome: 'renewed', subscription: renewed };
  }

  // Retries are counted from the due date that failed (+1, +3, +7 days by default).
  const retryIn = opts.retryDays[sub.failedAttempts];
  if (retryIn !== undefined) {
    const pastDue: Subscription = {
      ...sub,
      status: 'past_due',
      failedAttempts: sub.failedAttempts + 1,
      nextAttemptAt: daysAfter(due.start, retryIn),
    };
    await saveSubscription(tx, pastDue);
    await emitSubscriptionEvent(tx, pastDue, 'subscription.payment_failed', now);
    return { outcome: 'payment_failed', subscription: pastDue };
  }
  const canceled: Subscription = {
    ...sub,
    status: 'canceled',
    failedAttempts: sub.failedAttempts + 1,
    nextAttemptAt: null,
    canceledAt: now,
    endedAt: now,
  };
  await saveSubscription(tx, canceled);
  await emitSubscriptionEvent(tx, canceled, 'subscription.payment_failed', now);
  await emitSubscriptionEvent(tx, canceled, 'subscription.canceled', now);
  return { outcome: 'canceled', subscription: canceled };
}

const day = (d: Date) => d.toISOString().slice(0, 10);
const chargeDescription = (planName: string, p: { start: Date; end: Date }) =>
  `${planName}: ${day(p.start)} to ${day(p.end)}`;

/** Queues the renewal job of the subscription's period due next, once per (subscription, period). */
export async function queueRenewal(
  tx: Sql,
  sub: Pick<Subscription, 'id' | 'userId' | 'currentPeriodEnd'>,
): Promise<void> {
  const job: RenewJob = {
    userId: sub.userId,
    subscriptionId: sub.id,
    periodStart: sub.currentPeriodEnd.toISOString(),
  };
  await addJob(tx, RENEW_TASK, job, { jobKey: `${RENEW_TASK}:${job.subscriptionId}:${job.periodStart}` });
}

function parseJob(payload: unknown): RenewJob {
  const p = payload as Partial<RenewJob> | null;
  if (
    typeof p?.userId !== 'number' ||
    typeof p.subscriptionId !== 'string' ||
    typeof p.periodStart !== 'string'
  ) {
    throw new Error(`${RENEW_TASK}: malformed payload ${JSON.stringify(payload)}`);
  }
  return { userId: p.userId, subscriptionId: p.subscriptionId, periodStart: p.periodStart };
}

/**
 * The `subscriptions.renew` task: renewOne in its own transaction at the injected clock's now. When
 * the next step is already due too (the server was down across several due dates or retries), its
 * job is queued in the same transaction, so a catch-up goes period by period, each charged once.
 */
export async function runRenewal(s: Services, payload: unknown): Promise<RenewOutcome> {
  const job = parseJob(payload);
  const now = s.clock.now();
  return s.db.transaction(async (tx) => {
    const { outcome, subscription } = await renewOne(tx, job, {
      now,
      retryDays: s.config.subscriptionRetryDays,
    });
    if (subscription?.nextAttemptAt && subscription.nextAttemptAt <= now)
      await queueRenewal(tx, subscription);
    return outcome;
  });
}

/** The scanner (every minute, via scanDue): queues a renewal job for each subscription that fell due. */
export async function scanDueRenewals(s: Services, now: Date): Promise<void> {
  const BATCH = 500;
  let afterId = '0';
  for (;;) {
    const batch = await s.db.transaction(async (tx) => {
      const rows = await dueSubscriptions(tx, { now, afterId, limit: BATCH });
      for (const sub of rows) await queueRenewal(tx, sub);
      return rows;
    });
    const last = batch[batch.length - 1];
    if (!last || batch.length < BATCH) return;
    afterId = last.id;
  }
}
