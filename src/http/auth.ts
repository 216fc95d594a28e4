import type { IncomingHttpHeaders } from 'node:http';
import type { NextFunction, Request, Response } from 'express';
import type { Services } from '../container.js';

import type { Partner } from '../db/entities.js';
import { Forbidden, NotFound, Problem, Unauthorized } from '../errors/index.js';
import { findLegacyCaller } from '../identity/legacy.js';
import { hashSecret } from '../lib/crypto.js';
import type { BearerCheck } from '../oauth2/bearer.js';
import { findPartnerByApiKey } from '../partners/partners.js';
import { headerValue } from './operations.js';
import { addressKey, type Counted, countingFailures, throwIfLimited } from './rate-limits.js';
import type { SpecOperation } from './spec.js';

export type Principal =
  | { kind: 'none' }
  | { kind: 'partner'; partner: Partner }
  | {
      kind: 'user';
      partner: Partner;
      userId: number;
      via: 'legacy' | 'oauth';
      /** What the caller may do: the token's scopes, or in the legacy flow the partner's allowed scopes. */
      scopes: readonly string[];
      tokenId?: number;
      /** The user's balance, read by the same statement that authenticated them. */
      balance?: number;
    };

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

/**
 * Builds the authentication step of one operation from its `security` in openapi.yaml:
 * - user operations (oauth2 / privySession): a Bearer access token, or the partner API key plus a
 *   verified Privy session; either way the operation's scopes must be granted (a legacy call may do
 *   exactly what the partner's allowed scopes permit, like a token carrying those scopes);
 * - partner operations (partnerApiKey only): the API key;
 * - anything else authenticates in its handler (the OAuth endpoints) or is public.
 * Rate limits: a verified identity has its own budget; before verification, and for every failed
 * authentication, the client address is what counts, so made-up credentials buy no fresh budget.
 */
export function authenticate(op: SpecOperation, services: Services) {
  const check = authenticationOf(op, services);
  return async (req: Request, _res: Response, next: NextFunction) => {
    try {
      req.principal = await check({ headers: req.headers, ip: req.ip ?? '', body: req.body });
      next();
    } catch (err) {
      next(err);
    }
  };
}

/** What authentication reads of a request: its headers, the client address, and the parsed body (legacy fields). */
export type Credentials = { headers: IncomingHttpHeaders; ip: string; body: unknown };

/**
 * The authentication step of one operation as a function of the request's credentials, for the
 * express route and the direct routes alike. Resolves to the principal, or throws the 401/403/404/429.
 */
export function authenticationOf(
  op: SpecOperation,
  services: Services,
): (request: Credentials) => Promise<Principal> {
  const userLevel = op.security.some((r) => 'oauth2' in r || 'privySession' in r);
  const partnerLevel = !userLevel && op.security.some((r) => 'partnerApiKey' in r);
  const scopes = op.security.find((r) => 'oauth2' in r)?.oauth2 ?? [];
  const { limits } = services;
  const NONE: Principal = { kind: 'none' };

  return async (request) => {
    const address = addressKey(request.ip);
    if (!userLevel && !partnerLevel) {
      if (op.rateLimited) throwIfLimited(limits.requests.hit([address]));
      return NONE;
    }
    const principal: Principal = await countingFailures(
      limits.failures,
      [address],
      isAuthFailure,
      async () =>
        userLevel
          ? authenticateUser(request, services)
          : { kind: 'partner', partner: await partnerFromApiKey(request.headers, services) },
      // The hot path: no query before the credential check (see countingFailures).
      { exact: false },
    );
    if (principal.kind === 'user') requireScopes(principal.scopes, scopes);
    throwIfLimited(limits.requests.hit([identityKey(principal)]));
    return principal;
  };
}

/**
 * The one-round-trip path of an operation whose handler checks the bearer token in its own statement
 * (BearerCheckedHandler: the deduct). A token's principal is learned when it authenticates the usual
 * way; the next request with it can then go straight to the handler's statement, which checks the
 * token again (active, this user and partner, the operation's scopes) before doing anything. The
 * learned principal is only the identity the statement expects: nothing is granted on its strength.
 *
 * admit() says whether a request may take that path, with the same checks the usual way makes
 * before the handler, in memory: the address is not refused for failed authentications, and the
 * identity's request budget admits it (counted). refused() takes the count back when the statement
 * found the token no longer grants the operation; the request then authenticates the usual way, which
 * words the 401 or 403 and counts what it counts.
 */
const KNOWN_BEARERS = 10_000;

