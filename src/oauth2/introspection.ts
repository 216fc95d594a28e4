import type { components } from '../../generated/types.js';
import type { Sql } from '../db/database.js';
import type { Partner } from '../db/entities.js';
import { isActive } from './token-info.js';
import { findPair, tokenKind } from './tokens.js';

export type Introspection = components['schemas']['IntrospectionResponse'];

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

/**
 * RFC 7662 §2.2 for the authenticated `client`: the token's state, or only `{active: false}` when
 * it is unknown, not usable now, or another client's (so nothing leaks about other clients' tokens).
 */
export async function introspect(
  sql: Sql,
  client: Partner,
  token: string,
  issuer: string,
  now: Date,
): Promise<Introspection> {
  const kind = tokenKind(token);
  const pair = kind && (await findPair(sql, kind, token));
  if (!kind || !pair || pair.partnerId !== client.id) return { active: false };
  const active =
    kind === 'access'
      ? isActive(pair, now)
      : pair.revokedAt === null && pair.rotatedAt === null && pair.refreshExpiresAt > now;
  if (!active) return { active: false };
  return {
    active: true,
    scope: pair.scope,
    client_id: client.clientId,
    token_type: kind === 'access' ? 'access_token' : 'refresh_token',
    exp: seconds(kind === 'access' ? pair.accessExpiresAt : pair.refreshExpiresAt),
    iat: seconds(pair.createdAt),
    sub: String(pair.userId),
    iss: issuer,
  };
}
