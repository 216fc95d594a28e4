import type { components } from '../../../generated/types.js';
import { SCOPE_DESCRIPTIONS } from '../../oauth2/scopes.js';
import { type NewPartner, SCOPES } from '../../partners/partners.js';
import type { LastAttempt } from '../../webhooks/delivery-log.js';
import { html, type SafeHtml } from '../shared/html.js';
import { csrfField, layout } from '../shared/layout.js';
import type { Flash } from './flash.js';
import type { EndpointForm, EventChoice } from './forms.js';
import type { PartnerPrincipal } from './sessions.js';

type Schemas = components['schemas'];
const SITE = 'askTIAN Partner Dashboard';

/** What every signed-in page shows besides its own content. */
export type Frame = {
  csrf: string;
  who: PartnerPrincipal;
  flash?: Flash | undefined;
  error?: string | undefined;
};

type Area = 'app' | 'webhooks';

function page(title: string, area: Area, f: Frame, body: SafeHtml): SafeHtml {
  const link = (href: string, label: string, here: boolean) =>
    html`<li><a href="${href}"${here ? html` aria-current="page"` : ''}>${label}</a></li>`;
  return layout(
    title,
    html`<header class="bar"><nav class="tabs" aria-label="Dashboard"><ul>${link('/dashboard/app', 'App settings', area === 'app')}${link(
      '/dashboard/webhooks',
      'Webhooks',
      area === 'webhooks',
    )}</ul></nav>
<div class="muted">${f.who.partnerName} · signed in as ${f.who.email} <form method="post" action="/dashboard/logout" class="inline">${csrfField(f.csrf)}<button type="submit">Sign out</button></form></div></header>
<h1>${title}</h1>
${f.error ? html`<p class="error" role="alert">${f.error}</p>` : ''}
${f.flash ? flashBox(f.flash) : ''}
${body}`,
    SITE,
    { wide: true },
  );
}

function flashBox(flash: Flash): SafeHtml {
  return html`<div class="notice" role="status"><p>${flash.notice}</p>${
    flash.secret
      ? html`<p><label for="new-secret">${flash.secret.label}</label>
<input id="new-secret" type="text" readonly value="${flash.secret.value}"></p>
<p><strong>Copy it now: it is shown only this once.</strong> We keep only a hash or an encrypted copy,
so nobody can show it to you again; if it is lost, rotate it again.</p>`
      : ''
  }</div>`;
}

export function loginPage(opts: { csrf: string; email?: string; error?: string }): SafeHtml {
  return layout(
    'Sign in',
    html`<h1>Partner dashboard</h1>
<p>Sign in with your partner account. Wallet accounts do not work here; your administrator
creates partner accounts.</p>
${opts.error ? html`<p class="error" role="alert">${opts.error}</p>` : ''}
<form method="post" action="/dashboard/login">${csrfField(opts.csrf)}
<label for="email">Email</label><input id="email" name="email" type="email" autocomplete="username" required value="${opts.email ?? ''}">
<label for="password">Password</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button class="primary" type="submit">Sign in</button></form>`,
    SITE,
  );
}

export function appPage(
  f: Frame,
  app: { clientId: string; secretRotatedAt: Date | null; settings: NewPartner },
): SafeHtml {
  const s = app.settings;
  return page(
    'App settings',
    'app',
    f,
    html`<p>Client ID: <code>${app.clientId}</code></p>
<form method="post" action="/dashboard/app">${csrfField(f.csrf)}
<label for="name">App name (users see it on the consent screen)</label>
<input id="name" name="name" type="text" required maxlength="100" value="${s.name}">
<label for="redirect_uris">Redirect URIs, one per line (https, or http on 127.0.0.1 / [::1]; compared exactly)</label>
<textarea id="redirect_uris" name="redirect_uris" rows="4">${s.redirectUris.join('\n')}</textarea>
<fieldset><legend>Scopes your app may request</legend>
<p class="muted">Removing a scope takes it away at once: new authorizations cannot ask for it, and tokens users
already granted can no longer use it (they keep the other scopes).</p>
${SCOPES.map(
  (scope) =>
    html`<div class="check"><input type="checkbox" id="scope-${scope}" name="scopes" value="${scope}"${
      s.allowedScopes.includes(scope) ? html` checked` : ''
    }><label for="scope-${scope}"><code>${scope}</code>: ${SCOPE_DESCRIPTIONS[scope]}</label></div>`,
)}</fieldset>
<div class="check"><input type="checkbox" id="require_pkce" name="require_pkce"${s.requirePkce ? html` checked` : ''}>
<label for="require_pkce">Require PKCE (S256) on every authorization request</label></div>
<label for="refresh_grace_seconds">Refresh grace window in seconds (0 to 300): how long a just-used refresh token may be presented again</label>
<div><input id="refresh_grace_seconds" name="refresh_grace_seconds" type="number" min="0" max="300" step="1" required value="${
      Number.isNaN(s.refreshGraceSeconds) ? '' : String(s.refreshGraceSeconds ?? 0)
    }"></div>
<button class="primary" type="submit">Save settings</button></form>
<hr>
<h2>Client secret</h2>
<p>Your client secret is also your API key. ${
      app.secretRotatedAt ? `Last rotated ${app.secretRotatedAt.toISOString()}.` : 'Never rotated.'
    }</p>
<p class="notice"><strong>Warning:</strong> rotating stops the current secret at once. Every call made with
it fails until your servers use the new one.</p>
<form method="post" action="/dashboard/app/rotate-secret">${csrfField(f.csrf)}
<button type="submit">Rotate client secret</button></form>`,
  );
}

