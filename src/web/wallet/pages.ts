import { AUTHORIZE_PARAMS, type AuthorizeParams } from '../../oauth2/authorize-request.js';
import { SCOPE_DESCRIPTIONS } from '../../oauth2/scopes.js';
import type { Scope } from '../../partners/partners.js';
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
  /** The wallet page to return to after signing in (already checked by walletReturnPath). */
  next?: string | undefined;
  error?: string;
}): SafeHtml {
  const carried = [
    csrfField(opts.csrf),
    ...hiddenAuthorizeFields(opts.authorize),
    opts.next ? html`<input type="hidden" name="next" value="${opts.next}">` : '',
  ];
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
<p class="muted">You can revoke its access at any time under Connected apps in your wallet.</p>
<form method="post" action="/wallet/consent">${csrfField(opts.csrf)}${hiddenAuthorizeFields(opts.authorize)}
<button class="primary" type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></form>`,
  );
}
