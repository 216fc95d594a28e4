import type { components } from '../../generated/types.js';
import type { Sql } from '../db/database.js';
import { hashSecret } from '../lib/crypto.js';
import type { TokenPair } from './tokens.js';

export type TokenInfo = components['schemas']['TokenInfo'];

/** Whether an access token may be used now: not revoked, not rotated away, not expired. */
export function isActive(pair: TokenPair, now: Date): boolean {
  return pair.revokedAt === null && pair.rotatedAt === null && pair.accessExpiresAt > now;
}

/**
 * The seed's token object for an access token, or undefined when it is not one of ours. A token
 * whose refresh token was rotated is reported revoked at the rotation. One statement (the
 * token_info function of Migration20261124000008: the same rule as `isActive`, planned once per
 * connection, the times already formatted).
 */
export async function tokenInfo(sql: Sql, accessToken: string, now: Date): Promise<TokenInfo | undefined> {
  if (!accessToken.startsWith('tcat_')) return undefined;
  const [row] = await sql.query<{
    active: boolean;
    scope: string;
    user_id: string;
    partner_id: number;
    expires_at: string;
    revoked_at: string | null;
  }>('select * from token_info($1::text, $2::timestamptz)', [hashSecret(accessToken), now]);
  if (!row) return undefined;
  return {
    active: row.active,
    scope: row.scope,
    userId: Number(row.user_id),
    partnerId: row.partner_id,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}
