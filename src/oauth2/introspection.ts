import type { components } from '../../generated/types.js';
import type { Sql } from '../db/database.js';
import type { Partner } from '../db/entities.js';
import { parseScope } from './scopes.js';
import { isActive } from './token-info.js';
import { findPair, tokenKind } from './tokens.js';

export type Introspection = components['schemas']['IntrospectionResponse'];

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

/** A disabled user's tokens are refused by the API, so introspection calls them inactive too. */
async function userEnabled(sql: Sql, userId: number): Promise<boolean> {
  const [row] = await sql.query<{ enabled: boolean }>(
    'select disabled_at is null as enabled from users where id = $1',
    [userId],
  );
  return row?.enabled === true;
}

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
  if (!active || !(await userEnabled(sql, pair.userId))) return { active: false };
  return {
    active: true,
    // What the token may do now, as the API decides (bearer.ts): granted and still allowed.
    scope: parseScope(pair.scope)
      .filter((s) => client.allowedScopes.includes(s as Partner['allowedScopes'][number]))
      .join(' '),
    client_id: client.clientId,
    token_type: kind === 'access' ? 'access_token' : 'refresh_token',
    exp: seconds(kind === 'access' ? pair.accessExpiresAt : pair.refreshExpiresAt),
    iat: seconds(pair.createdAt),
    sub: String(pair.userId),
    iss: issuer,
  };
}
