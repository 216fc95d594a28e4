import { Migration } from '@mikro-orm/migrations';

/**
 * Refresh grace window: a pair revoked because its parent refresh token was presented again inside
 * the window is marked `superseded`, so presenting that pair's refresh token later is recognised as
 * a replay (the legitimate client and an attacker racing) and revokes the whole family.
 */
export class Migration20261123000003_token_superseded extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table oauth_tokens add column superseded boolean not null default false');
  }
}
