import { formatWhen, type NotificationView } from '../../notifications/presenter.js';
import type { ConnectedApp } from '../../oauth2/connected-apps.js';
import { SCOPE_DESCRIPTIONS } from '../../oauth2/scopes.js';
import type { Scope } from '../../partners/partners.js';
import type { WalletTransaction, WalletTransactionPage } from '../../points/points.js';
import { presentSubscription } from '../../subscriptions/presenter.js';
import type { WalletSubscription } from '../../subscriptions/service.js';
import { html, type SafeHtml } from '../shared/html.js';
import { csrfField, layout } from '../shared/layout.js';

/** The signed-in wallet's pages, in the order the navigation lists them. */
const WALLET_PAGES = [
  { path: '/wallet', label: 'Balance' },
  { path: '/wallet/transactions', label: 'Transaction history' },
  { path: '/wallet/apps', label: 'Connected apps' },
  { path: '/wallet/subscriptions', label: 'Subscriptions' },
  { path: '/wallet/notifications', label: 'Notifications' },
] as const;

type WalletPath = (typeof WALLET_PAGES)[number]['path'];

/** Who is signed in, for the frame of every page (and the sign-out form's CSRF token). */
export type Viewer = { csrf: string; userLabel: string };

/** A signed-in page: navigation with the current page marked, the user, sign-out, then the body. */
function walletLayout(current: WalletPath, viewer: Viewer, body: SafeHtml): SafeHtml {
  const title = WALLET_PAGES.find((p) => p.path === current)?.label ?? 'Wallet';
  const links = WALLET_PAGES.map(
    (p) =>
      html`<li><a href="${p.path}"${p.path === current ? html` aria-current="page"` : ''}>${p.label}</a></li>`,
  );
  return layout(
    title,
    html`<header class="bar"><nav class="tabs" aria-label="Wallet"><ul>${links}</ul></nav>
<form method="post" action="/wallet/logout" class="muted">Signed in as ${viewer.userLabel}${csrfField(viewer.csrf)}<button type="submit">Sign out</button></form></header>
<h1>${title}</h1>${body}`,
    'askTIAN Wallet',
    { wide: true },
  );
}

const TYPE_LABELS: Record<WalletTransaction['type'], string> = {
  deduct: 'Payment',
  subscription_charge: 'Subscription charge',
  credit: 'Points added',
  refund: 'Refund',
};

/** Where a transaction stands, in the user's words. */
function transactionStatus(t: WalletTransaction): string {
  if (t.type === 'deduct' && t.refundedAmount > 0) {
    return t.refundedAmount >= -t.amount ? 'Refunded' : `Partly refunded (${t.refundedAmount} points back)`;
  }
  return 'Completed';
}

const signed = (n: number) => (n > 0 ? `+${n}` : `−${-n}`);

function transactionsTable(rows: WalletTransaction[]): SafeHtml {
  if (rows.length === 0) return html`<p>No transactions yet.</p>`;
  return html`<table><thead><tr><th scope="col">Date</th><th scope="col">App</th><th scope="col">Description</th>
<th scope="col" class="num">Amount</th><th scope="col">Status</th></tr></thead><tbody>${rows.map(
    (t) => html`<tr><td class="when">${formatWhen(t.createdAt)}</td><td>${t.partnerName ?? 'askTIAN'}</td>
<td>${t.description ?? TYPE_LABELS[t.type]}<br><span class="muted id">${t.refundOf ? `Refund of ${t.refundOf}` : TYPE_LABELS[t.type]} · ${t.transactionId}</span></td>
<td class="num ${t.amount > 0 ? 'plus' : 'minus'}">${signed(t.amount)} points</td><td>${transactionStatus(t)}</td></tr>`,
  )}</tbody></table>`;
}

export function balancePage(
  viewer: Viewer,
  opts: { balance: number; latest: WalletTransactionPage; notifications: number },
): SafeHtml {
  const notices =
    opts.notifications === 0
      ? ''
      : html`<p class="notice" role="status">You have ${opts.notifications} ${opts.notifications === 1 ? 'notification' : 'notifications'}. <a href="/wallet/notifications">Read ${opts.notifications === 1 ? 'it' : 'them'}</a>.</p>`;
  return walletLayout(
    '/wallet',
    viewer,
    html`<p class="balance">Your balance: <strong>${opts.balance} points</strong></p>${notices}
<h2>Latest transactions</h2>${transactionsTable(opts.latest.data)}
${opts.latest.older ? html`<p><a href="/wallet/transactions">All transactions</a></p>` : ''}`,
  );
}

