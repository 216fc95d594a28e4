import type { components } from '../../generated/types.js';
import type { Sql } from '../db/database.js';
import { addJob } from '../jobs/runner.js';
import { newId } from '../lib/ids.js';

export type EventType = components['schemas']['EventType'];

/** The background task that makes one delivery attempt (registered in src/jobs/tasks.ts). */
export const DELIVERY_TASK = 'deliverWebhook';
/** One pending job per delivery: queuing it again moves that job instead of adding another. */
export const deliveryJobKey = (deliveryId: string) => `webhook-delivery:${deliveryId}`;

/** Queues the job that attempts `deliveryId`, in the caller's transaction. */
export function queueDeliveryJob(tx: Sql, deliveryId: string, delayMs = 0): Promise<void> {
  return addJob(
    tx,
    DELIVERY_TASK,
    { deliveryId },
    { jobKey: deliveryJobKey(deliveryId), maxAttempts: 5, delayMs },
  );
}

export type RecordedEvent = {
  eventId: string;
  /** Internal ids of the deliveries now pending (enabled endpoints whose filter has the type). */
  pending: string[];
};

/**
 * Records a webhook event in the outbox, inside the caller's transaction, with one delivery per
 * endpoint of the partner whose event filter includes the type, and queues a job for each pending
 * one: the committed rows ARE the promise to deliver, whatever happens to this process next.
 * Endpoints that are disabled get a `failed` delivery instead (nothing is sent; `recover` can
 * resend it once they are enabled again). The event row is written even when nobody listens, so
 * the log is complete. Returns whether a delivery was queued.
 */
export async function enqueueEvent(
  tx: Sql,
  partnerId: number,
  type: EventType,
  payload: Record<string, unknown>,
): Promise<boolean> {
  return (await recordEvent(tx, partnerId, type, payload)).pending.length > 0;
}

/**
 * enqueueEvent, returning the event and its pending deliveries. With `holdbackMs` the caller makes
 * the first attempt itself right after commit (in-process); the deliveries' first scheduled attempt,
 * and their jobs, wait that long, so the two do not both send routinely, yet a crash right after the
 * commit still leaves a job that delivers.
 */
export async function recordEvent(
  tx: Sql,
  partnerId: number,
  type: EventType,
  payload: Record<string, unknown>,
  opts: { holdbackMs?: number } = {},
): Promise<RecordedEvent> {
  // The event's own timestamp (from the injected clock) is when it happened; retries count from it.
  const stamped = typeof payload.timestamp === 'string' ? new Date(payload.timestamp) : undefined;
  const at = stamped && !Number.isNaN(stamped.getTime()) ? stamped : undefined;
  const holdbackMs = opts.holdbackMs ?? 0;
  const eventId = newId('evt', at?.getTime());
  const rows = await tx.query<{ id: string; status: string }>(
    `with ev as (
       insert into webhook_events (public_id, partner_id, type, payload, body, created_at)
       values ($1, $2, $3, $4::text::jsonb, $4::text, coalesce($5::timestamptz, now())) returning id, created_at
     )
     insert into webhook_deliveries (public_id, event_id, endpoint_id, status, next_attempt_at, last_error, created_at)
     select 'wd_' || substr(md5(random()::text || e.id::text || clock_timestamp()::text), 1, 26), ev.id, e.id,
            case when e.enabled then 'pending' else 'failed' end,
            case when e.enabled then ev.created_at + $6::integer * interval '1 millisecond' end,
            case when e.enabled then null else 'endpoint disabled: nothing was sent' end,
            ev.created_at
     from webhook_endpoints e, ev
     where e.partner_id = $2 and e.deleted_at is null and $3 = any(e.events)
     returning id::text, status`,
    [eventId, partnerId, type, JSON.stringify(payload), at ?? null, holdbackMs],
  );
  const pending = rows.filter((r) => r.status === 'pending').map((r) => r.id);
  for (const id of pending) await queueDeliveryJob(tx, id, holdbackMs);
  return { eventId, pending };
}
