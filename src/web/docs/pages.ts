import type { OpenApiDocument } from '../../http/spec.js';
import { derefIn } from '../../http/spec.js';
import { escapeHtml, html, SafeHtml } from '../shared/html.js';
import { STYLE } from '../shared/layout.js';
import { type ErrorCodeDoc, OAUTH_ERRORS } from './error-codes.js';

const DOCS_STYLE = `
main.wide{max-width:60rem} main.full{max-width:none;margin:0;border-radius:0;box-shadow:none;padding:1rem 2rem}
nav.docs{display:flex;flex-wrap:wrap;gap:.3rem 1.2rem;margin:0 0 1.5rem;font-size:.95rem}
nav.docs a{color:#0047b3} a{color:#0047b3}
table{border-collapse:collapse;width:100%;margin:.6rem 0 1.2rem;font-size:.92rem}
th,td{text-align:left;vertical-align:top;border-bottom:1px solid #ddd;padding:.4rem .5rem}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.88em}
code{background:#f0f0f3;border-radius:4px;padding:.05rem .3rem}
pre{background:#1d1d1f;color:#f5f5f7;padding:1rem;border-radius:8px;overflow-x:auto;line-height:1.45}
pre code{background:none;padding:0;color:inherit}
h2{font-size:1.1rem;margin-top:2rem} h3{font-size:1rem;margin-top:1.6rem}
ul.links li{margin:.45rem 0} .status{font-weight:600}`;

/** Swagger UI brings its own look: the shared STYLE's global button and heading rules would fight it. */
const REFERENCE_STYLE = `
body{margin:0;font-family:system-ui,sans-serif;color:#1d1d1f} main.full{padding:1rem 2rem}
nav.docs{display:flex;flex-wrap:wrap;gap:.3rem 1.2rem;margin:0 0 1rem;font-size:.95rem}
a{color:#0047b3} h1{font-size:1.3rem;margin:.5rem 0} .muted{color:#595959;font-size:.9rem}
.notice{background:#fff8e1;border:1px solid #f0c36d;border-radius:8px;padding:.8rem;margin:1rem 0}`;

const NAV = html`<nav class="docs" aria-label="Documentation">
<a href="/">Home</a><a href="/docs">API reference</a><a href="/docs/webhooks">Webhooks</a>
<a href="/docs/errors">Error codes</a><a href="/openapi.yaml">openapi.yaml</a>
<a href="/wallet/login">Wallet sign-in</a><a href="/dashboard">Partner dashboard</a></nav>`;

type LayoutOptions = { width?: 'wide' | 'full'; head?: SafeHtml; scripts?: string[] };

/** The docs' page frame: the shared look (STYLE) with room for tables and code, and the docs navigation. */
export function docsLayout(title: string, body: SafeHtml, opts: LayoutOptions = {}): SafeHtml {
  const scripts = (opts.scripts ?? []).map((src) => html`<script src="${src}"></script>`);
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><title>${title} · TIAN Points</title>
<style>${new SafeHtml(opts.width === 'full' ? REFERENCE_STYLE : STYLE + DOCS_STYLE)}</style>${opts.head ?? ''}</head>
<body><main class="${opts.width ?? 'wide'}">${NAV}${body}</main>${scripts}</body></html>`;
}

/** One line of spec prose: escaped, with `code` spans and **bold**. */
export function inlineProse(text: string): SafeHtml {
  return new SafeHtml(
    text
      .split('`')
      .map((part, i) =>
        i % 2 === 1
          ? `<code>${escapeHtml(part)}</code>`
          : escapeHtml(part).replace(/\*\*(.+?)\*\*/g, '<strong>$1</strong>'),
      )
      .join(''),
  );
}

/** Spec prose to HTML: paragraphs and "- " lists of {@link inlineProse}. */
export function prose(text: string | undefined): SafeHtml {
  if (!text) return html``;
  const inline = (s: string) => inlineProse(s).value;
  const blocks = text.trim().split(/\n\s*\n/);
  return new SafeHtml(
    blocks
      .map((block) => {
        const lines = block.split('\n');
        const items: string[] = [];
        const para: string[] = [];
        for (const line of lines) {
          const item = /^\s*- (.*)$/.exec(line);
          if (item) items.push(item[1] ?? '');
          else if (items.length > 0 && /^\s+\S/.test(line)) items[items.length - 1] += ` ${line.trim()}`;
          else para.push(line.trim());
        }
        const p = para.length > 0 ? `<p>${inline(para.join(' '))}</p>` : '';
        const ul = items.length > 0 ? `<ul>${items.map((i) => `<li>${inline(i)}</li>`).join('')}</ul>` : '';
        return p + ul;
      })
      .join(''),
  );
}

