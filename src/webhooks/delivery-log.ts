import type { components } from '../../generated/types.js';
import type { Sql } from '../db/database.js';
import { BadRequest, Conflict, NotFound, Unprocessable } from '../errors/index.js';
import { decodeCursor, encodeCursor, newId } from '../lib/ids.js';
import { type EndpointRow, findEndpoint } from './endpoints.js';
import { type EventType, queueDeliveryJob } from './outbox.js';

type Schemas = components['schemas'];

type DeliveryRow = {
  id: string;
  public_id: string;
  endpoint_public_id: string;
  event_public_id: string;
  event_type: EventType;
  status: Schemas['DeliveryStatus'];
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  last_attempt_at: string | Date | null;
  next_attempt_at: string | Date | null;
  delivered_at: string | Date | null;
  created_at: string | Date;
};

type AttemptRow = {
  attempt: number;
  attempted_at: string | Date;
  status_code: number | null;
  latency_ms: number;
  error: string | null;
  response_body: string | null;
};

/** Deliveries as the partner sees them: only to its endpoints that are not deleted. */
const selectDeliveries = (
  extraColumns = '',
) => `select d.id::text, d.public_id, e.public_id as endpoint_public_id,
  ev.public_id as event_public_id, ev.type as event_type, d.status, d.attempts, d.last_status_code, d.last_error,
  d.last_attempt_at, d.next_attempt_at, d.delivered_at, d.created_at${extraColumns}
  from webhook_deliveries d
  join webhook_endpoints e on e.id = d.endpoint_id and e.deleted_at is null
  join webhook_events ev on ev.id = d.event_id`;

const deliveryNotFound = (id: string) =>
  new NotFound('webhook_delivery_not_found', `No webhook delivery ${id}.`);
const endpointDisabled = (id: string) =>
  new Conflict('webhook_endpoint_disabled', `Webhook endpoint ${id} is disabled; enable it first.`);

export async function listDeliveries(
  tx: Sql,
  partnerId: number,
  q: {
    limit: number;
    cursor?: string | undefined;
    endpointId?: string | undefined;
    status?: Schemas['DeliveryStatus'] | undefined;
  },
): Promise<Schemas['WebhookDeliveryList']> {
  const before = q.cursor === undefined ? null : decodeCursor(q.cursor);
  if (before === undefined)
    throw new BadRequest('invalid_cursor', 'The cursor is not one this API returned.', 'cursor');
  const rows = await tx.query<DeliveryRow>(
    `${selectDeliveries()}
     where e.partner_id = $1 and ($2::text is null or e.public_id = $2) and ($3::text is null or d.status = $3)
       and ($4::bigint is null or d.id < $4::bigint)
     order by d.id desc limit $5`,
    [partnerId, q.endpointId ?? null, q.status ?? null, before, q.limit + 1],
  );
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  const hasMore = rows.length > q.limit;
  return {
    data: page.map(presentDelivery),
    hasMore,
    nextCursor: hasMore && last ? encodeCursor(last.id) : null,
  };
}

export async function getDelivery(
  tx: Sql,
  partnerId: number,
  publicId: string,
): Promise<Schemas['WebhookDeliveryDetail']> {
  const [row] = await tx.query<DeliveryRow & { body: string }>(
    `${selectDeliveries(', coalesce(ev.body, ev.payload::text) as body')}
     where d.public_id = $1 and e.partner_id = $2`,
    [publicId, partnerId],
  );
  if (!row) throw deliveryNotFound(publicId);
  const attempts = await tx.query<AttemptRow>(
    `select attempt, attempted_at, status_code, latency_ms, error, response_body
     from webhook_attempts where delivery_id = $1 order by id`,
    [row.id],
  );
  return {
    ...presentDelivery(row),
    payload: JSON.parse(row.body) as Record<string, unknown>,
    attemptLog: attempts.map((a) => ({
      attempt: a.attempt,
      attemptedAt: new Date(a.attempted_at).toISOString(),
      statusCode: a.status_code,
      latencyMs: a.latency_ms,
      error: a.error,
      responseBody: a.response_body,
    })),
  };
}

/** The latest attempt of a delivery, as the dashboard's delivery log shows it. */
export type LastAttempt = {
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  /** The start of the receiver's response body. */
  responseSnippet: string | null;
};

/** The latest attempt of each of these deliveries of the partner (none yet: absent). One query. */
export async function lastAttempts(
  tx: Sql,
  partnerId: number,
  deliveryIds: readonly string[],
  snippetChars = 200,
): Promise<Map<string, LastAttempt>> {
  if (deliveryIds.length === 0) return new Map();
  const rows = await tx.query<{
    public_id: string;
    status_code: number | null;
    latency_ms: number;
    error: string | null;
    snippet: string | null;
  }>(
    `select d.public_id, a.status_code, a.latency_ms, a.error, left(a.response_body, $3) as snippet
     from webhook_deliveries d
     join webhook_endpoints e on e.id = d.endpoint_id and e.partner_id = $1 and e.deleted_at is null
     join lateral (select status_code, latency_ms, error, response_body from webhook_attempts
                   where delivery_id = d.id order by id desc limit 1) a on true
     where d.public_id = any($2::text[])`,
    [partnerId, deliveryIds, snippetChars],
  );
  return new Map(
    rows.map((r) => [
      r.public_id,
      { statusCode: r.status_code, latencyMs: r.latency_ms, error: r.error, responseSnippet: r.snippet },
    ]),
  );
}

