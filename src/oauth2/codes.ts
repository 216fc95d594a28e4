import type { Sql } from '../db/database.js';
import { hashSecret, newSecret } from '../lib/crypto.js';
import type { AuthorizationRequest } from './authorize-request.js';
import { formatScope } from './scopes.js';
import { CODE_TTL_MS } from './tokens.js';

export type CodeRow = {
  id: number;
  userId: number;
  partnerId: number;
  redirectUri: string;
  scope: string;
  codeChallenge: string | null;
  expiresAt: Date;
  consumedAt: Date | null;
};

/**
 * Issues an authorization code (`tcac_`, 32 random bytes) bound to the client, redirect URI, scope,
 * user and PKCE challenge; single-use, 10 minutes. Only its hash is stored.
 */
export async function issueCode(
  tx: Sql,
  request: AuthorizationRequest,
  userId: number,
  now: Date,
): Promise<string> {
  const code = newSecret('tcac_');
  await tx.query(
    `insert into oauth_codes (code_hash, user_id, partner_id, redirect_uri, scope, code_challenge, created_at, expires_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [
      hashSecret(code),
      userId,
      request.partner.id,
      request.redirectUri,
      formatScope(request.scopes),
      request.codeChallenge ?? null,
      now,
      new Date(now.getTime() + CODE_TTL_MS),
    ],
  );
  return code;
}

/** The code row, locked so two exchanges of one code serialise (the second sees it consumed). */
export async function findCodeForUpdate(tx: Sql, code: string): Promise<CodeRow | undefined> {
  const [r] = await tx.query<{
    id: string;
    user_id: string;
    partner_id: number;
    redirect_uri: string;
    scope: string;
    code_challenge: string | null;
    expires_at: Date | string;
    consumed_at: Date | string | null;
  }>(
    `select id, user_id, partner_id, redirect_uri, scope, code_challenge, expires_at, consumed_at
     from oauth_codes where code_hash = $1 for update`,
    [hashSecret(code)],
  );
  return (
    r && {
      id: Number(r.id),
      userId: Number(r.user_id),
      partnerId: r.partner_id,
      redirectUri: r.redirect_uri,
      scope: r.scope,
      codeChallenge: r.code_challenge,
      expiresAt: new Date(r.expires_at),
      consumedAt: r.consumed_at === null ? null : new Date(r.consumed_at),
    }
  );
}

export async function consumeCode(tx: Sql, code: CodeRow, now: Date): Promise<void> {
  await tx.query('update oauth_codes set consumed_at = $2 where id = $1', [code.id, now]);
}

/**
 * Deletes the codes nobody can use any more: past their 10 minutes, whether consumed or not. A code
 * that tokens descend from stays until purgeExpiredTokens removed them, because a replay of it must
 * still revoke those tokens (RFC 6749 §4.1.2) and oauth_tokens.code_id points at it.
 */
export async function purgeExpiredCodes(tx: Sql, now: Date): Promise<number> {
  const gone = await tx.query(
    `delete from oauth_codes c
     where c.expires_at <= $1 and not exists (select 1 from oauth_tokens t where t.code_id = c.id)
     returning 1`,
    [now],
  );
  return gone.length;
}

/**
 * Deletes token pairs whose access and refresh tokens have both expired, rotated or revoked alike:
 * nothing can be done with them, and a replay of their refresh token can no longer mint anything.
 * A live pair minted from one of them forgets its parent first (oauth_tokens.parent_id).
 * (Belongs beside mintPair in tokens.ts; kept here with the code purge until that file is free.)
 */
export async function purgeExpiredTokens(tx: Sql, now: Date): Promise<number> {
  const dead = 'refresh_expires_at <= $1 and access_expires_at <= $1';
  await tx.query(
    `update oauth_tokens set parent_id = null
     where parent_id in (select id from oauth_tokens where ${dead}) and not (${dead})`,
    [now],
  );
  const gone = await tx.query(`delete from oauth_tokens where ${dead} returning 1`, [now]);
  return gone.length;
}
