import type { Handler } from '../http/operations.js';
import { actorOf, idempotencyKeyOf } from '../points/handlers.js';
import type { SubscriptionsService } from './service.js';

export const subscriptionHandlers = (subscriptions: SubscriptionsService) => {
  const createSubscription: Handler<'createSubscription'> = async ({ auth, body, headers }) => {
    const { body: created, replayed } = await subscriptions.create(actorOf(auth), {
      planName: body.planName,
      amount: body.amount,
      idempotencyKey: idempotencyKeyOf(headers, body.idempotencyKey),
    });
    const replay: Record<string, string> = replayed ? { 'Idempotent-Replayed': 'true' } : {};
    return { status: 201, body: created, headers: replay };
  };

  const listSubscriptions: Handler<'listSubscriptions'> = async ({ auth, query }) => ({
    status: 200,
    body: await subscriptions.list(actorOf(auth), query.limit ?? 20, query.cursor),
  });

  const getSubscription: Handler<'getSubscription'> = async ({ auth, path }) => ({
    status: 200,
    body: await subscriptions.get(actorOf(auth), path.subscriptionId),
  });

  const cancelSubscription: Handler<'cancelSubscription'> = async ({ auth, path, body }) => ({
    status: 200,
    body: await subscriptions.cancel(actorOf(auth), path.subscriptionId, {
      atPeriodEnd: body?.atPeriodEnd ?? false,
    }),
  });

  return { createSubscription, listSubscriptions, getSubscription, cancelSubscription };
};
