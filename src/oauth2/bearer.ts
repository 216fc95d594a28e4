import type { Sql } from '../db/database.js';
import type { Partner } from '../db/entities.js';
import { hashSecret } from '../lib/crypto.js';
import { type PartnerRow, partnerFromRow } from '../partners/partners.js';
import { parseScope } from './scopes.js';

/**
 * What a valid `Authorization: Bearer tcat_...` grants on the API; with the user's balance as the
 * same statement read it (a balance read answers with it: no second round trip).
 */
export type BearerGrant = {
  partner: Partner;
  userId: number;
  scopes: string[];
  tokenId: number;
  balance: number;
};

/**
 * A bearer token for a statement to check itself before it does its work (points_deduct_as_bearer,
 * Migration20261124000012): the token's hash and the scopes the operation needs.
 */
export type BearerCheck = { tokenHash: string; scopes: readonly string[] };

/**
 * Every API call with a bearer token runs this: one indexed statement (token, enabled user, partner;
 * the bearer_grant function of Migration20261124000008, planned once per connection), mapped by hand.
 */
const ACTIVE_ACCESS_SQL = 'select * from bearer_grant($1::text, $2::timestamptz)';

/**
 * The grant of an access token that is known, not revoked, not rotated away and not expired at
 * `now` (the same rule as `isActive` in token-info.ts), whose user is enabled; with its partner.
 */
export async function verifyBearer(sql: Sql, token: string, now: Date): Promise<BearerGrant | undefined> {
  if (!token.startsWith('tcat_')) return undefined;
  const [row] = await sql.query<PartnerRow & { id: string; user_id: string; scope: string; balance: number }>(
    ACTIVE_ACCESS_SQL,
    [hashSecret(token), now],
  );
  if (!row) return undefined;
  const partner = partnerFromRow(row);
  return {
    partner,
    userId: Number(row.user_id),
    scopes: scopesOf(row.scope, partner.allowedScopes),
    tokenId: Number(row.id),
    balance: row.balance,
  };
}

/**
 * What a token may do now: the scopes the user granted that the partner is still allowed. A partner
 * whose allowed scopes were narrowed (dashboard, CLI) loses the dropped ones on tokens already
 * granted at once, as a legacy call would (DESIGN.md: the same rules whichever way a call
 * authenticates). Parsed once per distinct (granted, allowed) pair: there are only a few.
 */
const parsedScopes = new Map<string, string[]>();
function scopesOf(scope: string, allowed: readonly string[]): string[] {
  const key = `${scope}|${allowed.join(' ')}`;
  let scopes = parsedScopes.get(key);
  if (!scopes) {
    scopes = Object.freeze(parseScope(scope).filter((s) => allowed.includes(s))) as string[];
    if (parsedScopes.size < 256) parsedScopes.set(key, scopes);
  }
  return scopes;
}