export function landingPage(spec: OpenApiDocument): SafeHtml {
  return docsLayout(
    'Welcome',
    html`<h1>TIAN Points</h1>
<p>The askTIAN Wallet back end that partner apps integrate with: read a user's TIAN Points balance,
deduct and refund points, run monthly subscriptions, get the user's permission through OAuth 2.0,
and receive every change as a signed webhook.</p>
<h2>For wallet users</h2>
<ul class="links"><li><a href="/wallet/login">Sign in to your wallet</a>: your balance, connected apps and subscriptions.</li></ul>
<h2>For partners</h2>
<ul class="links">
<li><a href="/docs">API reference</a>: every operation, schema and example (${spec.info?.title} ${spec.info?.version}).</li>
<li><a href="/docs/webhooks">Webhook events</a> and how to verify their signatures.</li>
<li><a href="/docs/errors">Error codes</a>: what each problem <code>code</code> means and what to do.</li>
<li><a href="/openapi.yaml">openapi.yaml</a>: the OpenAPI 3.1 contract, for code generators and API tools.</li>
<li><a href="/.well-known/oauth-authorization-server">OAuth 2.0 server metadata</a> (RFC 8414).</li>
<li><a href="/dashboard">Partner dashboard</a>: app settings, webhook endpoints and the delivery log.</li>
</ul>
<h2>Try the OAuth flow locally</h2>
<p>With the server running (<code>npm start</code>), run <code>npm run demo</code> in another terminal: it
creates a demo app and a demo user, prints a sign-in link to open here, and then the tokens and
ready-to-paste <code>curl</code> commands.</p>`,
  );
}

/** The API reference: Swagger UI (served from our own node_modules) over /openapi.yaml. */
export function referencePage(): SafeHtml {
  return docsLayout(
    'API reference',
    html`<h1>API reference</h1>
<p class="muted">Rendered from <a href="/openapi.yaml">openapi.yaml</a>, the contract this server validates
every request against. Webhook events and signature checks: <a href="/docs/webhooks">Webhooks</a>;
every error code: <a href="/docs/errors">Error codes</a>.</p>
<noscript><p class="notice">The interactive reference needs JavaScript. Without it, read
<a href="/openapi.yaml">openapi.yaml</a> directly, or the <a href="/docs/webhooks">webhook</a> and
<a href="/docs/errors">error code</a> pages.</p></noscript>
<div id="swagger-ui"></div>`,
    {
      width: 'full',
      head: html`<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="stylesheet" href="/docs/assets/swagger-overrides.css">`,
      scripts: ['/docs/assets/swagger-ui-bundle.js', '/docs/assets/swagger-init.js'],
    },
  );
}

const VERIFY_SAMPLE = `import express from 'express';
import { Webhook } from 'standardwebhooks';

// The endpoint's signing secret (whsec_...), shown once when you register or rotate it.
const webhook = new Webhook(process.env.TIAN_WEBHOOK_SECRET);
const seen = new Set(); // use your database: deliveries are at least once

const app = express();
// Verify the raw bytes exactly as sent: parse the JSON only after the signature checks out.
app.post('/webhooks/tian', express.raw({ type: 'application/json' }), (req, res) => {
  let event;
  try {
    // Checks the v1 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}" and that the
    // timestamp is within 5 minutes; throws WebhookVerificationError otherwise.
    event = webhook.verify(req.body, {
      'webhook-id': req.header('webhook-id') ?? '',
      'webhook-timestamp': req.header('webhook-timestamp') ?? '',
      'webhook-signature': req.header('webhook-signature') ?? '',
    });
  } catch {
    return res.status(400).send('bad signature');
  }
  const id = req.header('webhook-id');
  if (!seen.has(id)) {
    seen.add(id);
    if (event.event === 'token.revoked') {
      // forget the stored tokens of event.userId
    }
  }
  res.status(204).end(); // any 2xx acknowledges; anything else is retried
});`;

const MANUAL_SAMPLE = `import { createHmac, timingSafeEqual } from 'node:crypto';

function verify(secret, id, timestamp, signatureHeader, rawBody) {
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = createHmac('sha256', key).update(\`\${id}.\${timestamp}.\${rawBody}\`).digest();
  // Several signatures during a secret rotation: any one may match.
  return signatureHeader.split(' ').some((s) => {
    const [version, sig] = s.split(',');
    const given = Buffer.from(sig ?? '', 'base64');
    return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
  });
}`;