/** A new delivery of the same event (same `webhook-id`) to the same endpoint, due now. */
export async function resendDelivery(
  tx: Sql,
  partnerId: number,
  publicId: string,
  now: Date,
): Promise<Schemas['WebhookDelivery']> {
  const [row] = await tx.query<{
    event_id: string;
    endpoint_id: number;
    endpoint_public_id: string;
    enabled: boolean;
  }>(
    `select d.event_id::text, e.id as endpoint_id, e.public_id as endpoint_public_id, e.enabled
     from webhook_deliveries d join webhook_endpoints e on e.id = d.endpoint_id and e.deleted_at is null
     where d.public_id = $1 and e.partner_id = $2`,
    [publicId, partnerId],
  );
  if (!row) throw deliveryNotFound(publicId);
  if (!row.enabled) throw endpointDisabled(row.endpoint_public_id);
  const id = await newDelivery(tx, row.event_id, row.endpoint_id, now);
  return presentOne(tx, id);
}

/**
 * Resends, once each, the events whose delivery to this endpoint failed in [since, until) and that
 * have not reached it since (no succeeded or pending delivery of the same event).
 */
export async function recoverDeliveries(
  tx: Sql,
  partnerId: number,
  endpointPublicId: string,
  window: { since: string; until?: string | undefined },
  now: Date,
): Promise<Schemas['WebhookRecovery']> {
  const endpoint = await findEndpoint(tx, partnerId, endpointPublicId, { lock: true });
  if (!endpoint.enabled) throw endpointDisabled(endpointPublicId);
  const since = new Date(window.since);
  const until = window.until === undefined ? now : new Date(window.until);
  if (since > now) throw new Unprocessable('invalid_time_range', '`since` is in the future.', 'since');
  if (until <= since)
    throw new Unprocessable('invalid_time_range', '`until` must be after `since`.', 'until');
  const rows = await tx.query<{ id: string }>(
    `insert into webhook_deliveries (public_id, event_id, endpoint_id, status, next_attempt_at, created_at)
     select 'wd_' || substr(md5(random()::text || f.event_id::text || clock_timestamp()::text), 1, 26), f.event_id, $1, 'pending', $4, $4
     from (
       select distinct d.event_id from webhook_deliveries d
       where d.endpoint_id = $1 and d.status = 'failed' and d.created_at >= $2 and d.created_at < $3
         and not exists (select 1 from webhook_deliveries o
                         where o.endpoint_id = $1 and o.event_id = d.event_id and o.status in ('succeeded', 'pending'))
     ) f
     returning id::text`,
    [endpoint.id, since, until, now],
  );
  for (const { id } of rows) await queueDeliveryJob(tx, id);
  return {
    endpointId: endpoint.public_id,
    since: since.toISOString(),
    until: until.toISOString(),
    queued: rows.length,
  };
}

/** A `test.ping` event for this endpoint only, whatever its filter; delivered like any other. */
export async function sendTestPing(
  tx: Sql,
  partnerId: number,
  endpointPublicId: string,
  now: Date,
): Promise<Schemas['WebhookDelivery']> {
  const endpoint: EndpointRow = await findEndpoint(tx, partnerId, endpointPublicId);
  if (!endpoint.enabled) throw endpointDisabled(endpointPublicId);
  const payload: Schemas['TestPingEvent'] = {
    event: 'test.ping',
    timestamp: now.toISOString(),
    endpointId: endpoint.public_id,
  };
  const body = JSON.stringify(payload);
  const [event] = await tx.query<{ id: string }>(
    `insert into webhook_events (public_id, partner_id, type, payload, body, created_at)
     values ($1, $2, 'test.ping', $3::text::jsonb, $3::text, $4) returning id::text`,
    [newId('evt', now.getTime()), partnerId, body, now],
  );
  if (!event) throw new Error('test event insert returned nothing');
  const id = await newDelivery(tx, event.id, endpoint.id, now);
  return presentOne(tx, id);
}

async function newDelivery(tx: Sql, eventId: string, endpointId: number, now: Date): Promise<string> {
  const [row] = await tx.query<{ id: string }>(
    `insert into webhook_deliveries (public_id, event_id, endpoint_id, status, next_attempt_at, created_at)
     values ($1, $2, $3, 'pending', $4, $4) returning id::text`,
    [newId('wd', now.getTime()), eventId, endpointId, now],
  );
  if (!row) throw new Error('delivery insert returned nothing');
  await queueDeliveryJob(tx, row.id);
  return row.id;
}

async function presentOne(tx: Sql, id: string): Promise<Schemas['WebhookDelivery']> {
  const [row] = await tx.query<DeliveryRow>(`${selectDeliveries()} where d.id = $1`, [id]);
  if (!row) throw new Error(`delivery ${id} vanished`);
  return presentDelivery(row);
}

const iso = (d: string | Date | null) => (d ? new Date(d).toISOString() : null);

function presentDelivery(r: DeliveryRow): Schemas['WebhookDelivery'] {
  return {
    deliveryId: r.public_id,
    endpointId: r.endpoint_public_id,
    eventId: r.event_public_id,
    eventType: r.event_type,
    status: r.status,
    attempts: r.attempts,
    lastStatusCode: r.last_status_code,
    lastError: r.last_error,
    lastAttemptAt: iso(r.last_attempt_at),
    nextAttemptAt: r.status === 'pending' ? iso(r.next_attempt_at) : null,
    deliveredAt: iso(r.delivered_at),
    createdAt: new Date(r.created_at).toISOString(),
  };
}
