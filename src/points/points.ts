import type { components } from '../../generated/types.js';
import type { Database } from '../db/database.js';
import { BadRequest, InsufficientPoints, NotFound, Unprocessable } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { decodeCursor, encodeCursor, newId } from '../lib/ids.js';
import type { BearerCheck } from '../oauth2/bearer.js';
import type { WebhookDelivery } from '../webhooks/delivery.js';
import { DELIVERY_TASK, deliveryJobKey, recordEvent } from '../webhooks/outbox.js';
import {
  advisoryKey,
  idempotent,
  keyInFlight,
  keyReused,
  paramsHash,
  rememberResponse,
  type Stored,
} from './idempotency.js';
import * as ledger from './ledger.js';

type Schemas = components['schemas'];
export type Actor = { partnerId: number; userId: number };
export type DeductInput = {
  amount: number;
  description?: string | undefined;
  idempotencyKey?: string | undefined;
};
/** Makes a webhook's first attempt right after the commit (src/webhooks/delivery.ts). */
export type FirstAttempt = Pick<WebhookDelivery, 'holdbackMs' | 'deliverFirst'>;

type LedgerRow = {
  id: string;
  public_id: string;
  type: Schemas['TransactionType'];
  amount: number;
  balance_after: number;
  description: string | null;
  refunded_amount: number;
  refund_of_public_id: string | null;
  created_at: string | Date;
};

const iso = (d: string | Date) => new Date(d).toISOString();

