import { Migration } from '@mikro-orm/migrations';

/**
 * points_deduct_as_bearer: a bearer deduct in ONE round trip instead of two (bearer_grant, then
 * points_deduct). The token is checked inside the statement by bearer_grant itself
 * (Migration20261124000008: known, not revoked, not rotated away, not expired at `at`, user
 * enabled; one rule in one place), for the user and partner the caller expects it to name, with the
 * scope rule of src/oauth2/bearer.ts (`need_scopes` granted by the token AND still allowed to the
 * partner); only then does it deduct. The check and the deduct are two queries of one statement: a
 * revoke committed between them (microseconds, where it used to be a network round trip) is not
 * seen by the deduct, as a revoke committed just after a deduct would not be; the token row is not
 * locked, which would write to it on every deduct.
 *
 * `unauthenticated` or `forbidden` means nothing was written: the caller authenticates the usual
 * way (src/http/direct-routes.ts), which words the 401 or 403. Anything else is points_deduct's row.
 */
export class Migration20261124000012_deduct_as_bearer extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create function points_deduct_as_bearer(
        token_hash text, need_scopes text[],
        for_user bigint, for_partner integer, amount integer, description text, at timestamptz,
        txn_public_id text,
        idem_key text, idem_lock bigint, idem_hash text,
        event_type text, event_public_id text, event_head text, event_tail text, holdback_ms integer,
        job_task text, job_key_prefix text
      )
      returns table (outcome text, balance integer, public_id text, prior_body jsonb, pending bigint[])
      language plpgsql volatile as $$
      declare
        granted boolean;
      begin
        select coalesce(need_scopes <@ string_to_array(g.scope, ' ') and need_scopes <@ g.p_allowed_scopes, false)
          into granted
          from bearer_grant(token_hash, at) g
         where g.user_id = for_user and g.p_id = for_partner;
        if not found then
          return query select 'unauthenticated'::text, null::integer, null::text, null::jsonb, null::bigint[];
        elsif not granted then
          return query select 'forbidden'::text, null::integer, null::text, null::jsonb, null::bigint[];
        else
          return query select d.outcome, d.balance, d.public_id, d.prior_body, d.pending
            from points_deduct(for_user, for_partner, amount, description, at, txn_public_id,
                               idem_key, idem_lock, idem_hash,
                               event_type, event_public_id, event_head, event_tail, holdback_ms,
                               job_task, job_key_prefix) d;
        end if;
      end $$`);
  }

  override async down(): Promise<void> {
    this.addSql(
      'drop function points_deduct_as_bearer(text, text[], bigint, integer, integer, text, timestamptz, text, text, bigint, text, text, text, text, text, integer, text, text)',
    );
  }
}
