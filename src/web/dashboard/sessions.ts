import type { Config } from '../../config.js';
import type { Database } from '../../db/database.js';
import type { Clock } from '../../lib/clock.js';
import type { PartnerAccount } from '../../partners/accounts.js';
import { BrowserSessions, SESSION_TABLES, type Session, type SessionKind } from '../shared/sessions.js';

/** Who a dashboard session belongs to: an account, and the one partner it acts for. */
export type PartnerPrincipal = { accountId: number; partnerId: number; email: string; partnerName: string };
export type PartnerSession = Session<PartnerPrincipal>;

const PARTNER_SESSIONS: SessionKind<PartnerPrincipal, PartnerAccount> = {
  store: SESSION_TABLES.partner,
  cookie: 'tian_partner',
  csrfCookie: 'tian_partner_csrf',
  select: `select s.id_hash, s.csrf_token, a.id as account_id, a.partner_id, a.email, p.name
     from partner_sessions s join partner_accounts a on a.id = s.account_id join partners p on p.id = a.partner_id
     where s.id_hash = $1 and s.expires_at > $2 and a.disabled_at is null`,
  principal: (row) => ({
    accountId: Number(row.account_id),
    partnerId: Number(row.partner_id),
    email: String(row.email),
    partnerName: String(row.name),
  }),
  fromOwner: (a) => ({ accountId: a.id, partnerId: a.partnerId, email: a.email, partnerName: a.partnerName }),
};

/** The partner dashboard's browser sessions: the wallet's rules, its own table and cookies. */
export class PartnerSessions extends BrowserSessions<PartnerPrincipal, PartnerAccount> {
  constructor(db: Database, clock: Clock, config: Config) {
    super(db, clock, config, PARTNER_SESSIONS);
  }
}
