import type { Sql } from '../db/database.js';
import { newId } from '../lib/ids.js';
import type { BearerCheck } from '../oauth2/bearer.js';

/**
 * The ONLY code that writes points. Each function is one statement on the caller's transaction: a
 * conditional update of the balance and the append-only ledger row together (data-modifying CTE),
 * never a read-modify-write, so the sum of a user's ledger always equals their balance and no
 * interleaving takes a balance below zero.
 */

export type Posted = { id: string; publicId: string; balanceAfter: number };

type PostedRow = { id: string; public_id: string; balance_after: number };
const posted = (r: PostedRow): Posted => ({
  id: String(r.id),
  publicId: r.public_id,
  balanceAfter: r.balance_after,
});

/**
 * Takes `amount` points from the user if the balance covers it. Undefined when it does not (or the
 * user does not exist): nothing was written.
 */
export async function debit(
  tx: Sql,
  input: {
    userId: number;
    partnerId: number;
    amount: number;
    type: 'deduct' | 'subscription_charge';
    description: string | null;
    now: Date;
  },
): Promise<Posted | undefined> {
  const [row] = await tx.query<PostedRow>(
    `with upd as (
       update users set balance = balance - $2 where id = $1 and balance >= $2 returning id, balance
     )
     insert into ledger_entries (public_id, user_id, partner_id, type, amount, balance_after, description, created_at)
     select $3, id, $4, $5, -$2::integer, balance, $6, $7 from upd
     returning id, public_id, balance_after`,
    [
      input.userId,
      input.amount,
      newId('txn', input.now.getTime()),
      input.partnerId,
      input.type,
      input.description,
      input.now,
    ],
  );
  return row && posted(row);
}

/** Adds points (an administrator's credit). Undefined when there is no such user. */
export async function credit(
  tx: Sql,
  input: { userId: number; amount: number; description: string; now: Date },
): Promise<Posted | undefined> {
  const [row] = await tx.query<PostedRow>(
    `with upd as (update users set balance = balance + $2 where id = $1 returning id, balance)
     insert into ledger_entries (public_id, user_id, type, amount, balance_after, description, created_at)
     select $3, id, 'credit', $2, balance, $4, $5 from upd
     returning id, public_id, balance_after`,
    [input.userId, input.amount, newId('txn', input.now.getTime()), input.description, input.now],
  );
  return row && posted(row);
}

/** A deduction as the refund needs it, locked so concurrent refunds of it serialise. */
export type Deduction = { id: string; type: string; amount: number; refundedAmount: number };

export async function findDeductionForRefund(
  tx: Sql,
  input: { userId: number; partnerId: number; transactionId: string },
): Promise<Deduction | undefined> {
  const [row] = await tx.query<{ id: string; type: string; amount: number; refunded_amount: number }>(
    `select id, type, amount, refunded_amount from ledger_entries
     where public_id = $1 and user_id = $2 and partner_id = $3 for update`,
    [input.transactionId, input.userId, input.partnerId],
  );
  return (
    row && { id: String(row.id), type: row.type, amount: row.amount, refundedAmount: row.refunded_amount }
  );
}

/**
 * Gives back `amount` of a locked deduction: marks it refunded by that much and credits the user
 * with a `refund` row pointing at it. The caller has checked the amount against what is left; the
 * table's CHECK constraint refuses a refund past the deduction anyway.
 */
export async function refund(
  tx: Sql,
  input: {
    userId: number;
    partnerId: number;
    deduction: Deduction;
    amount: number;
    reason: string | null;
    now: Date;
  },
): Promise<Posted> {
  const [row] = await tx.query<PostedRow>(
    `with marked as (
       update ledger_entries set refunded_amount = refunded_amount + $2 where id = $6 returning id
     ), upd as (
       update users set balance = balance + $2 where id = $1 and exists (select 1 from marked) returning id, balance
     )
     insert into ledger_entries (public_id, user_id, partner_id, type, amount, balance_after, description, refund_of, created_at)
     select $3, id, $4, 'refund', $2, balance, $5, $6, $7 from upd
     returning id, public_id, balance_after`,
    [
      input.userId,
      input.amount,
      newId('txn', input.now.getTime()),
      input.partnerId,
      input.reason,
      input.deduction.id,
      input.now,
    ],
  );
  if (!row) throw new Error(`refund: deduction ${input.deduction.id} or user ${input.userId} vanished`);
  return posted(row);
}

