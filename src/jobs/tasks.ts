import type { Services } from '../container.js';
import { purgeExpired } from '../housekeeping.js';
import { NOTIFICATION_EMAIL_TASK, sendNotificationEmail } from '../notifications/email.js';
import { EXPIRY_NOTICE_TASK, scanExpiringTokens, sendExpiryNotice } from '../oauth2/expiry-notices.js';
import { RENEW_TASK, runRenewal, scanDueRenewals } from '../subscriptions/renewal.js';
import { DELIVERY_TASK } from '../webhooks/outbox.js';
import type { Tasks } from './runner.js';

/**
 * Finds the time-based work that has fallen due by the injected clock (retry delays, renewals,
 * expiry notices) and queues a job for each item, with a job key so a re-run never duplicates one.
 * Runs every minute; tests call it after moving the clock. One line per feature.
 */
export async function scanDue(s: Services): Promise<void> {
  const scanners: ((s: Services, now: Date) => Promise<void>)[] = [
    /** OAuth tokens 7 days before they expire. */
    scanExpiringTokens,
    /** Subscription renewals, dunning retries and period-end cancellations. */
    scanDueRenewals,
    /** Webhook deliveries whose next attempt (retry) is due. */
    (s, now) => s.webhookDelivery.scanDue(now),
  ];
  const now = s.clock.now();
  for (const scan of scanners) await scan(s, now);
}

/**
 * Every background task by name: what `addJob` may name and what the runner runs. One line per
 * task; each lives in its feature's folder.
 */
export function buildTasks(s: Services): Tasks {
  return {
    /** Deletes expired wallet sessions, token pairs and authorization codes. */
    purge: () => purgeExpired(s),
    /** Queues what has fallen due (see scanDue). */
    tick: () => scanDue(s),
    /** One token's expiry notice: wallet notification, `token.expiring` event, email job. */
    [EXPIRY_NOTICE_TASK]: (payload) => sendExpiryNotice(s, payload),
    /** Emails a notification to its user (SMTP), once. */
    [NOTIFICATION_EMAIL_TASK]: (payload) => sendNotificationEmail(s, payload),
    /** One subscription period at its boundary: charge it, retry it, or end the subscription. */
    [RENEW_TASK]: async (payload) => {
      await runRenewal(s, payload);
    },
    /** One attempt of one webhook delivery (claim, sign, POST, record, reschedule). */
    [DELIVERY_TASK]: (payload) => s.webhookDelivery.runJob(payload),
  };
}

/** Periodic tasks (graphile-worker crontab: minute hour day month weekday task). */
export const CRONTAB = ['* * * * * tick', '*/10 * * * * purge'].join('\n');
