import type { Sql } from '../db/database.js';

/** SQL for subscriptions and their charged periods. Every query names the user (DESIGN.md: shard by user). */

export type SubscriptionStatus = 'active' | 'past_due' | 'canceled';

export type Subscription = {
  /** Internal id (bigint as text); `publicId` (`sub_...`) is what partners see. */
  id: string;
  publicId: string;
  userId: number;
  partnerId: number;
  planName: string;
  amount: number;
  status: SubscriptionStatus;
  /** The first charge: every period boundary derives from it (billing-calendar.ts). */
  anchorAt: Date;
  /** Periods charged so far; the period due next is number `periodsPaid` and starts at `currentPeriodEnd`. */
  periodsPaid: number;
  currentPeriodStart: Date;
  currentPeriodEnd: Date;
  /** When the renewal scan acts next: the due date, a retry, or the end of a period that will not renew. */
  nextAttemptAt: Date | null;
  /** Failed charges of the period due next (0 until its due date fails). */
  failedAttempts: number;
  cancelAtPeriodEnd: boolean;
  canceledAt: Date | null;
  endedAt: Date | null;
  createdAt: Date;
};

type Row = {
  id: string;
  public_id: string;
  user_id: string;
  partner_id: number;
  plan_name: string;
  amount: number;
  status: SubscriptionStatus;
  anchor_at: Date | string;
  periods_paid: number;
  current_period_start: Date | string;
  current_period_end: Date | string;
  next_attempt_at: Date | string | null;
  failed_attempts: number;
  cancel_at_period_end: boolean;
  canceled_at: Date | string | null;
  ended_at: Date | string | null;
  created_at: Date | string;
};

const date = (d: Date | string) => new Date(d);
const dateOrNull = (d: Date | string | null) => (d === null ? null : new Date(d));

function fromRow(r: Row): Subscription {
  return {
    id: String(r.id),
    publicId: r.public_id,
    userId: Number(r.user_id),
    partnerId: r.partner_id,
    planName: r.plan_name,
    amount: r.amount,
    status: r.status,
    anchorAt: date(r.anchor_at),
    periodsPaid: r.periods_paid,
    currentPeriodStart: date(r.current_period_start),
    currentPeriodEnd: date(r.current_period_end),
    nextAttemptAt: dateOrNull(r.next_attempt_at),
    failedAttempts: r.failed_attempts,
    cancelAtPeriodEnd: r.cancel_at_period_end,
    canceledAt: dateOrNull(r.canceled_at),
    endedAt: dateOrNull(r.ended_at),
    createdAt: date(r.created_at),
  };
}

const COLUMN_NAMES = [
  'id',
  'public_id',
  'user_id',
  'partner_id',
  'plan_name',
  'amount',
  'status',
  'anchor_at',
  'periods_paid',
  'current_period_start',
  'current_period_end',
  'next_attempt_at',
  'failed_attempts',
  'cancel_at_period_end',
  'canceled_at',
  'ended_at',
  'created_at',
];
const columns = (table = '') => COLUMN_NAMES.map((c) => `${table}${c}`).join(', ');
const COLUMNS = columns();

export async function insertSubscription(
  tx: Sql,
  s: Omit<Subscription, 'id' | 'endedAt' | 'canceledAt' | 'cancelAtPeriodEnd' | 'failedAttempts'>,
): Promise<Subscription> {
  const [row] = await tx.query<Row>(
    `insert into subscriptions (user_id, public_id, partner_id, plan_name, amount, status, anchor_at, periods_paid,
       current_period_start, current_period_end, next_attempt_at, created_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
     returning ${COLUMNS}`,
    [
      s.userId,
      s.publicId,
      s.partnerId,
      s.planName,
      s.amount,
      s.status,
      s.anchorAt,
      s.periodsPaid,
      s.currentPeriodStart,
      s.currentPeriodEnd,
      s.nextAttemptAt,
      s.createdAt,
    ],
  );
  if (!row) throw new Error('insert into subscriptions returned no row');
  return fromRow(row);
}

