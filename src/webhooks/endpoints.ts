import type { components } from '../../generated/types.js';
import type { Sql } from '../db/database.js';
import { NotFound, Unprocessable } from '../errors/index.js';
import { newId } from '../lib/ids.js';
import type { EventType } from './outbox.js';
import { newSigningSecret, type SecretBox } from './secrets.js';
import { urlRefusal } from './url-policy.js';

type Schemas = components['schemas'];
export type DisabledReason = 'manual' | 'gone' | 'failing';

/** A partner may register this many endpoints (each event fans out to all of them). */
export const MAX_ENDPOINTS_PER_PARTNER = 20;
/** After a rotation the previous secret keeps signing this long, so receivers can switch without loss. */
export const PREVIOUS_SECRET_TTL_MS = 24 * 3_600_000;

export type EndpointRow = {
  id: number;
  public_id: string;
  url: string;
  events: EventType[];
  enabled: boolean;
  description: string | null;
  disabled_reason: DisabledReason | null;
  disabled_detail: string | null;
  disabled_at: string | Date | null;
  failing_since: string | Date | null;
  secret_rotated_at: string | Date | null;
  previous_secret_expires_at: string | Date | null;
  created_at: string | Date;
};

const COLUMNS = `id, public_id, url, events, enabled, description, disabled_reason, disabled_detail, disabled_at,
  failing_since, secret_rotated_at, previous_secret_expires_at, created_at`;

/** What the endpoint operations need besides the transaction. */
export type EndpointContext = { box: SecretBox; allowHttpLocalhost: boolean; now: Date };

function checkUrl(url: string, allowHttpLocalhost: boolean): void {
  const refusal = urlRefusal(url, allowHttpLocalhost);
  if (refusal) throw new Unprocessable('invalid_webhook_url', refusal, 'url');
}

export const endpointNotFound = (id: string) =>
  new NotFound('webhook_endpoint_not_found', `No webhook endpoint ${id}.`);

export async function createEndpoint(
  tx: Sql,
  partnerId: number,
  input: { url: string; events: EventType[]; description?: string | undefined },
  ctx: EndpointContext,
): Promise<{ endpoint: EndpointRow; secret: string }> {
  checkUrl(input.url, ctx.allowHttpLocalhost);
  // The partner's row lock makes the count and the insert one step under concurrent creates.
  await tx.query('select id from partners where id = $1 for update', [partnerId]);
  const [count] = await tx.query<{ n: number }>(
    'select count(*)::int as n from webhook_endpoints where partner_id = $1 and deleted_at is null',
    [partnerId],
  );
  if ((count?.n ?? 0) >= MAX_ENDPOINTS_PER_PARTNER) {
    throw new Unprocessable(
      'too_many_webhook_endpoints',
      `A partner may have at most ${MAX_ENDPOINTS_PER_PARTNER} webhook endpoints; delete one first.`,
    );
  }
  const publicId = newId('we', ctx.now.getTime());
  const secret = newSigningSecret();
  const [endpoint] = await tx.query<EndpointRow>(
    `insert into webhook_endpoints (public_id, partner_id, url, events, secret_encrypted, description, created_at, updated_at)
     values ($1, $2, $3, $4, $5, $6, $7, $7) returning ${COLUMNS}`,
    [
      publicId,
      partnerId,
      input.url,
      input.events,
      ctx.box.seal(secret, publicId),
      input.description ?? null,
      ctx.now,
    ],
  );
  if (!endpoint) throw new Error('webhook endpoint insert returned nothing');
  return { endpoint, secret };
}

export function listEndpoints(tx: Sql, partnerId: number): Promise<EndpointRow[]> {
  return tx.query<EndpointRow>(
    `select ${COLUMNS} from webhook_endpoints where partner_id = $1 and deleted_at is null order by id`,
    [partnerId],
  );
}

/** One of the partner's live endpoints (locked when `lock`), or 404: another partner's is not found either. */
export async function findEndpoint(
  tx: Sql,
  partnerId: number,
  publicId: string,
  opts: { lock?: boolean } = {},
): Promise<EndpointRow> {
  const [row] = await tx.query<EndpointRow>(
    `select ${COLUMNS} from webhook_endpoints where public_id = $1 and partner_id = $2 and deleted_at is null
     ${opts.lock ? 'for update' : ''}`,
    [publicId, partnerId],
  );
  if (!row) throw endpointNotFound(publicId);
  return row;
}