type Schema = OpenApiDocument;

function refName(s: Schema): string | undefined {
  return typeof s?.$ref === 'string' ? s.$ref.split('/').pop() : undefined;
}

function typeOf(spec: OpenApiDocument, s: Schema): string {
  const name = refName(s);
  const r = derefIn(spec, s) ?? {};
  if (r.type === 'array') return `array of ${typeOf(spec, r.items ?? {})}`;
  const base = Array.isArray(r.type) ? r.type.join(' | ') : (r.type ?? 'any');
  const detail = r.enum
    ? `: ${r.enum.map((v: unknown) => JSON.stringify(v)).join(', ')}`
    : r.format
      ? ` (${r.format})`
      : '';
  return name && r.type === 'object' ? name : `${base}${detail}`;
}

/** An example payload from the schema's own examples (`example`, else each property's). */
function exampleOf(spec: OpenApiDocument, s: Schema, depth = 0): unknown {
  const r = derefIn(spec, s) ?? {};
  if (r.example !== undefined) return r.example;
  if (depth > 4) return null;
  if (r.type === 'object' && r.properties) {
    return Object.fromEntries(
      Object.entries<Schema>(r.properties).map(([k, v]) => [k, exampleOf(spec, v, depth + 1)]),
    );
  }
  if (r.type === 'array') return [exampleOf(spec, r.items ?? {}, depth + 1)];
  return r.enum?.[0] ?? null;
}

/** A table of an object schema's fields, then the same for each named object schema it refers to. */
function schemaTables(spec: OpenApiDocument, root: Schema): SafeHtml {
  const done = new Set<string>();
  const tables: SafeHtml[] = [];
  const visit = (s: Schema, caption: string) => {
    const r = derefIn(spec, s) ?? {};
    if (r.type !== 'object' || !r.properties) return;
    const required = new Set<string>(r.required ?? []);
    const nested: [Schema, string][] = [];
    const rows = Object.entries<Schema>(r.properties).map(([name, p]) => {
      const target = p.type === 'array' ? p.items : p;
      const n = refName(target ?? {});
      if (n && !done.has(n) && derefIn(spec, target)?.type === 'object') {
        done.add(n);
        nested.push([target, n]);
      }
      const d = derefIn(spec, p) ?? {};
      return html`<tr><td><code>${name}</code></td><td>${typeOf(spec, p)}</td><td>${required.has(name) ? 'yes' : 'no'}</td><td>${inlineProse(p.description ?? d.description ?? '')}</td></tr>`;
    });
    tables.push(
      html`<table><caption class="muted">${caption}</caption><thead><tr><th scope="col">Field</th><th scope="col">Type</th><th scope="col">Required</th><th scope="col">Description</th></tr></thead><tbody>${rows}</tbody></table>`,
    );
    for (const [t, n] of nested) visit(t, n);
  };
  visit(root, refName(root) ?? 'Payload');
  return html`${tables}`;
}

export type WebhookEvent = { name: string; summary: string; description: string; schema: Schema };

/** The `webhooks` of openapi.yaml, one entry per event type. */
export function webhookEvents(spec: OpenApiDocument): WebhookEvent[] {
  return Object.entries<OpenApiDocument>(spec.webhooks ?? {}).map(([name, item]) => {
    const op = item.post ?? {};
    return {
      name,
      summary: op.summary ?? '',
      description: op.description ?? '',
      schema: op.requestBody?.content?.['application/json']?.schema ?? {},
    };
  });
}

