import type { components } from '../../generated/types.js';
import type { Sql } from '../db/database.js';
import type { Partner } from '../db/entities.js';
import { InvalidGrant } from '../errors/index.js';
import { hashSecret, newSecret } from '../lib/crypto.js';
import { enqueueEvent } from '../webhooks/outbox.js';

export type TokenResponse = components['schemas']['TokenResponse'];
export type RevokedBy = components['schemas']['TokenRevokedEvent']['revokedBy'];

/** The seed's lifetimes: access 30 days, refresh 90 days (renewed on each rotation), code 10 minutes. */
export const ACCESS_TOKEN_TTL_SECONDS = 30 * 24 * 60 * 60;
export const REFRESH_TOKEN_TTL_SECONDS = 90 * 24 * 60 * 60;
export const CODE_TTL_MS = 10 * 60 * 1000;

/** One row of oauth_tokens: an access token and the refresh token issued with it. */
export type TokenPair = {
  id: number;
  userId: number;
  partnerId: number;
  scope: string;
  grantedScope: string;
  codeId: number | null;
  createdAt: Date;
  accessExpiresAt: Date;
  refreshExpiresAt: Date;
  rotatedAt: Date | null;
  revokedAt: Date | null;
  /** Revoked because its parent refresh token was presented again inside the grace window. */
  superseded: boolean;
};

type PairRow = {
  id: string;
  user_id: string;
  partner_id: number;
  scope: string;
  granted_scope: string;
  code_id: string | null;
  created_at: Date | string;
  access_expires_at: Date | string;
  refresh_expires_at: Date | string;
  rotated_at: Date | string | null;
  revoked_at: Date | string | null;
  superseded: boolean;
};

const PAIR_COLUMNS =
  'id, user_id, partner_id, scope, granted_scope, code_id, created_at, access_expires_at, refresh_expires_at, rotated_at, revoked_at, superseded';

const date = (v: Date | string) => new Date(v);
const dateOrNull = (v: Date | string | null) => (v === null ? null : new Date(v));

function toPair(r: PairRow): TokenPair {
  return {
    id: Number(r.id),
    userId: Number(r.user_id),
    partnerId: r.partner_id,
    scope: r.scope,
    grantedScope: r.granted_scope,
    codeId: r.code_id === null ? null : Number(r.code_id),
    createdAt: date(r.created_at),
    accessExpiresAt: date(r.access_expires_at),
    refreshExpiresAt: date(r.refresh_expires_at),
    rotatedAt: dateOrNull(r.rotated_at),
    revokedAt: dateOrNull(r.revoked_at),
    superseded: r.superseded,
  };
}

/** Looks a token up by the hash of what the client holds; `forUpdate` serialises rotations. */
export async function findPair(
  sql: Sql,
  kind: 'access' | 'refresh',
  token: string,
  opts: { forUpdate?: boolean } = {},
): Promise<TokenPair | undefined> {
  const column = kind === 'access' ? 'access_hash' : 'refresh_hash';
  const [row] = await sql.query<PairRow>(
    `select ${PAIR_COLUMNS} from oauth_tokens where ${column} = $1${opts.forUpdate ? ' for update' : ''}`,
    [hashSecret(token)],
  );
  return row && toPair(row);
}

/** The token kind its prefix names, or undefined for anything that is not one of ours. */
export function tokenKind(token: string): 'access' | 'refresh' | undefined {
  if (token.startsWith('tcat_')) return 'access';
  if (token.startsWith('tcrt_')) return 'refresh';
  return undefined;
}

export type MintInput = {
  partner: Partner;
  userId: number;
  scope: string;
  grantedScope: string;
  codeId: number | null;
  parentId: number | null;
  now: Date;
};

/** Issues a new access + refresh token pair; only their hashes are stored. */
export async function mintPair(tx: Sql, input: MintInput): Promise<TokenResponse> {
  // RFC 9700 §4.14.2: a disabled account gets no new tokens (its existing ones stop at the API).
  const [user] = await tx.query('select 1 from users where id = $1 and disabled_at is null', [input.userId]);
  if (!user) throw new InvalidGrant('The user account is disabled.');
  const accessToken = newSecret('tcat_');
  const refreshToken = newSecret('tcrt_');
  const now = input.now.getTime();
  const accessExpiresAt = new Date(now + ACCESS_TOKEN_TTL_SECONDS * 1000);
  const refreshExpiresAt = new Date(now + REFRESH_TOKEN_TTL_SECONDS * 1000);
  await tx.query(
    `insert into oauth_tokens (user_id, partner_id, access_hash, refresh_hash, scope, granted_scope, code_id,
       parent_id, created_at, access_expires_at, refresh_expires_at)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
    [
      input.userId,
      input.partner.id,
      hashSecret(accessToken),
      hashSecret(refreshToken),
      input.scope,
      input.grantedScope,
      input.codeId,
      input.parentId,
      input.now,
      accessExpiresAt,
      refreshExpiresAt,
    ],
  );
  return {
    access_token: accessToken,
    token_type: 'Bearer',
    scope: input.scope,
    expires_in: ACCESS_TOKEN_TTL_SECONDS,
    refresh_token: refreshToken,
    refresh_token_expires_in: REFRESH_TOKEN_TTL_SECONDS,
    client_id: input.partner.clientId,
    client_name: input.partner.name,
    user_id: String(input.userId),
    expires_at: accessExpiresAt.getTime(),
  };
}

/** Marks a pair's refresh token as used: both of its tokens stop working at once (rotation). */
export async function markRotated(tx: Sql, pair: TokenPair, now: Date): Promise<void> {
  await tx.query('update oauth_tokens set rotated_at = $3 where user_id = $1 and id = $2', [
    pair.userId,
    pair.id,
    now,
  ]);
}

/** Which pairs of one user a revocation covers. */
export type RevocationTarget =
  | { pairId: number }
  | { partnerId: number }
  | { codeId: number }
  | { parentId: number };

/**
 * Revokes the user's pairs that `target` names and writes one `token.revoked` outbox row per pair
 * whose access token was still in use, in the caller's transaction. Returns how many were revoked.
 */
export async function revokePairs(
  tx: Sql,
  userId: number,
  target: RevocationTarget,
  revokedBy: RevokedBy,
  now: Date,
  opts: { superseded?: boolean } = {},
): Promise<number> {
  const [column, value] =
    'pairId' in target
      ? ['id', target.pairId]
      : 'partnerId' in target
        ? ['partner_id', target.partnerId]
        : 'codeId' in target
          ? ['code_id', target.codeId]
          : ['parent_id', target.parentId];
  const rows = await tx.query<PairRow>(
    `update oauth_tokens set revoked_at = $3, revoked_by = $4, superseded = $5
     where user_id = $1 and ${column} = $2 and revoked_at is null
     returning ${PAIR_COLUMNS}`,
    [userId, value, now, revokedBy, opts.superseded ?? false],
  );
  for (const pair of rows.map(toPair)) {
    // A rotated pair's tokens were already dead for the partner; it hears only about live ones.
    if (pair.rotatedAt !== null) continue;
    const at = now.toISOString();
    await enqueueEvent(tx, pair.partnerId, 'token.revoked', {
      event: 'token.revoked',
      timestamp: at,
      tokenId: pair.id,
      userId: pair.userId,
      scope: pair.scope,
      revokedAt: at,
      revokedBy,
    });
  }
  return rows.length;
}
