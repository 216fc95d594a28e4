import { Migration } from '@mikro-orm/migrations';

/**
 * OAuth 2.0: wallet sign-in sessions, authorization codes and token pairs. Every secret (session id,
 * code, access and refresh token) is stored only as its SHA-256 hash. Rows are keyed by user id
 * first where they are read per user (DESIGN.md: shard by user later).
 */
export class Migration20261123000002_oauth extends Migration {
  override async up(): Promise<void> {
    // A browser session on the wallet pages; user_id is null until the visitor signs in, so the
    // sign-in form has a CSRF token too.
    this.addSql(`
      create table wallet_sessions (
        id_hash text primary key,
        user_id bigint references users(id),
        csrf_token text not null,
        created_at timestamptz not null,
        expires_at timestamptz not null
      )`);
    this.addSql('create index wallet_sessions_expires_idx on wallet_sessions (expires_at)');
    this.addSql(`
      create table oauth_codes (
        id bigint generated always as identity primary key,
        code_hash text not null unique,
        user_id bigint not null references users(id),
        partner_id integer not null references partners(id),
        redirect_uri text not null,
        scope text not null,
        code_challenge text,
        created_at timestamptz not null,
        expires_at timestamptz not null,
        consumed_at timestamptz
      )`);
    // One row per issued pair (access + refresh token). The row id is the seed's `tokenId`.
    // code_id names the consent (grant) a pair descends from; parent_id the pair whose refresh token
    // minted it. rotated_at: its refresh token was used; revoked_at: revoked (by whom in revoked_by).
    this.addSql(`
      create table oauth_tokens (
        id bigint generated always as identity primary key,
        user_id bigint not null references users(id),
        partner_id integer not null references partners(id),
        access_hash text not null unique,
        refresh_hash text not null unique,
        scope text not null,
        granted_scope text not null,
        code_id bigint references oauth_codes(id),
        parent_id bigint references oauth_tokens(id),
        created_at timestamptz not null,
        access_expires_at timestamptz not null,
        refresh_expires_at timestamptz not null,
        rotated_at timestamptz,
        revoked_at timestamptz,
        revoked_by text check (revoked_by in ('user', 'partner'))
      )`);
    this.addSql('create index oauth_tokens_user_partner_idx on oauth_tokens (user_id, partner_id)');
    this.addSql('create index oauth_tokens_code_idx on oauth_tokens (code_id)');
    this.addSql('create index oauth_tokens_parent_idx on oauth_tokens (parent_id)');
  }
}