export function webhooksPage(spec: OpenApiDocument): SafeHtml {
  const events = webhookEvents(spec);
  const headers = ['WebhookIdHeader', 'WebhookTimestampHeader', 'WebhookSignatureHeader'].map(
    (k) => spec.components.parameters[k],
  );
  return docsLayout(
    'Webhooks',
    html`<h1>Webhooks</h1>
<p>Every change a partner cares about is sent to your registered endpoints as a signed <code>POST</code>
in the <a href="https://www.standardwebhooks.com/">Standard Webhooks</a> format. Register endpoints and
pick their events in the <a href="/dashboard">partner dashboard</a> or with
<code>POST /api/v1/partner/webhook-endpoints</code>.</p>
<ul>
<li>Delivery is at least once and not ordered: deduplicate on <code>webhook-id</code>.</li>
<li>Answer any 2xx within 15 seconds to acknowledge; anything else (and redirects) is retried for about
28 hours (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h). <code>410 Gone</code>, or 5 days of failures, disables the endpoint.</li>
<li>Missed events can be resent one by one or recovered since a time.</li>
</ul>
<h2 id="headers">Headers</h2>
<table><thead><tr><th scope="col">Header</th><th scope="col">Meaning</th></tr></thead><tbody>
${headers.map((h) => html`<tr><td><code>${h.name}</code></td><td>${inlineProse(h.description)}</td></tr>`)}
</tbody></table>
<h2 id="verify">Verify a signature</h2>
<p>Compute the signature over the raw body bytes, before any JSON parsing, and reject timestamps more
than 5 minutes away from your clock (replays). With the <code>standardwebhooks</code> npm package
(libraries exist for most languages):</p>
<pre><code>${VERIFY_SAMPLE}</code></pre>
<p>Without a library, the same check by hand:</p>
<pre><code>${MANUAL_SAMPLE}</code></pre>
<p>After a secret rotation both the old and the new secret sign for 24 hours, so
<code>webhook-signature</code> holds two space-separated signatures; accept the request when one matches.</p>
<h2 id="events">Events</h2>
<ul>${events.map((e) => html`<li><a href="#${e.name}"><code>${e.name}</code></a>: ${e.summary}</li>`)}</ul>
${events.map(
  (e) => html`<h3 id="${e.name}"><code>${e.name}</code>: ${e.summary}</h3>
${prose(e.description)}${schemaTables(spec, e.schema)}
<p class="muted">Example body</p><pre><code>${JSON.stringify(exampleOf(spec, e.schema), null, 2)}</code></pre>`,
)}`,
  );
}

export function errorsIndexPage(codes: ErrorCodeDoc[]): SafeHtml {
  return docsLayout(
    'Error codes',
    html`<h1>Error codes</h1>
<p>The points, subscription and partner APIs answer every error with an RFC 9457
<code>application/problem+json</code> body. Branch on its <code>code</code>; its <code>type</code> is the
page here that explains it.</p>
<pre><code>${JSON.stringify(
      {
        type: '<this server>/docs/errors/insufficient_points',
        title: 'Insufficient points',
        status: 402,
        code: 'insufficient_points',
        detail: 'The user has 5 points; 10 are needed.',
        balance: 5,
      },
      null,
      2,
    )}</code></pre>
<table><thead><tr><th scope="col">Code</th><th scope="col">Status</th><th scope="col">Meaning</th></tr></thead><tbody>
${codes.map(
  (c) =>
    html`<tr><td><a href="/docs/errors/${c.code}"><code>${c.code}</code></a></td><td>${c.status ?? ''}</td><td>${inlineProse(c.meaning)}</td></tr>`,
)}
</tbody></table>
<h2 id="oauth">OAuth endpoints</h2>
<p>The token, revocation and introspection endpoints answer with the RFC 6749 error body instead
(<code>{"error": "...", "error_description": "..."}</code>), because stock OAuth client libraries parse
that; the authorization endpoint sends the same codes back to your <code>redirect_uri</code>.</p>
<table><thead><tr><th scope="col"><code>error</code></th><th scope="col">Where</th><th scope="col">Meaning and what to do</th></tr></thead><tbody>
${OAUTH_ERRORS.map(
  (o) =>
    html`<tr><td id="${o.code}"><code>${o.code}</code></td><td>${o.where}</td><td>${inlineProse(o.meaning)}</td></tr>`,
)}
</tbody></table>`,
  );
}

export function errorCodePage(c: ErrorCodeDoc): SafeHtml {
  return docsLayout(
    c.code,
    html`<p class="muted"><a href="/docs/errors">Error codes</a></p>
<h1><code>${c.code}</code></h1>
<p><span class="status">HTTP ${c.status ?? ''}</span>: ${inlineProse(c.meaning)}</p>
<h2>When it happens</h2>${prose(c.when)}
<h2>What to do</h2>${prose(c.fix)}
${c.example ? html`<h2>Example</h2><pre><code>${JSON.stringify(c.example, null, 2)}</code></pre>` : ''}`,
  );
}

export function notFoundPage(what: string): SafeHtml {
  return docsLayout(
    'Not found',
    html`<h1>Not found</h1><p class="error">${what}</p><p><a href="/docs/errors">All error codes</a></p>`,
  );
}