export async function updateEndpoint(
  tx: Sql,
  partnerId: number,
  publicId: string,
  patch: {
    url?: string | undefined;
    events?: EventType[] | undefined;
    enabled?: boolean | undefined;
    description?: string | undefined;
  },
  ctx: EndpointContext,
): Promise<EndpointRow> {
  const current = await findEndpoint(tx, partnerId, publicId, { lock: true });
  if (patch.url !== undefined) checkUrl(patch.url, ctx.allowHttpLocalhost);
  if (patch.enabled === false && current.enabled) {
    await disableEndpoint(tx, current.id, 'manual', 'Disabled through the API.', ctx.now);
  }
  const [row] = await tx.query<EndpointRow>(
    `update webhook_endpoints set
       url = coalesce($2, url),
       events = coalesce($3, events),
       description = coalesce($4, description),
       -- Enabling starts afresh: the reason and the failure streak are cleared.
       enabled = case when $5::boolean then true else enabled end,
       disabled_reason = case when $5::boolean then null else disabled_reason end,
       disabled_detail = case when $5::boolean then null else disabled_detail end,
       disabled_at = case when $5::boolean then null else disabled_at end,
       failing_since = case when $5::boolean then null else failing_since end,
       updated_at = $6
     where id = $1 returning ${COLUMNS}`,
    [
      current.id,
      patch.url ?? null,
      patch.events ?? null,
      patch.description ?? null,
      patch.enabled === true && !current.enabled,
      ctx.now,
    ],
  );
  if (!row) throw endpointNotFound(publicId);
  return row;
}

/** Soft delete: the endpoint and its deliveries leave the API; pending deliveries are abandoned. */
export async function deleteEndpoint(tx: Sql, partnerId: number, publicId: string, now: Date): Promise<void> {
  const current = await findEndpoint(tx, partnerId, publicId, { lock: true });
  await tx.query('update webhook_endpoints set deleted_at = $2, updated_at = $2 where id = $1', [
    current.id,
    now,
  ]);
  await failPending(tx, current.id, 'endpoint deleted: nothing was sent');
}

/** A new signing secret; the current one becomes the previous one and keeps signing for 24 hours. */
export async function rotateSecret(
  tx: Sql,
  partnerId: number,
  publicId: string,
  ctx: EndpointContext,
): Promise<{ endpoint: EndpointRow; secret: string }> {
  const current = await findEndpoint(tx, partnerId, publicId, { lock: true });
  const secret = newSigningSecret();
  const [endpoint] = await tx.query<EndpointRow>(
    `update webhook_endpoints set previous_secret_encrypted = secret_encrypted, secret_encrypted = $2,
       previous_secret_expires_at = $3, secret_rotated_at = $4, updated_at = $4
     where id = $1 returning ${COLUMNS}`,
    [
      current.id,
      ctx.box.seal(secret, publicId),
      new Date(ctx.now.getTime() + PREVIOUS_SECRET_TTL_MS),
      ctx.now,
    ],
  );
  if (!endpoint) throw endpointNotFound(publicId);
  return { endpoint, secret };
}

/**
 * Disables an enabled endpoint with its reason, and fails its pending deliveries (nothing more is
 * sent; `recover` resends them once it is enabled again). Returns whether it was enabled.
 */
export async function disableEndpoint(
  tx: Sql,
  endpointId: number,
  reason: DisabledReason,
  detail: string,
  now: Date,
): Promise<boolean> {
  const rows = await tx.query(
    `update webhook_endpoints set enabled = false, disabled_reason = $2, disabled_detail = $3, disabled_at = $4, updated_at = $4
     where id = $1 and enabled returning id`,
    [endpointId, reason, detail, now],
  );
  if (rows.length === 0) return false;
  await failPending(tx, endpointId, `endpoint disabled (${reason}): ${detail}`);
  return true;
}

async function failPending(tx: Sql, endpointId: number, why: string): Promise<void> {
  await tx.query(
    `update webhook_deliveries set status = 'failed', next_attempt_at = null, last_error = coalesce(last_error || '; ', '') || $2
     where endpoint_id = $1 and status = 'pending'`,
    [endpointId, why],
  );
}

const iso = (d: string | Date | null) => (d ? new Date(d).toISOString() : null);

export function presentEndpoint(r: EndpointRow): Schemas['WebhookEndpoint'] {
  return {
    endpointId: r.public_id,
    url: r.url,
    events: r.events,
    enabled: r.enabled,
    description: r.description,
    disabledReason: r.enabled ? null : r.disabled_reason,
    disabledDetail: r.enabled ? null : r.disabled_detail,
    disabledAt: r.enabled ? null : iso(r.disabled_at),
    failingSince: iso(r.failing_since),
    secretRotatedAt: iso(r.secret_rotated_at),
    previousSecretExpiresAt: iso(r.previous_secret_expires_at),
    createdAt: new Date(r.created_at).toISOString(),
  };
}
