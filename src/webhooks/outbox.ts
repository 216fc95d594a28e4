import type { Sql } from '../db/database.js';
import { newId } from '../lib/ids.js';

export type EventType =
  | 'token.revoked'
  | 'token.expiring'
  | 'points.deducted'
  | 'points.refunded'
  | 'subscription.created'
  | 'subscription.renewed'
  | 'subscription.payment_failed'
  | 'subscription.canceled';

/**
 * Records a webhook event in the outbox, inside the caller's transaction, and queues one delivery
 * per enabled endpoint of the partner whose event filter includes the type. The event row is
 * written even when nobody listens, so the log is complete. Returns whether a delivery was queued.
 */
export async function enqueueEvent(
  tx: Sql,
  partnerId: number,
  type: EventType,
  payload: Record<string, unknown>,
): Promise<boolean> {
  const [row] = await tx.query<{ queued: string }>(
    `with ev as (
       insert into webhook_events (public_id, partner_id, type, payload) values ($1, $2, $3, $4) returning id
     ), d as (
       insert into webhook_deliveries (public_id, event_id, endpoint_id)
       select 'wd_' || substr(md5(random()::text || e.id::text || clock_timestamp()::text), 1, 26), ev.id, e.id
       from webhook_endpoints e, ev
       where e.partner_id = $2 and e.enabled and e.deleted_at is null and $3 = any(e.events)
       returning 1
     )
     select count(*) as queued from d`,
    [newId('evt'), partnerId, type, JSON.stringify(payload)],
  );
  return Number(row?.queued ?? 0) > 0;
}