/** Writes back what a renewal or a cancellation changes (the caller holds the row lock). */
export async function saveSubscription(tx: Sql, s: Subscription): Promise<void> {
  await tx.query(
    `update subscriptions set status = $3, periods_paid = $4, current_period_start = $5, current_period_end = $6,
       next_attempt_at = $7, failed_attempts = $8, cancel_at_period_end = $9, canceled_at = $10, ended_at = $11
     where user_id = $1 and id = $2`,
    [
      s.userId,
      s.id,
      s.status,
      s.periodsPaid,
      s.currentPeriodStart,
      s.currentPeriodEnd,
      s.nextAttemptAt,
      s.failedAttempts,
      s.cancelAtPeriodEnd,
      s.canceledAt,
      s.endedAt,
    ],
  );
}

/**
 * The subscription, row-locked until the transaction ends: renewals and cancellations of one
 * subscription serialise here, and each re-reads the state the previous one committed.
 */
export async function lockSubscription(
  tx: Sql,
  userId: number,
  id: string,
): Promise<Subscription | undefined> {
  const [row] = await tx.query<Row>(
    `select ${COLUMNS} from subscriptions where user_id = $1 and id = $2 for update`,
    [userId, id],
  );
  return row && fromRow(row);
}

/** One of the user's subscriptions by its public id; with `partnerId`, only that partner's. */
export async function findSubscription(
  sql: Sql,
  where: { userId: number; publicId: string; partnerId?: number },
  opts: { lock?: boolean } = {},
): Promise<Subscription | undefined> {
  const [row] = await sql.query<Row>(
    `select ${COLUMNS} from subscriptions
     where user_id = $1 and public_id = $2 and ($3::integer is null or partner_id = $3)
     ${opts.lock ? 'for update' : ''}`,
    [where.userId, where.publicId, where.partnerId ?? null],
  );
  return row && fromRow(row);
}

/** A page of the user's subscriptions with one partner, newest first, before the internal id `before`. */
export async function listSubscriptions(
  sql: Sql,
  where: { userId: number; partnerId: number; before: string | null; limit: number },
): Promise<Subscription[]> {
  const rows = await sql.query<Row>(
    `select ${COLUMNS} from subscriptions
     where user_id = $1 and partner_id = $2 and ($3::bigint is null or id < $3::bigint)
     order by id desc limit $4`,
    [where.userId, where.partnerId, where.before, where.limit],
  );
  return rows.map(fromRow);
}

/** Every subscription of the user with the partner's name (the wallet's Subscriptions page): running ones first, newest first. */
export async function listUserSubscriptions(
  sql: Sql,
  userId: number,
): Promise<(Subscription & { partnerName: string })[]> {
  const rows = await sql.query<Row & { partner_name: string }>(
    `select ${columns('s.')}, p.name as partner_name
     from subscriptions s join partners p on p.id = s.partner_id
     where s.user_id = $1
     order by (s.status = 'canceled'), s.id desc`,
    [userId],
  );
  return rows.map((r) => ({ ...fromRow(r), partnerName: r.partner_name }));
}

/**
 * Subscriptions whose next renewal action is due by `now` (the scanner's batch), in id order after
 * `afterId` so a scan pages through all of them even before their jobs have run.
 */
export async function dueSubscriptions(
  sql: Sql,
  where: { now: Date; afterId: string; limit: number },
): Promise<Pick<Subscription, 'id' | 'userId' | 'currentPeriodEnd'>[]> {
  const rows = await sql.query<{ id: string; user_id: string; current_period_end: Date | string }>(
    `select id, user_id, current_period_end from subscriptions
     where status <> 'canceled' and next_attempt_at <= $1 and id > $2::bigint
     order by id limit $3`,
    [where.now, where.afterId, where.limit],
  );
  return rows.map((r) => ({
    id: String(r.id),
    userId: Number(r.user_id),
    currentPeriodEnd: date(r.current_period_end),
  }));
}

/**
 * Records a charged period. Its primary key is (user, subscription, period start): a second charge
 * of the same period fails here, and the caller's transaction, its debit included, rolls back.
 */
export async function recordPeriod(
  tx: Sql,
  p: {
    userId: number;
    subscriptionId: string;
    start: Date;
    end: Date;
    ledgerEntryId: string;
    chargedAt: Date;
  },
): Promise<void> {
  await tx.query(
    `insert into subscription_periods (user_id, subscription_id, period_start, period_end, ledger_entry_id, charged_at)
     values ($1, $2, $3, $4, $5, $6)`,
    [p.userId, p.subscriptionId, p.start, p.end, p.ledgerEntryId, p.chargedAt],
  );
}
