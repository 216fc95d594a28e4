import { randomBytes } from 'node:crypto';
import type { components } from '../../generated/types.js';
import type { Sql } from '../db/database.js';
import { type Partner, PartnerSchema } from '../db/entities.js';
import { hashSecret, newSecret } from '../lib/crypto.js';

export const SCOPES = ['deduct', 'balance', 'subscriptions'] as const;
export type Scope = (typeof SCOPES)[number];

export type NewPartner = {
  name: string;
  redirectUris: string[];
  allowedScopes: Scope[];
  requirePkce?: boolean;
  refreshGraceSeconds?: number;
};

export class PartnerInputError extends Error {}

/**
 * What may be registered as a redirect URI: an absolute https URI, or plain http on a loopback IP
 * literal only (RFC 8252 §7.3; `localhost` can be re-pointed, §8.3); no userinfo, no fragment
 * (RFC 6749 §3.1.2). It must be written in its canonical form, because the authorization
 * endpoint compares it as an exact string (RFC 9700 §4.1.3).
 */
export function checkRedirectUri(uri: string): void {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    throw new PartnerInputError(`Not an absolute URL: ${uri}`);
  }
  if (u.username || u.password || /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(uri)) {
    throw new PartnerInputError(`A redirect URI must not carry user credentials: ${uri}`);
  }
  if (uri.includes('#')) throw new PartnerInputError(`A redirect URI must not have a fragment: ${uri}`);
  const loopbackIp = u.hostname === '127.0.0.1' || u.hostname === '[::1]';
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && loopbackIp)) {
    throw new PartnerInputError(
      `A redirect URI must use https (plain http only on http://127.0.0.1 or http://[::1]): ${uri}`,
    );
  }
  if (u.href !== uri) {
    throw new PartnerInputError(`Write the redirect URI in its canonical form, ${u.href}, not ${uri}`);
  }
}

/** The longest partner name (it is shown on the consent screen). */
export const MAX_PARTNER_NAME = 100;
/** At most this many redirect URIs per partner. */
export const MAX_REDIRECT_URIS = 20;

/**
 * The rules for a partner's app settings, the same at registration (admin CLI) and when the partner
 * changes them (dashboard). Returns the grace window to store.
 */
export function checkPartnerSettings(input: NewPartner): number {
  if (!input.name.trim()) throw new PartnerInputError('A partner needs a name.');
  if (input.name.trim().length > MAX_PARTNER_NAME) {
    throw new PartnerInputError(`A partner name has at most ${MAX_PARTNER_NAME} characters.`);
  }
  if (input.redirectUris.length > MAX_REDIRECT_URIS) {
    throw new PartnerInputError(`A partner may register at most ${MAX_REDIRECT_URIS} redirect URIs.`);
  }
  for (const uri of input.redirectUris) checkRedirectUri(uri);
  for (const s of input.allowedScopes) {
    if (!SCOPES.includes(s)) throw new PartnerInputError(`Unknown scope ${s}; use ${SCOPES.join(', ')}.`);
  }
  const grace = input.refreshGraceSeconds ?? 0;
  if (!Number.isInteger(grace) || grace < 0 || grace > 300) {
    throw new PartnerInputError('refreshGraceSeconds must be a whole number from 0 to 300.');
  }
  return grace;
}

/** Creates a partner; returns it with the client secret, which is stored only as a hash. */
export async function createPartner(
  sql: Sql,
  input: NewPartner,
): Promise<{ partner: Partner; clientSecret: string }> {
  const grace = checkPartnerSettings(input);
  const clientSecret = newSecret('tcsk_');
  const partner = sql.em.create(PartnerSchema, {
    clientId: `tc_live_${randomBytes(12).toString('hex')}`,
    name: input.name.trim(),
    clientSecretHash: hashSecret(clientSecret),
    redirectUris: input.redirectUris,
    allowedScopes: [...new Set(input.allowedScopes)],
    requirePkce: input.requirePkce ?? false,
    refreshGraceSeconds: grace,
    secretRotatedAt: null,
  });
  await sql.em.flush();
  return { partner, clientSecret };
}

