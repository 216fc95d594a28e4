import type { Sql } from '../db/database.js';

/** A partner app's token of this user expires soon (src/oauth2/expiry-notices.ts). */
export type TokenExpiringDetails = {
  partnerId: number;
  /** The app's name when the notice was issued (what the email said too). */
  appName: string;
  tokenId: number;
  expiringToken: 'access' | 'refresh';
  /** ISO 8601. */
  expiresAt: string;
  daysBefore: number;
};

/** Every kind of notification with its details; a new kind adds a member here and to the presenter. */
export type NotificationContent = { kind: 'token.expiring'; details: TokenExpiringDetails };

/** What the wallet tells a user, shown on the wallet's notifications page until dismissed or no longer relevant. */
export type Notification = NotificationContent & {
  id: number;
  userId: number;
  createdAt: Date;
  /** Not shown after this (the thing it warns about has happened, or can no longer happen). */
  showUntil: Date | null;
  dismissedAt: Date | null;
  emailSentAt: Date | null;
};

type Row = {
  id: string;
  user_id: string;
  kind: string;
  details: unknown;
  created_at: Date | string;
  show_until: Date | string | null;
  dismissed_at: Date | string | null;
  email_sent_at: Date | string | null;
};

const COLUMNS = 'id, user_id, kind, details, created_at, show_until, dismissed_at, email_sent_at';
const dateOrNull = (v: Date | string | null) => (v === null ? null : new Date(v));

function toNotification(r: Row): Notification {
  return {
    id: Number(r.id),
    userId: Number(r.user_id),
    // Rows are only written by createNotification from a NotificationContent.
    ...({ kind: r.kind, details: r.details } as NotificationContent),
    createdAt: new Date(r.created_at),
    showUntil: dateOrNull(r.show_until),
    dismissedAt: dateOrNull(r.dismissed_at),
    emailSentAt: dateOrNull(r.email_sent_at),
  };
}

/** Stores a notification for the user, in the caller's transaction. */
export async function createNotification(
  tx: Sql,
  input: NotificationContent & { userId: number; now: Date; showUntil: Date | null },
): Promise<Notification> {
  const [row] = await tx.query<Row>(
    `insert into notifications (user_id, kind, details, created_at, show_until)
     values ($1, $2, $3, $4, $5) returning ${COLUMNS}`,
    [input.userId, input.kind, JSON.stringify(input.details), input.now, input.showUntil],
  );
  if (!row) throw new Error('insert returned no row');
  return toNotification(row);
}

/** The user's notifications still on show at `now`, newest first. */
export async function listShowing(sql: Sql, userId: number, now: Date): Promise<Notification[]> {
  const rows = await sql.query<Row>(
    `select ${COLUMNS} from notifications
     where user_id = $1 and dismissed_at is null and (show_until is null or show_until > $2)
     order by id desc`,
    [userId, now],
  );
  return rows.map(toNotification);
}

export async function findNotification(
  sql: Sql,
  userId: number,
  id: number,
): Promise<Notification | undefined> {
  const [row] = await sql.query<Row>(`select ${COLUMNS} from notifications where user_id = $1 and id = $2`, [
    userId,
    id,
  ]);
  return row && toNotification(row);
}

/**
 * The user dismisses one of their notifications. Dismissing one already dismissed is fine (a
 * double-clicked button); `unknown` means the user has no notification with this id.
 */
export async function dismissNotification(
  sql: Sql,
  userId: number,
  id: number,
  now: Date,
): Promise<'dismissed' | 'unknown'> {
  const rows = await sql.query(
    `update notifications set dismissed_at = coalesce(dismissed_at, $3)
     where user_id = $1 and id = $2 returning 1`,
    [userId, id, now],
  );
  return rows.length > 0 ? 'dismissed' : 'unknown';
}

/** Records that the notification's email went out (the email job's idempotency flag). */
export async function markEmailSent(sql: Sql, userId: number, id: number, now: Date): Promise<void> {
  await sql.query(
    'update notifications set email_sent_at = $3 where user_id = $1 and id = $2 and email_sent_at is null',
    [userId, id, now],
  );
}
