import type { components } from '../../generated/types.js';
import type { Sql } from '../db/database.js';
import { enqueueEvent } from '../webhooks/outbox.js';
import type { Subscription } from './store.js';

type Schemas = components['schemas'];

/** The wire form of a subscription (openapi.yaml `Subscription`); the row never goes out as it is. */
export function presentSubscription(s: Subscription): Schemas['Subscription'] {
  // No charge follows once it has ended or when it ends with the paid period.
  const charging = s.status !== 'canceled' && !s.cancelAtPeriodEnd;
  return {
    subscriptionId: s.publicId,
    status: s.status,
    planName: s.planName,
    amount: s.amount,
    currentPeriodStart: s.currentPeriodStart.toISOString(),
    currentPeriodEnd: s.currentPeriodEnd.toISOString(),
    nextChargeAt: charging && s.nextAttemptAt ? s.nextAttemptAt.toISOString() : null,
    cancelAtPeriodEnd: s.cancelAtPeriodEnd,
    canceledAt: s.canceledAt?.toISOString() ?? null,
    endedAt: s.endedAt?.toISOString() ?? null,
    createdAt: s.createdAt.toISOString(),
  };
}

type SubscriptionEventType = Schemas['SubscriptionEvent']['event'];

/** Queues a `subscription.*` webhook event for the subscription's partner, in the caller's transaction. */
export async function emitSubscriptionEvent(
  tx: Sql,
  s: Subscription,
  event: SubscriptionEventType,
  at: Date,
  transactionId: string | null = null,
): Promise<void> {
  await enqueueEvent(tx, s.partnerId, event, {
    event,
    timestamp: at.toISOString(),
    userId: s.userId,
    transactionId,
    subscription: presentSubscription(s),
  } satisfies Schemas['SubscriptionEvent']);
}