function eventBoxes(choices: EventChoice[], selected: readonly string[], idPrefix: string): SafeHtml {
  return html`<fieldset><legend>Event Filter: the events this endpoint receives</legend>
${choices.map(
  (c) =>
    html`<div class="check"><input type="checkbox" id="${idPrefix}-${c.type}" name="events" value="${c.type}"${
      selected.includes(c.type) ? html` checked` : ''
    }><label for="${idPrefix}-${c.type}"><code>${c.type}</code>${c.summary ? ` — ${c.summary}` : ''}</label></div>`,
)}</fieldset>`;
}

function endpointFields(choices: EventChoice[], v: Partial<EndpointForm>, idPrefix: string): SafeHtml {
  return html`<label for="${idPrefix}-url">URL</label>
<input id="${idPrefix}-url" name="url" type="text" inputmode="url" required value="${v.url ?? ''}">
<label for="${idPrefix}-description">Description (optional)</label>
<input id="${idPrefix}-description" name="description" type="text" value="${v.description ?? ''}">
${eventBoxes(choices, v.events ?? [], idPrefix)}`;
}

const state = (e: Schemas['WebhookEndpoint']) =>
  e.enabled ? 'Enabled' : `Disabled${e.disabledReason ? ` (${e.disabledReason})` : ''}`;

export function webhooksPage(
  f: Frame,
  endpoints: Schemas['WebhookEndpoint'][],
  choices: EventChoice[],
  draft: Partial<EndpointForm>,
): SafeHtml {
  return page(
    'Webhooks',
    'webhooks',
    f,
    html`<h2>Endpoints</h2>
${
  endpoints.length === 0
    ? html`<p>No webhook endpoints yet. Add one below to start receiving events.</p>`
    : html`<table><caption class="muted">Your webhook endpoints</caption>
<thead><tr><th scope="col">URL</th><th scope="col">Events</th><th scope="col">State</th></tr></thead><tbody>
${endpoints.map(
  (e) =>
    html`<tr><td><a href="/dashboard/webhooks/${e.endpointId}">${e.url}</a>${
      e.description ? html`<br><span class="muted">${e.description}</span>` : ''
    }</td><td>${e.events.join(', ')}</td><td>${state(e)}</td></tr>`,
)}</tbody></table>`
}
<hr>
<h2>Add an endpoint</h2>
<form method="post" action="/dashboard/webhooks">${csrfField(f.csrf)}
${endpointFields(choices, draft, 'new')}
<button class="primary" type="submit">Add endpoint</button></form>`,
  );
}

const when = (iso: string | null) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : '—');

export function endpointPage(
  f: Frame,
  e: Schemas['WebhookEndpoint'],
  deliveries: Schemas['WebhookDeliveryList'] & { last: Map<string, LastAttempt> },
  choices: EventChoice[],
  draft: Partial<EndpointForm> | undefined,
): SafeHtml {
  const id = e.endpointId;
  const action = (path: string, label: string, extra: SafeHtml | string = '') =>
    html`<form method="post" action="/dashboard/webhooks/${id}/${path}" class="inline">${csrfField(f.csrf)}${extra}<button type="submit">${label}</button></form>`;
  return page(
    'Webhook endpoint',
    'webhooks',
    f,
    html`<p><a href="/dashboard/webhooks">All endpoints</a></p>
<p><code>${id}</code> · <strong>${state(e)}</strong>${
      e.disabledDetail ? html` · <span class="muted">${e.disabledDetail}</span>` : ''
    }${e.failingSince ? html` · failing since ${when(e.failingSince)}` : ''}</p>
<p>${
      e.enabled
        ? action('enabled', 'Disable endpoint', html`<input type="hidden" name="enabled" value="false">`)
        : action('enabled', 'Enable endpoint', html`<input type="hidden" name="enabled" value="true">`)
    } ${action('test', 'Send test event')}</p>
<h2>Settings</h2>
<form method="post" action="/dashboard/webhooks/${id}">${csrfField(f.csrf)}
${endpointFields(choices, draft ?? { url: e.url, events: e.events, description: e.description ?? '' }, 'edit')}
<button class="primary" type="submit">Save endpoint</button></form>
<hr>
<h2>Signing secret</h2>
<p>${e.secretRotatedAt ? `Last rotated ${when(e.secretRotatedAt)}.` : 'Never rotated.'}${
      e.previousSecretExpiresAt
        ? ` The previous secret also signs until ${when(e.previousSecretExpiresAt)}.`
        : ''
    } After a rotation the previous secret keeps signing for 24 hours, so you can switch without losing events.</p>
${action('rotate-secret', 'Rotate signing secret')}
<hr>
<h2>Recover failed deliveries</h2>
<form method="post" action="/dashboard/webhooks/${id}/recover">${csrfField(f.csrf)}
<label for="since">Resend the events whose delivery failed since (UTC)</label>
<div><input id="since" name="since" type="datetime-local" required></div>
<button type="submit">Recover</button></form>
<hr>
<h2>Delivery log</h2>
${deliveryTable(f, deliveries.data, deliveries.last)}
${
  deliveries.nextCursor
    ? html`<p><a href="/dashboard/webhooks/${id}?cursor=${encodeURIComponent(deliveries.nextCursor)}">Older deliveries</a></p>`
    : ''
}
<hr>
<h2>Delete this endpoint</h2>
<p>Nothing more is sent to it, and its deliveries leave the log.</p>
${action('delete', 'Delete endpoint')}`,
  );
}

