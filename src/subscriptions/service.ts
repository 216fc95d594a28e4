import type { components } from '../../generated/types.js';
import type { Database } from '../db/database.js';
import { BadRequest, Conflict, InsufficientPoints, NotFound } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { decodeCursor, encodeCursor, newId } from '../lib/ids.js';
import { idempotent, type Stored } from '../points/idempotency.js';
import * as ledger from '../points/ledger.js';
import { period } from './billing-calendar.js';
import { emitSubscriptionEvent, presentSubscription } from './presenter.js';
import {
  findSubscription,
  insertSubscription,
  listSubscriptions,
  listUserSubscriptions,
  recordPeriod,
  type Subscription,
  saveSubscription,
} from './store.js';

type Schemas = components['schemas'];
/** The (partner, user) a partner call acts for. */
export type Actor = { partnerId: number; userId: number };
export type WalletSubscription = Subscription & { partnerName: string };

/** Subscriptions as partners start, read and cancel them, and as users see and cancel them in the wallet. */
export class SubscriptionsService {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
  ) {}

  /**
   * Charges the first month and writes the subscription, its first period and `subscription.created`
   * in one transaction: a user who cannot pay gets a 402 and nothing exists afterwards.
   */
  async create(
    actor: Actor,
    input: { planName: string; amount: number; idempotencyKey?: string | undefined },
  ): Promise<Stored<Schemas['Subscription']>> {
    return this.db.transaction((tx) =>
      idempotent(
        tx,
        { ...actor, key: input.idempotencyKey },
        'createSubscription',
        { planName: input.planName, amount: input.amount },
        async () => {
          const now = this.clock.now();
          // The creation instant is the anchor: period 0 starts now.
          const first = period(now, 0);
          const charge = await ledger.debit(tx, {
            ...actor,
            amount: input.amount,
            type: 'subscription_charge',
            description: `${input.planName}: ${first.start.toISOString().slice(0, 10)} to ${first.end.toISOString().slice(0, 10)}`,
            now,
          });
          if (!charge)
            throw new InsufficientPoints(await ledger.currentBalance(tx, actor.userId), input.amount);
          const sub = await insertSubscription(tx, {
            ...actor,
            publicId: newId('sub', now.getTime()),
            planName: input.planName,
            amount: input.amount,
            status: 'active',
            anchorAt: now,
            periodsPaid: 1,
            currentPeriodStart: first.start,
            currentPeriodEnd: first.end,
            nextAttemptAt: first.end,
            createdAt: now,
          });
          await recordPeriod(tx, {
            userId: sub.userId,
            subscriptionId: sub.id,
            start: first.start,
            end: first.end,
            ledgerEntryId: charge.id,
            chargedAt: now,
          });
          await emitSubscriptionEvent(tx, sub, 'subscription.created', now, charge.publicId);
          return presentSubscription(sub);
        },
      ),
    );
  }

  async get(actor: Actor, subscriptionId: string): Promise<Schemas['Subscription']> {
    const sub = await findSubscription(this.db, { ...actor, publicId: subscriptionId });
    if (!sub) throw subscriptionNotFound(subscriptionId);
    return presentSubscription(sub);
  }

  async list(actor: Actor, limit: number, cursor: string | undefined): Promise<Schemas['SubscriptionList']> {
    const before = cursor === undefined ? null : decodeCursor(cursor);
    if (before === undefined)
      throw new BadRequest('invalid_cursor', 'The cursor is not one this API returned.', 'cursor');
    const rows = await listSubscriptions(this.db, { ...actor, before, limit: limit + 1 });
    const page = rows.slice(0, limit);
    const hasMore = rows.length > limit;
    const last = page[page.length - 1];
    return {
      data: page.map(presentSubscription),
      hasMore,
      nextCursor: hasMore && last ? encodeCursor(last.id) : null,
    };
  }

  /** The partner cancels, now or at period end (see `cancelLocked`). */
  async cancel(
    actor: Actor,
    subscriptionId: string,
    opts: { atPeriodEnd: boolean },
  ): Promise<Schemas['Subscription']> {
    return this.db.transaction(async (tx) => {
      const sub = await findSubscription(tx, { ...actor, publicId: subscriptionId }, { lock: true });
      if (!sub) throw subscriptionNotFound(subscriptionId);
      if (sub.status === 'canceled') {
        throw new Conflict(
          'subscription_already_canceled',
          `Subscription ${subscriptionId} already ended on ${sub.endedAt?.toISOString()}.`,
        );
      }
      return presentSubscription(await cancelLocked(tx, sub, opts.atPeriodEnd, this.clock.now()));
    });
  }

  /** Every subscription of the user, with every partner (the wallet's Subscriptions page). */
  listForWallet(userId: number): Promise<WalletSubscription[]> {
    return listUserSubscriptions(this.db, userId);
  }

  /**
   * The user cancels in their wallet. Undefined when the user has no such subscription; one that
   * has already ended is left as it is.
   */
  async cancelFromWallet(
    userId: number,
    subscriptionId: string,
    opts: { atPeriodEnd: boolean },
  ): Promise<Subscription | undefined> {
    return this.db.transaction(async (tx) => {
      const sub = await findSubscription(tx, { userId, publicId: subscriptionId }, { lock: true });
      if (!sub || sub.status === 'canceled') return sub;
      return cancelLocked(tx, sub, opts.atPeriodEnd, this.clock.now());
    });
  }
}

/**
 * Cancels a running subscription whose row the caller has locked. At period end: it stays active
 * until `currentPeriodEnd`, is not renewed, and the renewal job ends it then. Now (or when past due,
 * which has no paid period left): it ends at once. `subscription.canceled` is sent when it ends.
 */
async function cancelLocked(
  tx: Parameters<typeof saveSubscription>[0],
  sub: Subscription,
  atPeriodEnd: boolean,
  now: Date,
): Promise<Subscription> {
  if (atPeriodEnd && sub.status === 'active') {
    if (sub.cancelAtPeriodEnd) return sub;
    const ending: Subscription = { ...sub, cancelAtPeriodEnd: true, canceledAt: now };
    await saveSubscription(tx, ending);
    return ending;
  }
  const ended: Subscription = {
    ...sub,
    status: 'canceled',
    nextAttemptAt: null,
    canceledAt: sub.canceledAt ?? now,
    endedAt: now,
  };
  await saveSubscription(tx, ended);
  await emitSubscriptionEvent(tx, ended, 'subscription.canceled', now);
  return ended;
}

const subscriptionNotFound = (id: string) =>
  new NotFound('subscription_not_found', `No subscription ${id} for this user and partner.`);
