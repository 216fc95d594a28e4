import type { IncomingHttpHeaders } from 'node:http';
import { BadRequest } from '../errors/index.js';
import type { Principal } from '../http/auth.js';
import {
  type BearerCheckedHandler,
  type BodyOf,
  type DirectHandler,
  type Handler,
  headerValue,
} from '../http/operations.js';
import type { Metrics } from '../observability/metrics.js';
import type { Actor, PointsService } from './points.js';

/** The (partner, user) a user-level operation acts for; authentication guarantees it. */
export function actorOf(auth: Principal): Actor {
  if (auth.kind !== 'user') throw new Error('user-level operation reached its handler without a user');
  return { partnerId: auth.partner.id, userId: auth.userId };
}

/** `Idempotency-Key` header or body `idempotencyKey`; both may be sent only if equal. */
export function idempotencyKeyOf(
  headers: IncomingHttpHeaders,
  bodyKey: string | undefined,
): string | undefined {
  const header = headerValue(headers, 'idempotency-key');
  if (header !== undefined && bodyKey !== undefined && header !== bodyKey) {
    throw new BadRequest(
      'idempotency_key_mismatch',
      'The Idempotency-Key header and idempotencyKey field differ.',
      'idempotencyKey',
    );
  }
  return header ?? bodyKey;
}

const replayHeaders = (replayed: boolean): Record<string, string> =>
  replayed ? { 'Idempotent-Replayed': 'true' } : {};

export const pointsHandlers = (points: PointsService, metrics: Pick<Metrics, 'deducts' | 'pointsMoved'>) => {
  const getBalance: DirectHandler<'getBalance'> = async ({ auth }) => {
    const actor = actorOf(auth);
    // Authentication read the user's row (and its balance) in its one statement: no second query.
    const balance =
      auth.kind === 'user' && auth.balance !== undefined ? auth.balance : await points.balance(actor);
    return { status: 200, body: { success: true, userId: actor.userId, balance } };
  };

  const deductInput = (body: BodyOf<'deductPoints'>, headers: IncomingHttpHeaders) => ({
    amount: body.amount,
    description: body.description,
    idempotencyKey: idempotencyKeyOf(headers, body.idempotencyKey),
  });
  const deductReply = (amount: number, { body, replayed }: Awaited<ReturnType<PointsService['deduct']>>) => {
    if (!replayed) {
      metrics.deducts.inc();
      metrics.pointsMoved.inc({ kind: 'deduct' }, amount);
    }
    return { status: 200 as const, body, headers: replayHeaders(replayed) };
  };

  const deductPoints: DirectHandler<'deductPoints'> = async ({ auth, body, headers }) =>
    deductReply(body.amount, await points.deduct(actorOf(auth), deductInput(body, headers)));

  /** deductPoints with the bearer token checked in the deduct's own statement (see BearerCheckedHandler). */
  const deductPointsAsBearer: BearerCheckedHandler<'deductPoints'> = async (
    { auth, body, headers },
    bearer,
  ) => {
    let input: ReturnType<typeof deductInput>;
    try {
      input = deductInput(body, headers);
    } catch {
      // A 400 of this handler comes after authentication: the usual way words it in that order.
      return undefined;
    }
    const result = await points.deductAsBearer(actorOf(auth), input, bearer);
    return result && deductReply(body.amount, result);
  };

  const refundTransaction: Handler<'refundTransaction'> = async ({ auth, body, path, headers }) => {
    const { body: result, replayed } = await points.refund(actorOf(auth), path.transactionId, {
      amount: body.amount,
      reason: body.reason,
      idempotencyKey: idempotencyKeyOf(headers, body.idempotencyKey),
    });
    if (!replayed) metrics.pointsMoved.inc({ kind: 'refund' }, result.creditsRefunded);
    return { status: 200, body: result, headers: replayHeaders(replayed) };
  };

  const listTransactions: Handler<'listTransactions'> = async ({ auth, query }) => ({
    status: 200,
    body: await points.listTransactions(actorOf(auth), query.limit ?? 20, query.cursor),
  });

  const getTransaction: Handler<'getTransaction'> = async ({ auth, path }) => ({
    status: 200,
    body: await points.getTransaction(actorOf(auth), path.transactionId),
  });

  return {
    getBalance,
    deductPoints,
    deductPointsAsBearer,
    refundTransaction,
    listTransactions,
    getTransaction,
  };
};