/** A link that names none of the user's transactions: the history's frame, the reason, a way back. */
export function badHistoryLinkPage(viewer: Viewer, message: string): SafeHtml {
  return walletLayout(
    '/wallet/transactions',
    viewer,
    html`<p class="error" role="alert">${message}</p><p><a href="/wallet/transactions">Your latest transactions</a></p>`,
  );
}

export function transactionsPage(viewer: Viewer, page: WalletTransactionPage): SafeHtml {
  const links = [
    page.newer
      ? html`<a href="/wallet/transactions?${new URLSearchParams({ after: page.newer })}">Newer</a>`
      : '',
    page.older
      ? html`<a href="/wallet/transactions?${new URLSearchParams({ before: page.older })}">Older</a>`
      : '',
  ].filter((l) => l !== '');
  return walletLayout(
    '/wallet/transactions',
    viewer,
    html`${transactionsTable(page.data)}
${links.length > 0 ? html`<nav class="tabs" aria-label="Pages of transactions"><ul>${links.map((l) => html`<li>${l}</li>`)}</ul></nav>` : ''}`,
  );
}

const day = (d: Date | string | null) => (d === null ? '' : new Date(d).toISOString().slice(0, 10));

export function appsPage(viewer: Viewer, apps: ConnectedApp[]): SafeHtml {
  const body =
    apps.length === 0
      ? html`<p>No apps are connected to your wallet.</p>`
      : html`<ul class="plain">${apps.map(
          (
            a,
          ) => html`<li><h2>${a.name}</h2><p class="muted">Connected since ${day(a.connectedAt)}. It can:</p>
<ul class="scopes">${a.scopes.map((s) => html`<li>${SCOPE_DESCRIPTIONS[s as Scope] ?? s}</li>`)}</ul>
<form method="post" action="/wallet/apps/revoke">${csrfField(viewer.csrf)}
<input type="hidden" name="partner_id" value="${a.partnerId}">
<button type="submit">Revoke access for ${a.name}</button></form></li>`,
        )}</ul>`;
  return walletLayout('/wallet/apps', viewer, body);
}

/** Where a subscription stands, in the user's words. */
function subscriptionState(s: WalletSubscription): string {
  if (s.status === 'canceled') return `Ended on ${day(s.endedAt)}.`;
  if (s.status === 'past_due')
    return `The last payment failed; it is tried again on ${day(s.nextAttemptAt)}.`;
  if (s.cancelAtPeriodEnd) return `Canceled; it ends on ${day(s.currentPeriodEnd)} and is not charged again.`;
  return `Renews on ${day(s.nextAttemptAt)}.`;
}

/** The user's subscriptions with every app; running ones can be canceled (at period end, or now). */
export function subscriptionsPage(viewer: Viewer, subs: WalletSubscription[]): SafeHtml {
  const body =
    subs.length === 0
      ? html`<p>You have no subscriptions.</p>`
      : html`<ul class="plain">${subs.map((s) => {
          const next = presentSubscription(s).nextChargeAt;
          const cancel =
            s.status === 'canceled'
              ? ''
              : html`<form method="post" action="/wallet/subscriptions/cancel">${csrfField(viewer.csrf)}
<input type="hidden" name="subscription_id" value="${s.publicId}">
${s.status === 'active' && !s.cancelAtPeriodEnd ? html`<button type="submit" name="when" value="period_end">Cancel ${s.planName} at period end</button>` : ''}
<button type="submit" name="when" value="now">Cancel ${s.planName} now</button></form>`;
          return html`<li><h2>${s.planName}</h2><p>With ${s.partnerName}, ${s.amount} points a month.</p>
<p>${subscriptionState(s)}</p><p class="muted">Next charge: ${next ? `${day(next)}, ${s.amount} points` : 'none'}.</p>${cancel}</li>`;
        })}</ul>`;
  return walletLayout('/wallet/subscriptions', viewer, body);
}

export function notificationsPage(viewer: Viewer, notifications: NotificationView[]): SafeHtml {
  const body =
    notifications.length === 0
      ? html`<p>No notifications. Warnings about your connected apps (such as a token about to expire) appear here.</p>`
      : notifications.map(
          (n) => html`<section class="notice" role="status"><h2>${n.title}</h2><p>${n.text}</p>
<form method="post" action="/wallet/notifications/dismiss">${csrfField(viewer.csrf)}
<input type="hidden" name="notification_id" value="${n.id}">
<button type="submit">Dismiss</button></form></section>`,
        );
  return walletLayout('/wallet/notifications', viewer, html`${body}`);
}
