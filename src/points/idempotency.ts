import { createHash } from 'node:crypto';
import type { Sql } from '../db/database.js';
import { Conflict, Unprocessable } from '../errors/index.js';

export type Scope = { partnerId: number; userId: number; key: string | undefined };
export type Stored<T> = { body: T; replayed: boolean };

/**
 * Runs `work` at most once per (partner, user, idempotency key), inside the caller's transaction.
 * - A request whose key is held by a transaction still in flight gets 409 at once: the key's
 *   transaction-scoped advisory lock is taken with try-lock, so nothing waits.
 * - A stored key with the same operation and parameters returns the first response (replayed).
 * - A stored key with other parameters is 422. Failed attempts (4xx thrown by `work`) roll back and
 *   store nothing, so the same key can be retried once the cause is fixed.
 */
export async function idempotent<T>(
  tx: Sql,
  scope: Scope,
  operation: string,
  params: Record<string, unknown>,
  work: () => Promise<T>,
): Promise<Stored<T>> {
  if (scope.key === undefined) return { body: await work(), replayed: false };
  // The try-lock and the lookup in one round trip (see the idempotency_claim migration for why a
  // function and not one SELECT: the lookup must see what the key's previous holder committed).
  const [claim] = await tx.query<{
    claimed: boolean;
    prior_operation: string | null;
    prior_hash: string | null;
    prior_body: T | null;
  }>('select * from idempotency_claim($1::bigint, $2::bigint, $3::integer, $4::text)', [
    advisoryKey(scope),
    scope.userId,
    scope.partnerId,
    scope.key,
  ]);
  if (!claim?.claimed) throw keyInFlight();
  const requestHash = paramsHash(operation, params);
  if (claim.prior_operation !== null) {
    if (claim.prior_operation !== operation || claim.prior_hash !== requestHash) throw keyReused();
    return { body: claim.prior_body as T, replayed: true };
  }
  const body = await work();
  await tx.query(
    `insert into idempotency_keys (user_id, partner_id, key, operation, request_hash, response_status, response_body)
     values ($1, $2, $3, $4, $5, 200, $6)`,
    [scope.userId, scope.partnerId, scope.key, operation, requestHash, JSON.stringify(body)],
  );
  return { body, replayed: false };
}

/** 409: the key's first request is still running (its transaction holds the key's lock). */
export const keyInFlight = () =>
  new Conflict(
    'idempotency_key_in_flight',
    'A request with this idempotency key is still in progress; retry shortly.',
  );

/** 422: the key was stored for another operation or other parameters. */
export const keyReused = () =>
  new Unprocessable(
    'idempotency_key_reused',
    'This idempotency key was already used with different parameters.',
    'idempotencyKey',
  );

/**
 * Replaces the stored first response of a key (a field decided only after the commit, such as
 * `webhookDelivered`), so replays keep returning exactly what the first call answered.
 */
export async function rememberResponse(
  db: Sql,
  scope: Scope & { key: string },
  body: unknown,
): Promise<void> {
  await db.query(
    'update idempotency_keys set response_body = $4 where user_id = $1 and partner_id = $2 and key = $3',
    [scope.userId, scope.partnerId, scope.key, JSON.stringify(body)],
  );
}

/** What a key's stored request is compared by: the operation and its parameters, canonically hashed. */
export function paramsHash(operation: string, params: Record<string, unknown>): string {
  const canonical = JSON.stringify([
    operation,
    Object.keys(params)
      .sort()
      .map((k) => [k, params[k] ?? null]),
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

/** A signed 64-bit lock id from the key's scope (a collision only costs a spurious 409). */
export function advisoryKey(s: Scope): string {
  const h = createHash('sha256').update(`idem:${s.partnerId}:${s.userId}:${s.key}`).digest();
  return h.readBigInt64BE(0).toString();
}
