import { Migration } from '@mikro-orm/migrations';

/**
 * The partner dashboard's people and their browser sessions.
 *
 * partner_accounts: someone who signs in to the dashboard for one partner, with their own email and
 * an argon2id password hash; never a wallet user (a separate table, so a wallet password cannot open
 * the dashboard). Emails are unique whatever their case (stored lower-cased, indexed on lower()).
 *
 * partner_sessions: the same shape as wallet_sessions (src/web/shared/sessions.ts serves both): only
 * a successful sign-in writes a row; the housekeeping job purges expired ones. Deleting an account
 * ends its sessions.
 */
export class Migration20261124000009_partner_accounts extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table partner_accounts (
        id bigint generated always as identity primary key,
        partner_id integer not null references partners(id),
        email text not null,
        password_hash text not null,
        created_at timestamptz not null default now(),
        disabled_at timestamptz
      )`);
    this.addSql('create unique index partner_accounts_email_idx on partner_accounts (lower(email))');
    this.addSql('create index partner_accounts_partner_idx on partner_accounts (partner_id)');
    this.addSql(`
      create table partner_sessions (
        id_hash text primary key,
        account_id bigint not null references partner_accounts(id) on delete cascade,
        csrf_token text not null,
        created_at timestamptz not null,
        expires_at timestamptz not null
      )`);
    this.addSql('create index partner_sessions_expires_idx on partner_sessions (expires_at)');
  }
}