/** The partner whose API key (client secret) this is; lookup by hash, so nothing to compare. */
export async function findPartnerByApiKey(sql: Sql, apiKey: string): Promise<Partner | null> {
  // On every partner request: one indexed statement, mapped by hand (the ORM's query builder, and
  // the fork of its entity manager that `Database.em` makes, were most of a balance read's CPU).
  const [row] = await sql.query<PartnerRow>(
    `select ${PARTNER_COLUMNS} from partners where client_secret_hash = $1`,
    [hashSecret(apiKey)],
  );
  return row ? partnerFromRow(row) : null;
}

/** The partners columns as `partnerFromRow` reads them; `prefix` qualifies them in a join. */
export const partnerColumns = (prefix = '') =>
  [
    'id',
    'client_id',
    'name',
    'client_secret_hash',
    'redirect_uris',
    'allowed_scopes',
    'require_pkce',
    'refresh_grace_seconds',
    'secret_rotated_at',
    'created_at',
  ]
    .map((c) => (prefix ? `${prefix}.${c} as p_${c}` : `${c} as p_${c}`))
    .join(', ');
const PARTNER_COLUMNS = partnerColumns();

/** A partners row selected with `partnerColumns` (every column aliased `p_<name>`). */
export type PartnerRow = {
  p_id: number;
  p_client_id: string;
  p_name: string;
  p_client_secret_hash: string;
  p_redirect_uris: string[];
  p_allowed_scopes: string[];
  p_require_pkce: boolean;
  p_refresh_grace_seconds: number;
  p_secret_rotated_at: Date | string | null;
  p_created_at: Date | string;
};

/** The same `Partner` the ORM would load, built by hand on the hot path (no entity manager). */
export function partnerFromRow(r: PartnerRow): Partner {
  return {
    id: r.p_id,
    clientId: r.p_client_id,
    name: r.p_name,
    clientSecretHash: r.p_client_secret_hash,
    redirectUris: r.p_redirect_uris,
    allowedScopes: r.p_allowed_scopes,
    requirePkce: r.p_require_pkce,
    refreshGraceSeconds: r.p_refresh_grace_seconds,
    secretRotatedAt: r.p_secret_rotated_at === null ? null : new Date(r.p_secret_rotated_at),
    createdAt: new Date(r.p_created_at),
  };
}

export async function findPartnerByClientId(sql: Sql, clientId: string): Promise<Partner | null> {
  return sql.em.findOne(PartnerSchema, { clientId });
}

/** Changes a partner's app settings, under the same rules as at registration. */
export async function updatePartnerSettings(
  sql: Sql,
  partnerId: number,
  input: NewPartner,
): Promise<Partner> {
  const grace = checkPartnerSettings(input);
  const partner = await sql.em.findOneOrFail(PartnerSchema, { id: partnerId });
  partner.name = input.name.trim();
  partner.redirectUris = [...new Set(input.redirectUris)];
  partner.allowedScopes = [...new Set(input.allowedScopes)];
  partner.requirePkce = input.requirePkce ?? false;
  partner.refreshGraceSeconds = grace;
  await sql.em.flush();
  return partner;
}

export async function rotateClientSecret(sql: Sql, partnerId: number, now: Date) {
  const clientSecret = newSecret('tcsk_');
  const partner = await sql.em.findOneOrFail(PartnerSchema, { id: partnerId });
  partner.clientSecretHash = hashSecret(clientSecret);
  partner.secretRotatedAt = now;
  await sql.em.flush();
  return { partner, clientSecret };
}

export function presentPartner(p: Partner): components['schemas']['Partner'] {
  return {
    partnerId: p.id,
    clientId: p.clientId,
    name: p.name,
    redirectUris: p.redirectUris,
    allowedScopes: p.allowedScopes as Scope[],
    requirePkce: p.requirePkce,
    refreshGraceSeconds: p.refreshGraceSeconds,
    createdAt: new Date(p.createdAt).toISOString(),
  };
}

export async function findPartnerById(sql: Sql, partnerId: number): Promise<Partner | null> {
  return sql.em.findOne(PartnerSchema, { id: partnerId });
}
