import { Migration } from '@mikro-orm/migrations';

/**
 * The wallet's transaction history pages a user's ledger across every partner, newest first, by id
 * (src/points/points.ts walletTransactions). The only index by user, (user_id, partner_id, id desc),
 * cannot give that order, so PostgreSQL walked the primary key backwards and filtered by user: fast
 * for an active user, but a scan of the whole ledger for one with a few old transactions. With
 * (user_id, id) each page is an index range read, in both directions (Older and Newer).
 */
export class Migration20261124000011_ledger_user_history extends Migration {
  override async up(): Promise<void> {
    this.addSql('create index ledger_entries_user_history_idx on ledger_entries (user_id, id)');
  }

  override async down(): Promise<void> {
    this.addSql('drop index ledger_entries_user_history_idx');
  }
}