/** Points: balance, deduct, the partner's view of the ledger, and refunds. One transaction per call. */
export class PointsService {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly webhooks: FirstAttempt,
    /** How long a deduct or refund response waits for its webhook's first attempt. */
    private readonly deliveredWaitMs: number,
  ) {}

  async balance(actor: Actor): Promise<number> {
    const [row] = await this.db.query<{ balance: number }>('select balance from users where id = $1', [
      actor.userId,
    ]);
    if (!row) throw new NotFound('user_not_found', 'No wallet for this user.');
    return row.balance;
  }

  /**
   * A deduct is ONE statement (ledger.deductOnce, the points_deduct function): the idempotency
   * key's try-lock and lookup, one conditional UPDATE (balance >= amount, never a read-modify-write,
   * so concurrent deducts can never take the balance below zero) with its ledger row, the webhook
   * event and jobs when the partner listens for it, and the stored response, committed together.
   */
  async deduct(
    actor: Actor,
    input: DeductInput,
  ): Promise<{ body: Schemas['DeductResponse']; replayed: boolean }> {
    const result = await this.deductChecked(actor, input, undefined);
    if (!result) throw new Error('a deduct without a bearer check was refused as not granted');
    return result;
  }

  /**
   * The deduct with the caller's bearer token checked in the same statement (one round trip; see
   * Migration20261124000012). Undefined when the token does not grant it to this actor: nothing was
   * written, and the caller authenticates the usual way to learn why.
   */
  deductAsBearer(
    actor: Actor,
    input: DeductInput,
    bearer: BearerCheck,
  ): Promise<{ body: Schemas['DeductResponse']; replayed: boolean } | undefined> {
    return this.deductChecked(actor, input, bearer);
  }

  private async deductChecked(
    actor: Actor,
    input: DeductInput,
    bearer: BearerCheck | undefined,
  ): Promise<{ body: Schemas['DeductResponse']; replayed: boolean } | undefined> {
    const now = this.clock.now();
    const key = input.idempotencyKey;
    const description = input.description ?? null;
    const publicId = newId('txn', now.getTime());
    // The event body as JSON.stringify writes it, split around the balance only the statement knows.
    const head = JSON.stringify({
      event: 'points.deducted',
      timestamp: now.toISOString(),
      transactionId: publicId,
      userId: actor.userId,
      amount: input.amount,
    } satisfies Omit<Schemas['PointsDeductedEvent'], 'newBalance' | 'description'>);
    const outcome = await ledger.deductOnce(
      this.db,
      {
        ...actor,
        amount: input.amount,
        description,
        now,
        publicId,
        idempotency:
          key === undefined
            ? undefined
            : {
                key,
                lock: advisoryKey({ ...actor, key }),
                hash: paramsHash('deduct', { amount: input.amount, description: input.description }),
              },
        event: {
          type: 'points.deducted',
          publicId: newId('evt', now.getTime()),
          head: `${head.slice(0, -1)},"newBalance":`,
          tail: `,"description":${JSON.stringify(description)}}`,
          holdbackMs: this.webhooks.holdbackMs,
        },
        job: { task: DELIVERY_TASK, keyPrefix: deliveryJobKey('') },
      },
      bearer,
    );
    switch (outcome.kind) {
      case 'not_granted':
        return undefined;
      case 'in_flight':
        throw keyInFlight();
      case 'reused':
        throw keyReused();
      case 'replayed':
        return { body: outcome.body as Schemas['DeductResponse'], replayed: true };
      case 'insufficient':
        throw new InsufficientPoints(outcome.balance, input.amount);
    }
    const body: Schemas['DeductResponse'] = {
      success: true,
      creditsDeducted: input.amount,
      newBalance: outcome.balanceAfter,
      transactionId: outcome.publicId,
      // Decided after the commit, by the first delivery attempt (see withFirstAttempt).
      webhookDelivered: false,
    };
    return this.withFirstAttempt(actor, key, { body, replayed: false }, outcome.pending);
  }

  /**
   * Refunds (part of) one of this partner's deductions. The deduction row is locked first, so
   * concurrent refunds of it are serialised and can never add up to more than it deducted.
   */
  async refund(
    actor: Actor,
    transactionId: string,
    input: { amount?: number | undefined; reason?: string | undefined; idempotencyKey?: string | undefined },
  ): Promise<{ body: Schemas['RefundResponse']; replayed: boolean }> {
    let pending: string[] = [];
    const stored = await this.db.transaction((tx) =>
      idempotent(
        tx,
        { ...actor, key: input.idempotencyKey },
        'refund',
        { transactionId, amount: input.amount, reason: input.reason },
        async () => {
          const deduction = await ledger.findDeductionForRefund(tx, { ...actor, transactionId });
          if (!deduction) throw transactionNotFound(transactionId);
          if (deduction.type !== 'deduct') {
            throw new Unprocessable(
              'not_refundable',
              `Only deductions can be refunded; ${transactionId} is a ${deduction.type}.`,
            );
          }
          const left = -deduction.amount - deduction.refundedAmount;
          const amount = input.amount ?? left;
          if (left === 0) {
            throw new Unprocessable(
              'refund_exceeds_deduction',
              `${transactionId} is already fully refunded.`,
              'amount',
            );
          }
          if (amount > left) {
            throw new Unprocessable(
              'refund_exceeds_deduction',
              `Only ${left} of the ${-deduction.amount} deducted points are left to refund.`,
              'amount',
            );
          }
          const now = this.clock.now();
          const posted = await ledger.refund(tx, {
            ...actor,
            deduction,
            amount,
            reason: input.reason ?? null,
            now,
          });
          const recorded = await recordEvent(
            tx,
            actor.partnerId,
            'points.refunded',
            {
              event: 'points.refunded',
              timestamp: now.toISOString(),
              transactionId: posted.publicId,
              refundedTransactionId: transactionId,
              userId: actor.userId,
              amount,
              newBalance: posted.balanceAfter,
            } satisfies Schemas['PointsRefundedEvent'],
            { holdbackMs: this.webhooks.holdbackMs },
          );
          pending = recorded.pending;
          return {
            success: true,
            creditsRefunded: amount,
            newBalance: posted.balanceAfter,
            transactionId: posted.publicId,
            refundedTransactionId: transactionId,
            // Decided after the commit, by the first delivery attempt (see withFirstAttempt).
            webhookDelivered: false,
          } satisfies Schemas['RefundResponse'];
        },
      ),
    );
    return this.withFirstAttempt(actor, input.idempotencyKey, stored, pending);
  }

  /**
   * After the commit: the event's first delivery attempt, waited for at most `deliveredWaitMs`.
   * `webhookDelivered` is true only when every subscribed endpoint answered 2xx in that time; the
   * stored idempotent response is updated to match, so a replay returns what the first call got.
   * A replay sends nothing again (its event was recorded by the first call).
   */
  private async withFirstAttempt<T extends { webhookDelivered: boolean }>(
    actor: Actor,
    key: string | undefined,
    stored: Stored<T>,
    pending: string[],
  ): Promise<Stored<T>> {
    if (stored.replayed || pending.length === 0) return stored;
    if (!(await this.webhooks.deliverFirst(pending, this.deliveredWaitMs))) return stored;
    const body = { ...stored.body, webhookDelivered: true };
    if (key !== undefined) await rememberResponse(this.db, { ...actor, key }, body);
    return { body, replayed: false };
  }

  async listTransactions(
    actor: Actor,
    limit: number,
    cursor: string | undefined,
  ): Promise<Schemas['TransactionList']> {
    const before = cursor === undefined ? null : decodeCursor(cursor);
    if (before === undefined) throw unprocessableCursor();
    const rows = await this.db.query<LedgerRow>(
      `${SELECT_LEDGER} where l.user_id = $1 and l.partner_id = $2 and ($3::bigint is null or l.id < $3::bigint)
       order by l.id desc limit $4`,
      [actor.userId, actor.partnerId, before, limit + 1],
    );
    const page = rows.slice(0, limit);
    const hasMore = rows.length > limit;
    const last = page[page.length - 1];
    return {
      data: page.map(presentTransaction),
      hasMore,
      nextCursor: hasMore && last ? encodeCursor(last.id) : null,
    };
  }

  async getTransaction(actor: Actor, transactionId: string): Promise<Schemas['Transaction']> {
    const [row] = await this.db.query<LedgerRow>(
      `${SELECT_LEDGER} where l.public_id = $1 and l.user_id = $2 and l.partner_id = $3`,
      [transactionId, actor.userId, actor.partnerId],
    );
    if (!row) throw transactionNotFound(transactionId);
    return presentTransaction(row);
  }

  /** The user's balance as their wallet shows it (no partner involved). */
  async walletBalance(userId: number): Promise<number> {
    const [row] = await this.db.query<{ balance: number }>('select balance from users where id = $1', [
      userId,
    ]);
    if (!row) throw new NotFound('user_not_found', 'No wallet for this user.');
    return row.balance;
  }

  /**
   * One page of the user's own ledger across every app, newest first, for the wallet. Keyset paged
   * on the ledger's id: `before` (older) or `after` (newer) name a transaction of this user by its
   * public id; anything else is a 400 (the page shows it), never a scan from an arbitrary point.
   */
  async walletTransactions(
    userId: number,
    page: { before?: string | undefined; after?: string | undefined; limit: number },
  ): Promise<WalletTransactionPage> {
    if (page.before !== undefined && page.after !== undefined) {
      throw new BadRequest('invalid_cursor', 'Ask for older or newer transactions, not both.', 'before');
    }
    const cursor = page.before ?? page.after;
    const older = page.after === undefined;
    const [anchor] =
      cursor === undefined
        ? [undefined]
        : await this.db.query<{ id: string }>(
            'select id from ledger_entries where public_id = $1 and user_id = $2',
            [TRANSACTION_ID.test(cursor) ? cursor : null, userId],
          );
    if (cursor !== undefined && !anchor) {
      throw new BadRequest('invalid_cursor', 'The link does not name one of your transactions.', 'before');
    }
    const rows = await this.db.query<LedgerRow & { partner_name: string | null }>(
      `select l.id, l.public_id, l.type, l.amount, l.balance_after, l.description, l.refunded_amount,
         r.public_id as refund_of_public_id, l.created_at, p.name as partner_name
       from ledger_entries l left join ledger_entries r on r.id = l.refund_of
       left join partners p on p.id = l.partner_id
       where l.user_id = $1 and ($2::bigint is null or ${older ? 'l.id < $2::bigint' : 'l.id > $2::bigint'})
       order by l.id ${older ? 'desc' : 'asc'} limit $3`,
      [userId, anchor?.id ?? null, page.limit + 1],
    );
    const more = rows.length > page.limit;
    const shown = rows.slice(0, page.limit);
    if (!older) shown.reverse();
    const data = shown.map((r) => ({ ...presentTransaction(r), partnerName: r.partner_name }));
    // Across the anchor there is at least the anchor itself; on its own side, `more` says.
    const first = data[0]?.transactionId ?? null;
    const last = data[data.length - 1]?.transactionId ?? null;
    return {
      data,
      newer: cursor !== undefined && (older || more) ? first : null,
      older: older ? (more ? last : null) : last,
    };
  }
}

