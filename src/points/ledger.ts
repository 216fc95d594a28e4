import type { Sql } from '../db/database.js';
import { newId } from '../lib/ids.js';

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
