import type { Email } from '../mail/mailer.js';
import type { Notification } from './store.js';

/** A notification as the wallet's notifications page shows it (plain text; the page escapes it). */
export type NotificationView = { id: number; title: string; text: string };

/** `2026-05-10 08:00 UTC`: unambiguous for every reader, whatever their time zone. */
export const formatWhen = (iso: string): string => `${iso.slice(0, 16).replace('T', ' ')} UTC`;

export function presentNotification(n: Notification): NotificationView {
  const { appName, expiringToken, expiresAt } = n.details;
  const when = formatWhen(expiresAt);
  if (expiringToken === 'access') {
    return {
      id: n.id,
      title: `${appName}: access token expires ${when}`,
      text: `The access token ${appName} uses for your wallet expires on ${when}. ${appName} normally renews it without asking you; if it does not, it will ask you to connect again.`,
    };
  }
  return {
    id: n.id,
    title: `${appName}: connection ends ${when}`,
    text: `The refresh token that keeps ${appName} connected to your wallet expires on ${when}, because ${appName} has not used it. After that, ${appName} has to ask you to connect again.`,
  };
}

/** The email for a notification: the page's words, plus where to see it in the wallet. */
export function notificationEmail(n: Notification, to: string, walletUrl: string): Email {
  const view = presentNotification(n);
  const { appName, daysBefore } = n.details;
  return {
    to,
    subject:
      n.details.expiringToken === 'access'
        ? `${appName}'s access token for your askTIAN Wallet expires in ${daysBefore} days`
        : `Your askTIAN Wallet connection to ${appName} ends in ${daysBefore} days`,
    text: [
      'Hello,',
      '',
      view.text,
      '',
      `You can see and dismiss this notice in your wallet, and revoke apps under Connected apps: ${walletUrl}`,
      '',
      '— askTIAN Wallet',
    ].join('\n'),
  };
}
