import type { Sql } from '../db/database.js';
import type { Partner } from '../db/entities.js';
import { findPartnerByClientId, type Scope } from '../partners/partners.js';
import { S256_CHALLENGE } from './pkce.js';
import { isScope, parseScope } from './scopes.js';

/** The query of GET /api/oauth2/authorize (and the hidden fields that carry it through the pages). */
export type AuthorizeParams = {
  client_id?: string | undefined;
  redirect_uri?: string | undefined;
  response_type?: string | undefined;
  scope?: string | undefined;
  state?: string | undefined;
  code_challenge?: string | undefined;
  code_challenge_method?: string | undefined;
};
export const AUTHORIZE_PARAMS = [
  'client_id',
  'redirect_uri',
  'response_type',
  'scope',
  'state',
  'code_challenge',
  'code_challenge_method',
] as const satisfies readonly (keyof AuthorizeParams)[];

/** A request that passed every check: what the consent screen shows and the code is bound to. */
export type AuthorizationRequest = {
  partner: Partner;
  redirectUri: string;
  scopes: Scope[];
  state: string | undefined;
  codeChallenge: string | undefined;
  params: AuthorizeParams;
};

/**
 * The client or redirect URI cannot be trusted: show the user an error page and never redirect
 * (RFC 6749 §4.1.2.1, RFC 9700 §4.11: no open redirects).
 */
export class AuthorizePageError extends Error {}

/** Any other error, once the redirect URI is trusted, goes back to it (RFC 6749 §4.1.2.1). */
export class AuthorizeRedirectError extends Error {
  constructor(
    readonly error: 'invalid_request' | 'unsupported_response_type' | 'invalid_scope',
    description: string,
    readonly redirectUri: string,
    readonly state: string | undefined,
  ) {
    super(description);
  }
}

type Context = { params: AuthorizeParams; partner?: Partner; redirectUri?: string; scopes?: Scope[] };
type Step = (ctx: Context, sql: Sql) => void | Promise<void>;

const checkClient: Step = async (ctx, sql) => {
  const clientId = ctx.params.client_id;
  if (!clientId) throw new AuthorizePageError('The request has no client_id.');
  const partner = await findPartnerByClientId(sql, clientId);
  if (!partner) throw new AuthorizePageError('The app that sent you here is not registered with askTIAN.');
  ctx.partner = partner;
};

/**
 * RFC 9700 §4.1.3: the redirect URI is compared with the registered ones as exact strings, never
 * after URL normalisation (which would let `http://127.1/cb` or `/cb/../cb` through). The only
 * variation allowed is the port of a loopback IP literal, for native apps (RFC 8252 §7.3).
 */
const checkRedirectUri: Step = (ctx) => {
  const uri = ctx.params.redirect_uri;
  if (!uri) throw new AuthorizePageError('The request has no redirect_uri.');
  const registered = ctx.partner?.redirectUris ?? [];
  if (!registered.some((r) => r === uri || sameLoopbackIgnoringPort(r, uri))) {
    throw new AuthorizePageError('The redirect_uri is not one this app registered.');
  }
  ctx.redirectUri = uri;
};

/** `http://127.0.0.1` or `http://[::1]`, an optional port, then the rest of the URI verbatim. */
const LOOPBACK = /^http:\/\/(127\.0\.0\.1|\[::1\])(?::\d{1,5})?([/?].*)?$/s;

function sameLoopbackIgnoringPort(registered: string, requested: string): boolean {
  const a = LOOPBACK.exec(registered);
  const b = LOOPBACK.exec(requested);
  return !!a && !!b && a[1] === b[1] && (a[2] ?? '') === (b[2] ?? '');
}

const redirectError = (ctx: Context, error: AuthorizeRedirectError['error'], description: string) =>
  new AuthorizeRedirectError(error, description, ctx.redirectUri ?? '', ctx.params.state);

/** RFC 6749 §4.1.1: response_type is REQUIRED and must be `code` (no implicit grant, RFC 9700 §2.1.2). */
const checkResponseType: Step = (ctx) => {
  const rt = ctx.params.response_type;
  if (rt === undefined || rt === '') {
    throw redirectError(ctx, 'invalid_request', 'response_type is required; send response_type=code.');
  }
  if (rt !== 'code') {
    throw redirectError(ctx, 'unsupported_response_type', 'Only response_type=code is supported.');
  }
};

const checkScope: Step = (ctx) => {
  const requested = parseScope(ctx.params.scope);
  if (requested.length === 0) throw redirectError(ctx, 'invalid_scope', 'Ask for at least one scope.');
  const allowed = ctx.partner?.allowedScopes ?? [];
  const refused = requested.filter((s) => !isScope(s) || !allowed.includes(s));
  if (refused.length > 0) {
    throw redirectError(ctx, 'invalid_scope', `This app may not ask for: ${refused.join(' ')}.`);
  }
  ctx.scopes = requested.filter(isScope);
};

/** RFC 7636 with S256 only (RFC 9700 §2.1.1); a partner may be set to require it. */
const checkPkce: Step = (ctx) => {
  const { code_challenge: challenge, code_challenge_method: method } = ctx.params;
  if (challenge === undefined && method !== undefined) {
    throw redirectError(ctx, 'invalid_request', 'code_challenge_method was sent without code_challenge.');
  }
  if (challenge === undefined) {
    if (ctx.partner?.requirePkce) {
      throw redirectError(ctx, 'invalid_request', 'This app must use PKCE: send code_challenge (S256).');
    }
    return;
  }
  if (method !== 'S256')
    throw redirectError(ctx, 'invalid_request', 'Only code_challenge_method=S256 is supported.');
  if (!S256_CHALLENGE.test(challenge)) {
    throw redirectError(ctx, 'invalid_request', 'code_challenge must be 43 base64url characters.');
  }
};

/** The order of the checks matters: the first two decide whether errors may be redirected at all. */
const STEPS: Step[] = [checkClient, checkRedirectUri, checkResponseType, checkScope, checkPkce];

export async function checkAuthorizationRequest(
  sql: Sql,
  params: AuthorizeParams,
): Promise<AuthorizationRequest> {
  const ctx: Context = { params };
  for (const step of STEPS) await step(ctx, sql);
  if (!ctx.partner || !ctx.redirectUri || !ctx.scopes) throw new Error('authorize steps incomplete');
  return {
    partner: ctx.partner,
    redirectUri: ctx.redirectUri,
    scopes: ctx.scopes,
    state: params.state,
    codeChallenge: params.code_challenge,
    params,
  };
}

/** Appends the response parameters, keeping the registered URI's own query (RFC 6749 §3.1.2). */
export function redirectTo(redirectUri: string, params: Record<string, string | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, v);
  return `${redirectUri}${redirectUri.includes('?') ? '&' : '?'}${q}`;
}
