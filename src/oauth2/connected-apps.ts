import type { Sql } from '../db/database.js';
import { parseScope } from './scopes.js';
import { revokePairs } from './tokens.js';

export type ConnectedApp = { partnerId: number; name: string; scopes: string[]; connectedAt: Date };

/** The apps holding a usable token of this user (the wallet's Connected apps page). */
export async function listConnectedApps(sql: Sql, userId: number, now: Date): Promise<ConnectedApp[]> {
  const rows = await sql.query<{
    partner_id: number;
    name: string;
    scopes: string[];
    connected_at: Date | string;
  }>(
    `select t.partner_id, p.name, array_agg(t.granted_scope) as scopes, min(t.created_at) as connected_at
     from oauth_tokens t join partners p on p.id = t.partner_id
     where t.user_id = $1 and t.revoked_at is null and t.rotated_at is null and t.refresh_expires_at > $2
     group by t.partner_id, p.name
     order by p.name`,
    [userId, now],
  );
  return rows.map((r) => ({
    partnerId: r.partner_id,
    name: r.name,
    scopes: [...new Set(r.scopes.flatMap((s) => parseScope(s)))],
    connectedAt: new Date(r.connected_at),
  }));
}

/** The user disconnects an app: every token of theirs it holds dies; it hears `revokedBy: user`. */
export async function disconnectApp(tx: Sql, userId: number, partnerId: number, now: Date): Promise<number> {
  return revokePairs(tx, userId, { partnerId }, 'user', now);
}