function deliveryTable(
  f: Frame,
  rows: Schemas['WebhookDelivery'][],
  last: Map<string, LastAttempt>,
): SafeHtml {
  if (rows.length === 0) return html`<p>No deliveries yet. Send a test event to see one here.</p>`;
  return html`<table><caption class="muted">Newest first</caption>
<thead><tr><th scope="col">Created</th><th scope="col">Event</th><th scope="col">Status</th><th scope="col" class="num">Attempts</th><th scope="col">Last response</th><th scope="col" class="num">Latency</th><th scope="col"><span class="visually-hidden">Actions</span></th></tr></thead><tbody>
${rows.map(
  (d) => html`<tr><td><a href="/dashboard/deliveries/${d.deliveryId}">${when(d.createdAt)}</a></td>
<td><code>${d.eventType}</code></td><td>${d.status}</td><td class="num">${d.attempts}</td>
${lastResponse(d, last.get(d.deliveryId))}
<td><form method="post" action="/dashboard/deliveries/${d.deliveryId}/resend" class="inline">${csrfField(f.csrf)}<button type="submit" aria-label="Resend ${d.eventType} from ${when(d.createdAt)}">Resend</button></form></td></tr>`,
)}</tbody></table>`;
}

function lastResponse(d: Schemas['WebhookDelivery'], a: LastAttempt | undefined): SafeHtml {
  if (!a) return html`<td class="muted">${d.lastError ?? 'not attempted yet'}</td><td class="num"></td>`;
  return html`<td>${a.statusCode ?? 'no response'}${a.error ? html` <span class="muted">${a.error.slice(0, 120)}</span>` : ''}${
    a.responseSnippet ? html`<br><code>${a.responseSnippet.slice(0, 120)}</code>` : ''
  }</td><td class="num">${a.latencyMs} ms</td>`;
}

export function deliveryPage(f: Frame, d: Schemas['WebhookDeliveryDetail']): SafeHtml {
  return page(
    'Webhook delivery',
    'webhooks',
    f,
    html`<p><a href="/dashboard/webhooks/${d.endpointId}">Back to the endpoint</a></p>
<p><code>${d.deliveryId}</code> of event <code>${d.eventId}</code> (<code>${d.eventType}</code>):
<strong>${d.status}</strong> after ${d.attempts} attempt${d.attempts === 1 ? '' : 's'}${
      d.nextAttemptAt ? `; next attempt ${when(d.nextAttemptAt)}` : ''
    }.</p>
<form method="post" action="/dashboard/deliveries/${d.deliveryId}/resend">${csrfField(f.csrf)}<button type="submit">Resend</button></form>
<h2>Attempts</h2>
${
  d.attemptLog.length === 0
    ? html`<p>No attempts yet.</p>`
    : html`<table><thead><tr><th scope="col" class="num">#</th><th scope="col">At</th><th scope="col">Status</th><th scope="col" class="num">Latency</th><th scope="col">Response</th></tr></thead><tbody>
${d.attemptLog.map(
  (
    a,
  ) => html`<tr><td class="num">${a.attempt}</td><td>${when(a.attemptedAt)}</td><td>${a.statusCode ?? 'no response'}</td>
<td class="num">${a.latencyMs} ms</td><td>${a.error ? html`<span class="error">${a.error}</span> ` : ''}${
    a.responseBody ? html`<pre>${a.responseBody.slice(0, 500)}</pre>` : ''
  }</td></tr>`,
)}</tbody></table>`
}
<h2>Payload</h2>
<pre>${JSON.stringify(d.payload, null, 2)}</pre>`,
  );
}

export function dashboardErrorPage(title: string, message: string, back?: string): SafeHtml {
  return layout(
    title,
    html`<h1>${title}</h1><p class="error">${message}</p>${
      back ? html`<p><a href="${back}">Back to the dashboard</a></p>` : ''
    }`,
    SITE,
  );
}
