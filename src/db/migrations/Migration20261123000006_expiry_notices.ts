import { Migration } from '@mikro-orm/migrations';

/**
 * Token-expiry notices and the user's notifications.
 *
 * oauth_tokens gets one flag per threshold (access_notice_at, refresh_notice_at), set by the
 * conditional update that claims the notice, in the same transaction as the notification, the
 * webhook event and the email job: a pair is noticed at most once per threshold however often the
 * scan runs or the job is queued. The partial indexes hold only live pairs not yet noticed, so the
 * every-minute scan reads a range of them and nothing else.
 *
 * notifications: what the wallet shows a user (keyed by user id first, DESIGN.md: shard by user).
 * `details` is the kind's own data (typed in src/notifications/store.ts); `show_until` is when it
 * stops being relevant (the token expired, or it died earlier); `email_sent_at` makes the email
 * job idempotent.
 */
export class Migration20261123000006_expiry_notices extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table oauth_tokens add column access_notice_at timestamptz');
    this.addSql('alter table oauth_tokens add column refresh_notice_at timestamptz');
    this.addSql(`
      create index oauth_tokens_access_notice_due_idx on oauth_tokens (access_expires_at)
      where access_notice_at is null and revoked_at is null and rotated_at is null`);
    this.addSql(`
      create index oauth_tokens_refresh_notice_due_idx on oauth_tokens (refresh_expires_at)
      where refresh_notice_at is null and revoked_at is null and rotated_at is null`);
    this.addSql(`
      create table notifications (
        user_id bigint not null references users(id),
        id bigint generated always as identity,
        kind text not null,
        details jsonb not null,
        created_at timestamptz not null,
        show_until timestamptz,
        dismissed_at timestamptz,
        email_sent_at timestamptz,
        primary key (user_id, id)
      )`);
    // The notices still on show: what the settings page lists per user, and what the scan retires
    // when their token died early.
    this.addSql(
      'create index notifications_showing_idx on notifications (show_until) where dismissed_at is null',
    );
  }
}
