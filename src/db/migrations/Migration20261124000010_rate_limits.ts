import { Migration } from '@mikro-orm/migrations';

/**
 * rate_limit_counters: the rate-limit windows every instance shares (src/http/rate-limits.ts).
 * One row per (counter, window, key); `window_start` is the window's start in ms since the epoch on
 * the injected clock, aligned to the window length, so all instances agree on it without asking.
 *
 * UNLOGGED: counters are hot, short-lived (one minute) and disposable. An unlogged table writes no
 * WAL, so every counted failure or sync costs less; the price is that a crash of PostgreSQL empties
 * it and a standby does not have it, which at worst gives every key a fresh budget once.
 * `expires_at` is what the housekeeping purge deletes by (every 10 minutes, a scan of a small table).
 */
export class Migration20261124000010_rate_limits extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create unlogged table rate_limit_counters (
        counter text not null,
        window_start bigint not null,
        key text not null,
        expires_at timestamptz not null,
        hits integer not null,
        primary key (counter, window_start, key)
      )`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table rate_limit_counters');
  }
}
