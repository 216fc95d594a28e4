import type { Sql } from '../db/database.js';
import type { Partner } from '../db/entities.js';
import { hashSecret } from '../lib/crypto.js';
import { type PartnerRow, partnerFromRow } from '../partners/partners.js';

/** The legacy flow's caller: the partner of an API key and the enabled user of a Privy id, if any. */
export type LegacyCaller = { partner: Partner; user: { id: number; balance: number } | undefined };

/**
 * Both lookups of a legacy call in one indexed statement (the legacy_caller function of
 * Migration20261124000008, planned once per connection), mapped by hand (no ORM).
 */
const LEGACY_SQL = 'select * from legacy_caller($1::text, $2::text)';

/**
 * The partner whose API key this is (undefined: no such key) and the user the Privy id names.
 * The user is only looked up here; the caller trusts it only once the Privy session is verified.
 */
export async function findLegacyCaller(
  sql: Sql,
  apiKey: string,
  privyId: string,
): Promise<LegacyCaller | undefined> {
  const [row] = await sql.query<PartnerRow & { u_id: string | null; u_balance: number | null }>(LEGACY_SQL, [
    hashSecret(apiKey),
    privyId,
  ]);
  if (!row) return undefined;
  return {
    partner: partnerFromRow(row),
    user: row.u_id === null ? undefined : { id: Number(row.u_id), balance: row.u_balance ?? 0 },
  };
}
