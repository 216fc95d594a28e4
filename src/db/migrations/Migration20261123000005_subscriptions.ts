import { Migration } from '@mikro-orm/migrations';

/**
 * Recurring monthly subscriptions and the periods they charged.
 *
 * subscriptions: keyed by user id first (DESIGN.md: shard by user). `anchor_at` is the first charge;
 * every period boundary is derived from it (src/subscriptions/billing-calendar.ts), so a month-end
 * anchor is remembered through short months. `periods_paid` counts the periods charged; the period
 * due next starts at `current_period_end`. `next_attempt_at` is when the renewal scanner acts next
 * (the due date, a retry, or the end of a period that will not renew); null once it has ended.
 *
 * subscription_periods: one row per charged period, written in the same transaction as its debit.
 * The primary key makes (subscription, period_start) unique, so no interleaving of jobs, workers,
 * clock re-runs or crash-and-retry can charge one period twice: a second charge fails on the key and
 * its debit rolls back with it. (user_id leads the key only so the row shards with its user; the
 * subscription id alone already names one user's subscription.)
 */
export class Migration20261123000005_subscriptions extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table subscriptions (
        user_id bigint not null references users(id),
        id bigint generated always as identity,
        public_id text not null unique,
        partner_id integer not null references partners(id),
        plan_name text not null,
        amount integer not null check (amount > 0),
        status text not null check (status in ('active', 'past_due', 'canceled')),
        anchor_at timestamptz not null,
        periods_paid integer not null check (periods_paid >= 1),
        current_period_start timestamptz not null,
        current_period_end timestamptz not null,
        next_attempt_at timestamptz,
        failed_attempts integer not null default 0 check (failed_attempts >= 0),
        cancel_at_period_end boolean not null default false,
        canceled_at timestamptz,
        ended_at timestamptz,
        created_at timestamptz not null,
        primary key (user_id, id),
        check ((status = 'canceled') = (ended_at is not null)),
        check (status = 'canceled' or next_attempt_at is not null)
      )`);
    // The partner's list of a user's subscriptions, newest first.
    this.addSql(
      'create index subscriptions_user_partner_idx on subscriptions (user_id, partner_id, id desc)',
    );
    // The every-minute scan reads only subscriptions with work ahead of them, in due order.
    this.addSql(
      "create index subscriptions_due_idx on subscriptions (next_attempt_at) where status <> 'canceled'",
    );
    this.addSql(`
      create table subscription_periods (
        user_id bigint not null,
        subscription_id bigint not null,
        period_start timestamptz not null,
        period_end timestamptz not null,
        ledger_entry_id bigint not null unique references ledger_entries(id),
        charged_at timestamptz not null,
        primary key (user_id, subscription_id, period_start),
        foreign key (user_id, subscription_id) references subscriptions(user_id, id),
        check (period_end > period_start)
      )`);
  }
}
