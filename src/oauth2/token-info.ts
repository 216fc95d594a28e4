import type { components } from '../../generated/types.js';
import type { Sql } from '../db/database.js';
import { findPair, type TokenPair } from './tokens.js';

export type TokenInfo = components['schemas']['TokenInfo'];

/** Whether an access token may be used now: not revoked, not rotated away, not expired. */
export function isActive(pair: TokenPair, now: Date): boolean {
  return pair.revokedAt === null && pair.rotatedAt === null && pair.accessExpiresAt > now;
}

/**
 * The seed's token object for an access token, or undefined when it is not one of ours. A token
 * whose refresh token was rotated is reported revoked at the rotation.
 */
export async function tokenInfo(sql: Sql, accessToken: string, now: Date): Promise<TokenInfo | undefined> {
  if (!accessToken.startsWith('tcat_')) return undefined;
  const pair = await findPair(sql, 'access', accessToken);
  if (!pair) return undefined;
  const revokedAt = pair.revokedAt ?? pair.rotatedAt;
  return {
    active: isActive(pair, now),
    scope: pair.scope,
    userId: pair.userId,
    partnerId: pair.partnerId,
    expiresAt: pair.accessExpiresAt.toISOString(),
    revokedAt: revokedAt ? revokedAt.toISOString() : null,
  };
}
