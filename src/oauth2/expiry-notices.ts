import type { components } from '../../generated/types.js';
import type { Database, Sql } from '../db/database.js';
import { addJob } from '../jobs/runner.js';
import type { Clock } from '../lib/clock.js';
import type { Mailer } from '../mail/mailer.js';
import { queueNotificationEmail } from '../notifications/email.js';
import { createNotification } from '../notifications/store.js';
import { enqueueEvent } from '../webhooks/outbox.js';

type TokenExpiringEvent = components['schemas']['TokenExpiringEvent'];
export type ExpiringToken = TokenExpiringEvent['expiringToken'];

/** The seed: "an owner notification 7 days before a token expires". */
export const EXPIRY_NOTICE_DAYS = 7;
const NOTICE_WINDOW_MS = EXPIRY_NOTICE_DAYS * 24 * 60 * 60 * 1000;

export const EXPIRY_NOTICE_TASK = 'token-expiry-notice';

/** Pairs queued per threshold per scan; the rest are found by the next scan a minute later. */
const SCAN_BATCH = 1000;

/** Each threshold's columns in oauth_tokens: when that token expires, and its notice flag. */
const COLUMNS = {
  access: { expiresAt: 'access_expires_at', noticeAt: 'access_notice_at' },
  refresh: { expiresAt: 'refresh_expires_at', noticeAt: 'refresh_notice_at' },
} as const satisfies Record<ExpiringToken, { expiresAt: string; noticeAt: string }>;

type Payload = { userId: number; tokenId: number; expiringToken: ExpiringToken };

/**
 * Which live pairs need a notice at `now` for one threshold: not revoked, not rotated away (a
 * rotated pair is dead and its successor has its own expiry times), user not disabled, the token
 * expiring within the window but not yet expired, and not noticed yet. Reads the partial index.
 */
const dueSql = (which: ExpiringToken) => {
  const c = COLUMNS[which];
  return `select t.id, t.user_id from oauth_tokens t join users u on u.id = t.user_id
    where t.${c.noticeAt} is null and t.revoked_at is null and t.rotated_at is null
      and t.${c.expiresAt} > $1 and t.${c.expiresAt} <= $2 and u.disabled_at is null
    order by t.${c.expiresAt} limit ${SCAN_BATCH}`;
};

/**
 * The scanner (src/jobs/tasks.ts scanDue): queues one job per pair and threshold that has fallen
 * due by the injected clock. The job key makes a re-scan replace a job still waiting instead of
 * adding a second; the job itself checks and sets the flag, so a job that runs twice notices once.
 */
export async function scanExpiringTokens(s: { db: Database }, now: Date): Promise<void> {
  const until = new Date(now.getTime() + NOTICE_WINDOW_MS);
  for (const which of ['access', 'refresh'] as const) {
    const due = await s.db.query<{ id: string; user_id: string }>(dueSql(which), [now, until]);
    if (due.length === 0) continue;
    await s.db.transaction(async (tx) => {
      for (const row of due) {
        const payload: Payload = {
          userId: Number(row.user_id),
          tokenId: Number(row.id),
          expiringToken: which,
        };
        await addJob(tx, EXPIRY_NOTICE_TASK, payload, { jobKey: `${EXPIRY_NOTICE_TASK}:${row.id}:${which}` });
      }
    });
  }
  await retireNoticesOfDeadTokens(s.db, now);
}

export type NoticeDeps = { db: Database; clock: Clock; mailer: Mailer | undefined };

/**
 * The notice for one pair and threshold, in one transaction: claim the flag (a conditional update,
 * so of two runs racing only one gets the row), then the user's notification, the partner's
 * `token.expiring` event and, when email is on and the user has an address, the email job. Does
 * nothing when the pair was noticed already, died, or is no longer inside the window.
 */
export async function sendExpiryNotice(deps: NoticeDeps, raw: unknown): Promise<void> {
  const { userId, tokenId, expiringToken } = raw as Payload;
  const now = deps.clock.now();
  await deps.db.transaction(async (tx) => {
    const pair = await claimNotice(tx, userId, tokenId, expiringToken, now);
    if (!pair) return;
    const expiresAt = pair.expiresAt.toISOString();
    const notification = await createNotification(tx, {
      userId,
      kind: 'token.expiring',
      details: {
        partnerId: pair.partnerId,
        appName: pair.appName,
        tokenId,
        expiringToken,
        expiresAt,
        daysBefore: EXPIRY_NOTICE_DAYS,
      },
      now,
      showUntil: pair.expiresAt,
    });
    const event: TokenExpiringEvent = {
      event: 'token.expiring',
      timestamp: now.toISOString(),
      tokenId,
      userId,
      scope: pair.scope,
      expiresAt,
      expiringToken,
      daysBefore: EXPIRY_NOTICE_DAYS,
    };
    await enqueueEvent(tx, pair.partnerId, 'token.expiring', event);
    if (deps.mailer && pair.email) await queueNotificationEmail(tx, notification);
  });
}

type ClaimedPair = {
  partnerId: number;
  appName: string;
  scope: string;
  expiresAt: Date;
  email: string | null;
};

async function claimNotice(
  tx: Sql,
  userId: number,
  tokenId: number,
  which: ExpiringToken,
  now: Date,
): Promise<ClaimedPair | undefined> {
  const c = COLUMNS[which];
  const [row] = await tx.query<{
    partner_id: number;
    name: string;
    scope: string;
    expires_at: Date | string;
    email: string | null;
  }>(
    `update oauth_tokens t set ${c.noticeAt} = $3
     from partners p, users u
     where t.user_id = $1 and t.id = $2 and p.id = t.partner_id and u.id = t.user_id
       and t.${c.noticeAt} is null and t.revoked_at is null and t.rotated_at is null
       and t.${c.expiresAt} > $3 and t.${c.expiresAt} <= $4 and u.disabled_at is null
     returning t.partner_id, p.name, t.scope, t.${c.expiresAt} as expires_at, u.email`,
    [userId, tokenId, now, new Date(now.getTime() + NOTICE_WINDOW_MS)],
  );
  return (
    row && {
      partnerId: row.partner_id,
      appName: row.name,
      scope: row.scope,
      expiresAt: new Date(row.expires_at),
      email: row.email,
    }
  );
}

/**
 * A notice whose pair was rotated or revoked since warns about a token that no longer matters (the
 * partner refreshed, or the user disconnected the app): it stops showing from that moment.
 */
async function retireNoticesOfDeadTokens(sql: Sql, now: Date): Promise<void> {
  await sql.query(
    `update notifications n set show_until = coalesce(t.rotated_at, t.revoked_at)
     from oauth_tokens t
     where n.kind = 'token.expiring' and n.dismissed_at is null and n.show_until > $1
       and t.user_id = n.user_id and t.id = (n.details->>'tokenId')::bigint
       and (t.rotated_at is not null or t.revoked_at is not null)`,
    [now],
  );
}
