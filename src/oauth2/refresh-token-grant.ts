import type { components } from '../../generated/types.js';
import type { Sql } from '../db/database.js';
import type { Partner } from '../db/entities.js';
import { InvalidGrant, InvalidRequest, InvalidScope, type OAuthError } from '../errors/index.js';
import { formatScope, isSubset, parseScope } from './scopes.js';
import {
  findPair,
  markRotated,
  mintPair,
  revokePairs,
  type TokenPair,
  type TokenResponse,
} from './tokens.js';

type TokenRequest = components['schemas']['TokenRequest'];

/**
 * grant_type=refresh_token (RFC 6749 §6) with single-use rotation and reuse detection
 * (RFC 9700 §4.14.2). Guard clauses throw (rolling back); a replay is returned as an error so that
 * revoking every token of the user + partner commits first.
 */
export async function refreshTokenGrant(
  tx: Sql,
  client: Partner,
  params: TokenRequest,
  now: Date,
): Promise<TokenResponse | OAuthError> {
  if (!params.refresh_token) throw new InvalidRequest('refresh_token is required.');
  const pair = await findPair(tx, 'refresh', params.refresh_token, { forUpdate: true });
  if (!pair) throw new InvalidGrant('The refresh token is invalid.');
  // RFC 9700 §4.14.2: a confidential client's refresh token works only for that client.
  if (pair.partnerId !== client.id) throw new InvalidGrant('The refresh token was issued to another client.');
  // A pair superseded inside the grace window is presented again: its parent was presented twice,
  // so two parties hold this family. Neither may keep a working pair (RFC 9700 §4.14.2).
  if (pair.revokedAt && pair.superseded) return replayDetected(tx, pair, client, now);
  if (pair.revokedAt) throw new InvalidGrant('The refresh token has been revoked.');
  if (pair.refreshExpiresAt <= now) throw new InvalidGrant('The refresh token has expired.');
  const reuseInGrace = pair.rotatedAt !== null && (await isGraceReuse(tx, pair, client, now));
  if (pair.rotatedAt !== null && !reuseInGrace) return replayDetected(tx, pair, client, now);
  // RFC 6749 §6 / RFC 9700 §4.14.2: never wider than the user consented to.
  const requested = params.scope === undefined ? parseScope(pair.grantedScope) : parseScope(params.scope);
  if (requested.length === 0) throw new InvalidScope('scope must name at least one scope.');
  if (!isSubset(requested, parseScope(pair.grantedScope))) {
    throw new InvalidScope(`The requested scope exceeds the granted scope "${pair.grantedScope}".`);
  }

  if (reuseInGrace) {
    await revokePairs(tx, pair.userId, { parentId: pair.id }, 'partner', now, { superseded: true });
  } else await markRotated(tx, pair, now);
  return mintPair(tx, {
    partner: client,
    userId: pair.userId,
    scope: formatScope(requested),
    grantedScope: pair.grantedScope,
    codeId: pair.codeId,
    parentId: pair.id,
    now,
  });
}

/** A replayed refresh token revokes every token of this user for the client (RFC 9700 §4.14.2). */
async function replayDetected(tx: Sql, pair: TokenPair, client: Partner, now: Date): Promise<OAuthError> {
  await revokePairs(tx, pair.userId, { partnerId: client.id }, 'partner', now);
  return new InvalidGrant(
    'The refresh token was already used; every token of this user for your app is revoked.',
  );
}

/**
 * The partner's opt-in grace window (e.g. a lost token response): within `refreshGraceSeconds` of
 * its rotation, the IMMEDIATELY preceding refresh token may be presented again; the pair minted from
 * it before is revoked. Any older token is a replay (RFC 9700 §4.14.2): its successor has itself
 * been rotated, so it has no live successor.
 */
async function isGraceReuse(tx: Sql, pair: TokenPair, client: Partner, now: Date): Promise<boolean> {
  if (client.refreshGraceSeconds <= 0 || pair.rotatedAt === null) return false;
  if (now.getTime() - pair.rotatedAt.getTime() > client.refreshGraceSeconds * 1000) return false;
  const live = await tx.query(
    `select 1 from oauth_tokens
     where user_id = $1 and parent_id = $2 and rotated_at is null and revoked_at is null`,
    [pair.userId, pair.id],
  );
  return live.length > 0;
}