/** The balance now, for error messages (never for deciding anything). */
export async function currentBalance(tx: Sql, userId: number): Promise<number> {
  const [row] = await tx.query<{ balance: number }>('select balance from users where id = $1', [userId]);
  return row?.balance ?? 0;
}

/** What one deduct statement did (see the points_deduct migration). */
export type DeductOutcome =
  | { kind: 'in_flight' }
  | { kind: 'reused' }
  | { kind: 'replayed'; body: unknown }
  | { kind: 'insufficient'; balance: number }
  | { kind: 'done'; publicId: string; balanceAfter: number; pending: string[] }
  /** Only with `asBearer`: the token does not grant this (unknown, inactive, another user's, scope): nothing written. */
  | { kind: 'not_granted' };

/**
 * A whole deduct in ONE statement and one round trip (autocommit: no BEGIN/COMMIT): the
 * idempotency key's try-lock and lookup, the conditional update with its ledger row, the webhook
 * event with its deliveries and jobs when an endpoint of the partner is subscribed to it, and the
 * key's stored response. The event body is `eventHead + newBalance + eventTail`.
 */
export async function deductOnce(
  sql: Sql,
  input: {
    userId: number;
    partnerId: number;
    amount: number;
    description: string | null;
    now: Date;
    publicId: string;
    idempotency: { key: string; lock: string; hash: string } | undefined;
    event: { type: string; publicId: string; head: string; tail: string; holdbackMs: number };
    job: { task: string; keyPrefix: string };
  },
  /** Checks this token grants the deduct for this user and partner in the same statement (one round trip). */
  asBearer?: BearerCheck,
): Promise<DeductOutcome> {
  const [row] = await sql.query<{
    outcome: DeductOutcome['kind'] | 'unauthenticated' | 'forbidden';
    balance: number | null;
    public_id: string | null;
    prior_body: unknown;
    pending: string[] | null;
  }>(asBearer ? DEDUCT_AS_BEARER_SQL : DEDUCT_SQL, [
    ...(asBearer ? [asBearer.tokenHash, asBearer.scopes] : []),
    input.userId,
    input.partnerId,
    input.amount,
    input.description,
    input.now,
    input.publicId,
    input.idempotency?.key ?? null,
    input.idempotency?.lock ?? null,
    input.idempotency?.hash ?? null,
    input.event.type,
    input.event.publicId,
    input.event.head,
    input.event.tail,
    Math.max(0, Math.round(input.event.holdbackMs)),
    input.job.task,
    input.job.keyPrefix,
  ]);
  switch (row?.outcome) {
    case 'in_flight':
    case 'reused':
      return { kind: row.outcome };
    case 'unauthenticated':
    case 'forbidden':
      return { kind: 'not_granted' };
    case 'replayed':
      return { kind: 'replayed', body: row.prior_body };
    case 'insufficient':
      return { kind: 'insufficient', balance: row.balance ?? 0 };
    case 'done':
      return {
        kind: 'done',
        publicId: row.public_id as string,
        balanceAfter: row.balance as number,
        pending: (row.pending ?? []).map(String),
      };
    default:
      throw new Error(`points_deduct answered ${JSON.stringify(row?.outcome)}`);
  }
}

const DEDUCT_SQL = `select outcome, balance, public_id, prior_body, pending from points_deduct(
  $1::bigint, $2::integer, $3::integer, $4::text, $5::timestamptz, $6::text, $7::text, $8::bigint, $9::text,
  $10::text, $11::text, $12::text, $13::text, $14::integer, $15::text, $16::text)`;
const DEDUCT_AS_BEARER_SQL = `select outcome, balance, public_id, prior_body, pending from points_deduct_as_bearer(
  $1::text, $2::text[],
  $3::bigint, $4::integer, $5::integer, $6::text, $7::timestamptz, $8::text, $9::text, $10::bigint, $11::text,
  $12::text, $13::text, $14::text, $15::text, $16::integer, $17::text, $18::text)`;
