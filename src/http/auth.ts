import type { NextFunction, Request, Response } from 'express';
import { type Partner, PartnerSchema } from '../db/entities.js';
import { findPartnerByApiKey } from '../partners/partners.js';
import { findUserByPrivyId } from '../users/users.js';
import { forbidden, notFound, unauthorized } from './errors.js';
import type { Services } from './services.js';
import type { SpecOperation } from './spec.js';

export type Principal =
  | { kind: 'none' }
  | { kind: 'partner'; partner: Partner }
  | {
      kind: 'user';
      partner: Partner;
      userId: number;
      via: 'legacy' | 'oauth';
      /** Scopes of the OAuth token; the legacy flow acts with the partner's full rights. */
      scopes: readonly string[] | 'all';
      tokenId?: number;
    };

/** What the OAuth module provides to authenticate `Authorization: Bearer tcat_...` on the API. */
export interface BearerVerifier {
  verifyAccessToken(
    token: string,
  ): Promise<{ partnerId: number; userId: number; scopes: string[]; tokenId: number } | undefined>;
}

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

/**
 * Builds the authentication step of one operation from its `security` in openapi.yaml:
 * - user operations (oauth2 / privySession): a Bearer access token with the operation's scope, or
 *   the partner API key plus a verified Privy session;
 * - partner operations (partnerApiKey only): the API key;
 * - anything else authenticates in its handler (the OAuth endpoints) or is public.
 */
export function authenticate(op: SpecOperation, services: Services) {
  const userLevel = op.security.some((r) => 'oauth2' in r || 'privySession' in r);
  const partnerLevel = !userLevel && op.security.some((r) => 'partnerApiKey' in r);
  const scopes = op.security.find((r) => 'oauth2' in r)?.oauth2 ?? [];

  return async (req: Request, _res: Response, next: NextFunction) => {
    try {
      if (userLevel) req.principal = await authenticateUser(req, services, scopes);
      else if (partnerLevel)
        req.principal = { kind: 'partner', partner: await partnerFromApiKey(req, services) };
      else req.principal = { kind: 'none' };
      next();
    } catch (err) {
      next(err);
    }
  };
}

export function bearerToken(req: Request): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer +([A-Za-z0-9._~+/=-]+)$/i.exec(h);
  if (!m) throw unauthorized('invalid_token', 'The Authorization header is not "Bearer <access token>".');
  return m[1];
}

async function partnerFromApiKey(req: Request, services: Services): Promise<Partner> {
  const key = req.get('x-api-key');
  if (!key) throw unauthorized('missing_api_key', 'Send your partner API key in the X-API-Key header.');
  const partner = await findPartnerByApiKey(services.db, key);
  if (!partner) throw unauthorized('invalid_api_key', 'The API key is not valid.');
  return partner;
}

async function authenticateUser(req: Request, services: Services, scopes: string[]): Promise<Principal> {
  const token = bearerToken(req);
  if (token !== undefined) {
    const grant = await services.bearer?.verifyAccessToken(token);
    if (!grant) throw unauthorized('invalid_token', 'The access token is invalid, expired or revoked.');
    const missing = scopes.filter((s) => !grant.scopes.includes(s));
    if (missing.length > 0) {
      throw forbidden('insufficient_scope', `This operation needs the '${missing.join(' ')}' scope.`);
    }
    const partner = await services.db.em.findOneOrFail(PartnerSchema, { id: grant.partnerId });
    return {
      kind: 'user',
      partner,
      userId: grant.userId,
      via: 'oauth',
      scopes: grant.scopes,
      tokenId: grant.tokenId,
    };
  }
  const partner = await partnerFromApiKey(req, services);
  const body = typeof req.body === 'object' && req.body !== null ? (req.body as Record<string, unknown>) : {};
  const sessionToken = req.get('x-privy-session-token') ?? stringField(body, 'sessionToken');
  const privyId = req.get('x-privy-id') ?? stringField(body, 'privyId');
  if (!sessionToken || !privyId) {
    throw unauthorized(
      'missing_session_token',
      "Send an OAuth access token, or the user's privyId and Privy sessionToken with your API key.",
    );
  }
  await services.privy.verify(sessionToken, privyId);
  const user = await findUserByPrivyId(services.db, privyId);
  if (!user) throw notFound('user_not_found', 'No askTIAN wallet for this Privy user.');
  return { kind: 'user', partner, userId: user.id, via: 'legacy', scopes: 'all' };
}

function stringField(body: Record<string, unknown>, name: string): string | undefined {
  const v = body[name];
  return typeof v === 'string' ? v : undefined;
}