/** A ledger entry as the user's wallet lists it: the partner API's form plus the app's name. */
export type WalletTransaction = Schemas['Transaction'] & { partnerName: string | null };

/** A page of the wallet's history; `newer`/`older` are the cursors of the neighbouring pages, if any. */
export type WalletTransactionPage = {
  data: WalletTransaction[];
  newer: string | null;
  older: string | null;
};

/** The public id newId('txn') makes. */
const TRANSACTION_ID = /^txn_[0-9A-Z]{26}$/;

const SELECT_LEDGER = `select l.id, l.public_id, l.type, l.amount, l.balance_after, l.description, l.refunded_amount,
  r.public_id as refund_of_public_id, l.created_at
  from ledger_entries l left join ledger_entries r on r.id = l.refund_of`;

function presentTransaction(r: LedgerRow): Schemas['Transaction'] {
  return {
    transactionId: r.public_id,
    type: r.type,
    amount: r.amount,
    balanceAfter: r.balance_after,
    description: r.description,
    refundedAmount: r.refunded_amount,
    refundOf: r.refund_of_public_id,
    createdAt: iso(r.created_at),
  };
}

const transactionNotFound = (id: string) =>
  new NotFound('transaction_not_found', `No transaction ${id} for this user and partner.`);

const unprocessableCursor = () =>
  new BadRequest('invalid_cursor', 'The cursor is not one this API returned.', 'cursor');