export function bearerShortcut(op: SpecOperation, services: Services) {
  const scopes = op.security.find((r) => 'oauth2' in r)?.oauth2 ?? [];
  const { limits } = services;
  const known = new Map<string, Extract<Principal, { kind: 'user' }>>();
  const tokenOf = (headers: IncomingHttpHeaders): string | undefined => {
    if (headers['x-api-key'] !== undefined) return undefined;
    const m = BEARER.exec(headers.authorization ?? '');
    return m?.[1]?.startsWith('tcat_') ? m[1] : undefined;
  };
  return {
    learn(headers: IncomingHttpHeaders, principal: Principal): void {
      const token = tokenOf(headers);
      if (token === undefined || principal.kind !== 'user' || principal.via !== 'oauth') return;
      // Bounded: the oldest token makes room (a Map iterates in insertion order).
      if (known.size >= KNOWN_BEARERS) known.delete(known.keys().next().value as string);
      known.set(hashSecret(token), principal);
    },
    admit(request: { headers: IncomingHttpHeaders; ip: string }) {
      const token = tokenOf(request.headers);
      if (token === undefined) return undefined;
      const tokenHash = hashSecret(token);
      const principal = known.get(tokenHash);
      if (!principal) return undefined;
      if (limits.failures.knownRetryAfter([addressKey(request.ip)]) !== undefined) return undefined;
      const counted = limits.requests.tryHit(identityKey(principal));
      if (!counted) return undefined;
      const bearer: BearerCheck = { tokenHash, scopes };
      return { principal, bearer, counted };
    },
    refused(admitted: { bearer: BearerCheck; counted: Counted }): void {
      limits.requests.unhit(admitted.counted);
      known.delete(admitted.bearer.tokenHash);
    },
  };
}

export const isAuthFailure = (err: unknown) => err instanceof Problem && err.status === 401;

function identityKey(p: Principal): string {
  if (p.kind === 'user') return `partner:${p.partner.id}:user:${p.userId}`;
  if (p.kind === 'partner') return `partner:${p.partner.id}`;
  return 'none';
}

/** The same rule for both flows: every scope the operation names must be granted. */
export function requireScopes(granted: readonly string[], needed: readonly string[]): void {
  const missing = needed.filter((s) => !granted.includes(s));
  if (missing.length > 0) {
    throw new Forbidden('insufficient_scope', `This operation needs the '${missing.join(' ')}' scope.`);
  }
}

const BEARER = /^Bearer +([A-Za-z0-9._~+/=-]+)$/i;

/** The access token of an `Authorization: Bearer` header; undefined without the header, 401 when it is another scheme. */
export function bearerToken(h: string | undefined): string | undefined {
  if (!h) return undefined;
  const m = BEARER.exec(h);
  if (!m) throw new Unauthorized('invalid_token', 'The Authorization header is not "Bearer <access token>".');
  return m[1];
}

async function partnerFromApiKey(headers: IncomingHttpHeaders, services: Services): Promise<Partner> {
  const key = headerValue(headers, 'x-api-key');
  if (!key) throw new Unauthorized('missing_api_key', 'Send your partner API key in the X-API-Key header.');
  const partner = await findPartnerByApiKey(services.db, key);
  if (!partner) throw new Unauthorized('invalid_api_key', 'The API key is not valid.');
  return partner;
}

async function authenticateUser(request: Credentials, services: Services): Promise<Principal> {
  const { headers } = request;
  const token = bearerToken(headers.authorization);
  if (token !== undefined) {
    const grant = await services.bearer?.verifyAccessToken(token);
    if (!grant) throw new Unauthorized('invalid_token', 'The access token is invalid, expired or revoked.');
    // Credentials that disagree are refused: an API key sent with a token must be the token's partner's.
    if (headers['x-api-key'] !== undefined) {
      const keyPartner = await partnerFromApiKey(headers, services);
      if (keyPartner.id !== grant.partner.id) {
        throw new Unauthorized(
          'credentials_mismatch',
          'The X-API-Key belongs to another partner than the access token; send one credential.',
        );
      }
    }
    return {
      kind: 'user',
      partner: grant.partner,
      userId: grant.userId,
      via: 'oauth',
      scopes: grant.scopes,
      tokenId: grant.tokenId,
      balance: grant.balance,
    };
  }
  const key = headerValue(headers, 'x-api-key');
  if (!key) throw new Unauthorized('missing_api_key', 'Send your partner API key in the X-API-Key header.');
  const body =
    typeof request.body === 'object' && request.body !== null
      ? (request.body as Record<string, unknown>)
      : {};
  const sessionToken = headerValue(headers, 'x-privy-session-token') ?? stringField(body, 'sessionToken');
  const privyId = headerValue(headers, 'x-privy-id') ?? stringField(body, 'privyId');
  if (!sessionToken || !privyId) {
    // Still the API key's verdict first: a made-up key is invalid_api_key whatever else is missing.
    await partnerFromApiKey(headers, services);
    throw new Unauthorized(
      'missing_session_token',
      "Send an OAuth access token, or the user's privyId and Privy sessionToken with your API key.",
    );
  }
  // The partner and the user in one statement; the user counts only once the session is verified.
  const caller = await findLegacyCaller(services.db, key, privyId);
  if (!caller) throw new Unauthorized('invalid_api_key', 'The API key is not valid.');
  await services.privy.verify(sessionToken, privyId);
  if (!caller.user) throw new NotFound('user_not_found', 'No askTIAN wallet for this Privy user.');
  return {
    kind: 'user',
    partner: caller.partner,
    userId: caller.user.id,
    via: 'legacy',
    scopes: caller.partner.allowedScopes,
    balance: caller.user.balance,
  };
}

function stringField(body: Record<string, unknown>, name: string): string | undefined {
  const v = body[name];
  return typeof v === 'string' ? v : undefined;
}
