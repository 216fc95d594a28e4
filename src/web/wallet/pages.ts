import type { NotificationView } from '../../notifications/presenter.js';
import { AUTHORIZE_PARAMS, type AuthorizeParams } from '../../oauth2/authorize-request.js';
import type { ConnectedApp } from '../../oauth2/connected-apps.js';
import { SCOPE_DESCRIPTIONS } from '../../oauth2/scopes.js';
import type { Scope } from '../../partners/partners.js';
import type { WalletSubscription } from '../../subscriptions/service.js';
import { html, type SafeHtml } from '../shared/html.js';
import { csrfField, layout } from '../shared/layout.js';

/** The authorization request carried through the sign-in and consent forms. */
function hiddenAuthorizeFields(params: AuthorizeParams | undefined): SafeHtml[] {
  if (!params) return [];
  return AUTHORIZE_PARAMS.filter((k) => params[k] !== undefined).map(
    (k) => html`<input type="hidden" name="${k}" value="${params[k]}">`,
  );
}

export function loginPage(opts: {
  csrf: string;
  authorize?: AuthorizeParams;
  appName?: string;
  error?: string;
}): SafeHtml {
  const carried = [csrfField(opts.csrf), ...hiddenAuthorizeFields(opts.authorize)];
  return layout(
    'Sign in',
    html`<h1>Sign in to askTIAN Wallet</h1>
${opts.appName ? html`<p><strong>${opts.appName}</strong> wants to connect to your wallet.</p>` : ''}
${opts.error ? html`<p class="error" role="alert">${opts.error}</p>` : ''}
<form method="post" action="/wallet/login">${carried}<input type="hidden" name="method" value="password">
<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required>
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button class="primary" type="submit">Sign in</button></form>
<hr><p class="muted">Or sign in with your Privy session</p>
<form method="post" action="/wallet/login">${carried}<input type="hidden" name="method" value="privy">
<label for="privy_id">Privy user id</label><input id="privy_id" name="privy_id" type="text" required>
<label for="session_token">Privy session token</label><input id="session_token" name="session_token" type="password" required>
<button type="submit">Sign in with Privy</button></form>`,
  );
}

export function consentPage(opts: {
  csrf: string;
  appName: string;
  scopes: Scope[];
  userLabel: string;
  authorize: AuthorizeParams;
}): SafeHtml {
  return layout(
    'Allow access',
    html`<h1><strong>${opts.appName}</strong> wants to access your askTIAN Wallet</h1>
<p>Signed in as ${opts.userLabel}. If you allow it, ${opts.appName} will be able to:</p>
<ul class="scopes">${opts.scopes.map((s) => html`<li>${SCOPE_DESCRIPTIONS[s]}</li>`)}</ul>
<p class="muted">You can disconnect it at any time in your wallet settings.</p>
<form method="post" action="/wallet/consent">${csrfField(opts.csrf)}${hiddenAuthorizeFields(opts.authorize)}
<button class="primary" type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></form>`,
  );
}

export function settingsPage(opts: {
  csrf: string;
  userLabel: string;
  apps: ConnectedApp[];
  notifications?: NotificationView[];
  subscriptions?: WalletSubscription[];
}): SafeHtml {
  const notices = (opts.notifications ?? []).map(
    (n) => html`<section class="notice" role="status"><strong>${n.title}</strong><p>${n.text}</p>
<form method="post" action="/wallet/settings/notifications/dismiss">${csrfField(opts.csrf)}
<input type="hidden" name="notification_id" value="${n.id}">
<button type="submit">Dismiss</button></form></section>`,
  );
  const apps =
    opts.apps.length === 0
      ? html`<p>No apps are connected to your wallet.</p>`
      : html`<ul class="apps">${opts.apps.map(
          (a) => html`<li><strong>${a.name}</strong> — ${a.scopes.join(', ')}
<ul>${a.scopes.map((s) => html`<li>${SCOPE_DESCRIPTIONS[s as Scope] ?? s}</li>`)}</ul>
<form method="post" action="/wallet/settings/revoke">${csrfField(opts.csrf)}
<input type="hidden" name="partner_id" value="${a.partnerId}">
<button type="submit">Disconnect ${a.name}</button></form></li>`,
        )}</ul>`;
  return layout(
    'Connected apps',
    html`<h1>Connected apps</h1><p>Signed in as ${opts.userLabel}.</p>${notices}${apps}
${subscriptionsSection(opts.csrf, opts.subscriptions ?? [])}
<form method="post" action="/wallet/logout">${csrfField(opts.csrf)}<button type="submit">Sign out</button></form>`,
  );
}

const day = (d: Date | null) => d?.toISOString().slice(0, 10) ?? '';

/** Where a subscription stands, in the user's words. */
function subscriptionState(s: WalletSubscription): string {
  if (s.status === 'canceled') return `Ended on ${day(s.endedAt)}.`;
  if (s.status === 'past_due')
    return `The last payment failed; it is tried again on ${day(s.nextAttemptAt)}.`;
  if (s.cancelAtPeriodEnd) return `Canceled; it ends on ${day(s.currentPeriodEnd)} and is not charged again.`;
  return `Renews on ${day(s.nextAttemptAt)}.`;
}

/** The user's subscriptions with every app; running ones can be canceled (at period end, or now). */
function subscriptionsSection(csrf: string, subs: WalletSubscription[]): SafeHtml {
  const list =
    subs.length === 0
      ? html`<p>You have no subscriptions.</p>`
      : html`<ul class="subscriptions">${subs.map((s) => {
          const cancel =
            s.status === 'canceled'
              ? ''
              : html`<form method="post" action="/wallet/settings/subscriptions/cancel">${csrfField(csrf)}
<input type="hidden" name="subscription_id" value="${s.publicId}">
${s.status === 'active' && !s.cancelAtPeriodEnd ? html`<button type="submit" name="when" value="period_end">Cancel ${s.planName} at period end</button>` : ''}
<button type="submit" name="when" value="now">Cancel ${s.planName} now</button></form>`;
          return html`<li><strong>${s.planName}</strong> with ${s.partnerName} — ${s.amount} points a month
<p>${subscriptionState(s)}</p>${cancel}</li>`;
        })}</ul>`;
  return html`<h2>Subscriptions</h2>${list}`;
}
