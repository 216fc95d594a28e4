import type { Sql } from '../db/database.js';
import { addJob } from '../jobs/runner.js';
import type { Clock } from '../lib/clock.js';
import type { Mailer } from '../mail/mailer.js';
import { notificationEmail } from './presenter.js';
import { findNotification, markEmailSent, type Notification } from './store.js';

export const NOTIFICATION_EMAIL_TASK = 'notification-email';

type Payload = { userId: number; notificationId: number };

/**
 * Queues the notification's email in the caller's transaction: it is sent by its own job after the
 * notice commits, so a slow or dead SMTP server never holds up or undoes the notice itself.
 */
export async function queueNotificationEmail(tx: Sql, n: Notification): Promise<void> {
  const payload: Payload = { userId: n.userId, notificationId: n.id };
  await addJob(tx, NOTIFICATION_EMAIL_TASK, payload, { jobKey: `${NOTIFICATION_EMAIL_TASK}:${n.id}` });
}

export type EmailDeps = {
  db: Sql;
  clock: Clock;
  mailer: Mailer | undefined;
  config: { publicUrl: string | undefined; host: string; port: number };
};

/** Where the email sends the user: the wallet's notifications page at the server's public address. */
const notificationsUrl = (c: EmailDeps['config']) =>
  `${c.publicUrl ?? `http://${c.host}:${c.port}`}/wallet/notifications`;

/**
 * The email job: sends once, then sets `email_sent_at`. A send that throws fails the job and the
 * job runner retries it with backoff; the flag stops a retry after success from sending again.
 * (A crash between the SMTP server's acceptance and the flag can still send twice: SMTP has no
 * transaction to share, and a second copy beats a lost warning.)
 */
export async function sendNotificationEmail(deps: EmailDeps, raw: unknown): Promise<void> {
  const { userId, notificationId } = raw as Payload;
  if (!deps.mailer) return;
  const n = await findNotification(deps.db, userId, notificationId);
  // Already sent, or dismissed on the page before the email went: the user has seen it.
  if (!n || n.emailSentAt || n.dismissedAt) return;
  const [user] = await deps.db.query<{ email: string | null }>(
    'select email from users where id = $1 and disabled_at is null',
    [userId],
  );
  if (!user?.email) return;
  await deps.mailer.send(notificationEmail(n, user.email, notificationsUrl(deps.config)));
  await markEmailSent(deps.db, userId, notificationId, deps.clock.now());
}
