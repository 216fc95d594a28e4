import { Migration } from '@mikro-orm/migrations';

/**
 * idempotency_claim: the idempotency key's try-lock and the lookup of its stored response in one
 * round trip. It must be a VOLATILE function rather than one SELECT: a statement reads with the
 * snapshot taken when it started, so a key committed by the previous holder between that moment and
 * the lock would be invisible and the work would run twice. Inside a VOLATILE function each query
 * takes a fresh snapshot, so the lookup runs after the lock is held, as two statements did.
 * Never waits: the lock is taken with try-lock (false: the key is in flight).
 */
export class Migration20261123000007_idempotency_claim extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create function idempotency_claim(lock_key bigint, for_user bigint, for_partner integer, for_key text)
      returns table (claimed boolean, prior_operation text, prior_hash text, prior_body jsonb)
      language plpgsql volatile as $$
      begin
        if not pg_try_advisory_xact_lock(lock_key) then
          return query select false, null::text, null::text, null::jsonb;
          return;
        end if;
        return query
          select true, k.operation, k.request_hash, k.response_body from idempotency_keys k
          where k.user_id = for_user and k.partner_id = for_partner and k.key = for_key;
        if not found then
          return query select true, null::text, null::text, null::jsonb;
        end if;
      end $$`);
  }

  override async down(): Promise<void> {
    this.addSql('drop function idempotency_claim(bigint, bigint, integer, text)');
  }
}
