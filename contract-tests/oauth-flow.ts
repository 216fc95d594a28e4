import { createHash, randomBytes } from 'node:crypto';
import { isPendingResponse } from './probes.js';

/** Thrown when an OAuth endpoint still answers 501 not_implemented. */
export class OAuthPending extends Error {}

export type TokenSet = {
  access_token: string;
  refresh_token: string;
  scope: string;
  [k: string]: unknown;
};

export type FlowInput = {
  baseUrl: string;
  clientId: string;
  clientSecret: string;
  redirectUri: string;
  email: string;
  password: string;
  scope: string;
};

type Form = {
  action: string;
  method: string;
  fields: [string, string][];
  hasPassword: boolean;
  buttons: [string, string, string][];
};

const decode = (s: string) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&#x27;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');

function attrs(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([\w:-]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?/g)) {
    const name = m[1];
    if (name) out[name.toLowerCase()] = decode(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

/** The forms of a server-rendered page: hidden fields (CSRF, OAuth parameters), inputs and buttons. */
export function parseForms(html: string): Form[] {
  const forms: Form[] = [];
  for (const m of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const a = attrs(m[1] ?? '');
    const inner = m[2] ?? '';
    const fields: [string, string][] = [];
    let hasPassword = false;
    for (const i of inner.matchAll(/<input\b([^>]*)>/gi)) {
      const ia = attrs(i[1] ?? '');
      const type = (ia.type ?? 'text').toLowerCase();
      if (!ia.name) continue;
      if (type === 'password') hasPassword = true;
      if (type === 'submit') continue;
      if ((type === 'checkbox' || type === 'radio') && !('checked' in ia)) continue;
      fields.push([ia.name, ia.value ?? '']);
    }
    const buttons: [string, string, string][] = [];
    for (const b of inner.matchAll(
      /<(?:button\b([^>]*)>([\s\S]*?)<\/button|input\b([^>]*type=["']?submit[^>]*))>/gi,
    )) {
      const ba = attrs(b[1] ?? b[3] ?? '');
      buttons.push([ba.name ?? '', ba.value ?? '', (b[2] ?? ba.value ?? '').replace(/<[^>]+>/g, '').trim()]);
    }
    forms.push({
      action: a.action ?? '',
      method: (a.method ?? 'get').toLowerCase(),
      fields,
      hasPassword,
      buttons,
    });
  }
  return forms;
}

export const query = (q: Record<string, string>) =>
  Object.entries(q)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');

/**
 * Drives the authorization code flow the way a browser does, over plain HTTP: authorize -> sign-in
 * form -> consent form (approve) -> 30x to the redirect URI with `code` -> token endpoint (PKCE S256).
 */
export async function obtainTokens(input: FlowInput): Promise<TokenSet> {
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(8).toString('hex');
  const authorize = new URL('/api/oauth2/authorize', input.baseUrl);
  // %20, not '+': the validator rejects reserved characters in the scope query parameter.
  authorize.search = query({
    response_type: 'code',
    client_id: input.clientId,
    redirect_uri: input.redirectUri,
    scope: input.scope,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  });

  const jar = new Map<string, string>();
  let url = authorize.toString();
  let init: RequestInit = { method: 'GET' };
  let code: string | undefined;
  for (let step = 0; step < 12 && !code; step++) {
    const headers = new Headers(init.headers);
    if (jar.size) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair?.indexOf('=') ?? -1;
      if (pair && eq > 0) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    const path = new URL(url).pathname;
    if (res.status === 501 || (res.status === 500 && path.startsWith('/api/oauth2/'))) {
      const text = await res.text();
      if (isPendingResponse(path, res.status, text)) throw new OAuthPending(`${path} is not implemented yet`);
      throw new Error(`${res.status} from ${url}: ${text.slice(0, 300)}`);
    }
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.arrayBuffer();
      const next = new URL(location, url);
      if (next.toString().startsWith(input.redirectUri)) {
        const err = next.searchParams.get('error');
        if (err)
          throw new Error(`authorization failed: ${err} ${next.searchParams.get('error_description') ?? ''}`);
        if (next.searchParams.get('state') !== state)
          throw new Error('authorization response lost the state');
        code = next.searchParams.get('code') ?? undefined;
        if (!code) throw new Error(`no code in ${next}`);
        break;
      }
      url = next.toString();
      init = { method: 'GET' };
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`${res.status} from ${url}: ${html.slice(0, 300)}`);
    const forms = parseForms(html).filter((f) => f.method === 'post');
    const login = forms.find((f) => f.hasPassword);
    const form = login ?? forms[0];
    if (!form) throw new Error(`no form on ${url}: ${html.slice(0, 300)}`);
    const body = new URLSearchParams();
    for (const [k, v] of form.fields) {
      if (login && /e-?mail|user|login/i.test(k)) body.set(k, input.email);
      else if (login && /pass/i.test(k)) body.set(k, input.password);
      else body.append(k, v);
    }
    const approve =
      form.buttons.find(([n, v, t]) =>
        /approve|allow|accept|grant|authori[sz]e|consent|yes/i.test(`${n} ${v} ${t}`),
      ) ?? (login ? form.buttons[0] : undefined);
    if (!login && form.buttons.length > 1 && !approve)
      throw new Error('no approve button on the consent page');
    if (approve?.[0]) body.set(approve[0], approve[1]);
    url = new URL(form.action || url, url).toString();
    init = {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: body.toString(),
    };
  }
  if (!code) throw new Error('the authorization flow did not reach the redirect URI');

  const res = await fetch(new URL('/api/oauth2/token', input.baseUrl), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      grant_type: 'authorization_code',
      code,
      redirect_uri: input.redirectUri,
      client_id: input.clientId,
      client_secret: input.clientSecret,
      code_verifier: verifier,
    }),
  });
  const text = await res.text();
  if (isPendingResponse('/api/oauth2/token', res.status, text))
    throw new OAuthPending('/api/oauth2/token is not implemented yet');
  const json = JSON.parse(text) as TokenSet;
  if (res.status !== 200) throw new Error(`token exchange: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

/** Probe: does this OAuth server exist yet? (metadata + authorize answer something other than 501) */
export async function oauthImplemented(baseUrl: string): Promise<{ ok: boolean; reason: string }> {
  for (const path of ['/.well-known/oauth-authorization-server', '/api/oauth2/token/info']) {
    const res = await fetch(new URL(path, baseUrl), { headers: { authorization: 'Bearer tcat_probe' } });
    if (isPendingResponse(path, res.status, await res.text())) {
      return { ok: false, reason: `${path} is not implemented yet (${res.status})` };
    }
  }
  return { ok: true, reason: '' };
}
