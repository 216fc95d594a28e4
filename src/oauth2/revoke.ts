import type { Sql } from '../db/database.js';
import type { Partner } from '../db/entities.js';
import { findPair, revokePairs, tokenKind } from './tokens.js';

/**
 * RFC 7009 §2.1: revokes the access or refresh token and the other token of its pair; emits
 * `token.revoked` (revokedBy `partner`). Unknown and already revoked tokens are a no-op (§2.2).
 *
 * When the client authenticated and the token belongs to another partner, nothing is revoked and the
 * caller still answers 200: to this client the token is one it does not know, which §2.2 answers
 * with 200, and a different answer would let a client probe for other clients' tokens.
 * Without client credentials, holding the token is proof enough to give it up (the seed's call).
 */
export async function revokeToken(
  tx: Sql,
  token: string,
  client: Partner | undefined,
  now: Date,
): Promise<{ revoked: boolean }> {
  const kind = tokenKind(token);
  if (!kind) return { revoked: false };
  const pair = await findPair(tx, kind, token, { forUpdate: true });
  if (!pair || pair.revokedAt) return { revoked: false };
  if (client && client.id !== pair.partnerId) return { revoked: false };
  await revokePairs(tx, pair.userId, { pairId: pair.id }, 'partner', now);
  return { revoked: true };
}
