import { Migration } from '@mikro-orm/migrations';

/**
 * The hot path's statements as functions. bearer_grant and legacy_caller: see below.
 *
 * points_deduct: a whole deduct in one round trip (one autocommit statement, so no BEGIN/COMMIT
 * either), doing in order what the transaction of separate statements did:
 *
 * 1. With an idempotency key: the key's transaction-scoped advisory try-lock (false: `in_flight`,
 *    answered 409, nothing waits), then the lookup of the key's stored response: same operation and
 *    parameter hash is `replayed` with the stored body, anything else is `reused` (422). Each query
 *    of a VOLATILE plpgsql function takes a fresh snapshot, so the lookup, which runs after the lock
 *    is held, sees what the key's previous holder committed (see idempotency_claim).
 * 2. The conditional update of the balance (`balance >= amount`, never a read-modify-write) and the
 *    ledger row together; when the balance does not cover it: `insufficient` with the balance now,
 *    nothing written.
 * 3. Only when the partner has an endpoint whose event filter has the type: the webhook event (its
 *    body is `event_head || new balance || event_tail`, text the caller built with JSON.stringify,
 *    so it is signed and sent byte for byte as before), one delivery per such endpoint (`failed`
 *    at once for a disabled one) and a graphile-worker job per pending delivery: the committed rows
 *    are the promise to deliver.
 * 4. The key's stored response, the same object the API answers.
 *
 * Returns one row: outcome, balance (after the deduct; the current one when insufficient), the
 * ledger row's public id, the stored body of a replay, and the pending deliveries' ids.
 */
/** The partner columns `partnerFromRow` reads (src/partners/partners.ts), as a function returns them. */
const PARTNER_OUT = `p_id integer, p_client_id text, p_name text, p_client_secret_hash text, p_redirect_uris text[],
  p_allowed_scopes text[], p_require_pkce boolean, p_refresh_grace_seconds integer,
  p_secret_rotated_at timestamptz, p_created_at timestamptz`;
const PARTNER_IN = `p.id, p.client_id, p.name, p.client_secret_hash, p.redirect_uris, p.allowed_scopes, p.require_pkce,
  p.refresh_grace_seconds, p.secret_rotated_at, p.created_at`;

/** A timestamptz as JavaScript's toISOString writes it (UTC, milliseconds, `Z`); null stays null. */
const ISO = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

export class Migration20261124000008_deduct_statement extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create function points_deduct(
        for_user bigint, for_partner integer, amount integer, description text, at timestamptz,
        txn_public_id text,
        idem_key text, idem_lock bigint, idem_hash text,
        event_type text, event_public_id text, event_head text, event_tail text, holdback_ms integer,
        job_task text, job_key_prefix text
      )
      returns table (outcome text, balance integer, public_id text, prior_body jsonb, pending bigint[])
      language plpgsql volatile as $$
      declare
        prior record;
        posted record;
        ev record;
        pending_ids bigint[] := '{}';
        body text;
      begin
        -- The API validates amount >= 1; a negative one here would credit points, so refuse it anyway.
        if amount is null or amount <= 0 then
          raise exception 'points_deduct: amount must be a positive integer, got %', amount using errcode = '22023';
        end if;
        if idem_key is not null then
          if not pg_try_advisory_xact_lock(idem_lock) then
            return query select 'in_flight'::text, null::integer, null::text, null::jsonb, null::bigint[];
            return;
          end if;
          select k.operation, k.request_hash, k.response_body into prior from idempotency_keys k
            where k.user_id = for_user and k.partner_id = for_partner and k.key = idem_key;
          if found then
            if prior.operation = 'deduct' and prior.request_hash = idem_hash then
              return query select 'replayed'::text, null::integer, null::text, prior.response_body, null::bigint[];
            else
              return query select 'reused'::text, null::integer, null::text, null::jsonb, null::bigint[];
            end if;
            return;
          end if;
        end if;

        with upd as (
          update users u set balance = u.balance - amount where u.id = for_user and u.balance >= amount
          returning u.id, u.balance
        )
        insert into ledger_entries (public_id, user_id, partner_id, type, amount, balance_after, description, created_at)
        select txn_public_id, upd.id, for_partner, 'deduct', -amount, upd.balance, description, at from upd
        returning ledger_entries.balance_after into posted;
        if not found then
          return query select 'insufficient'::text,
            coalesce((select u.balance from users u where u.id = for_user), 0), null::text, null::jsonb, null::bigint[];
          return;
        end if;

        if exists (select 1 from webhook_endpoints e
                   where e.partner_id = for_partner and e.deleted_at is null and event_type = any(e.events)) then
          body := event_head || posted.balance_after::text || event_tail;
          insert into webhook_events (public_id, partner_id, type, payload, body, created_at)
            values (event_public_id, for_partner, event_type, body::jsonb, body, at)
            returning webhook_events.id, webhook_events.created_at into ev;
          with d as (
            insert into webhook_deliveries (public_id, event_id, endpoint_id, status, next_attempt_at, last_error, created_at)
            select 'wd_' || substr(md5(random()::text || e.id::text || clock_timestamp()::text), 1, 26), ev.id, e.id,
                   case when e.enabled then 'pending' else 'failed' end,
                   case when e.enabled then ev.created_at + holdback_ms * interval '1 millisecond' end,
                   case when e.enabled then null else 'endpoint disabled: nothing was sent' end,
                   ev.created_at
            from webhook_endpoints e
            where e.partner_id = for_partner and e.deleted_at is null and event_type = any(e.events)
            returning webhook_deliveries.id, webhook_deliveries.status
          )
          select coalesce(array_agg(d.id order by d.id), '{}') into pending_ids from d where d.status = 'pending';
          perform graphile_worker.add_job(job_task, json_build_object('deliveryId', p.id::text),
                    max_attempts => 5, job_key => job_key_prefix || p.id::text,
                    run_at => now() + holdback_ms * interval '1 millisecond')
            from unnest(pending_ids) as p(id);
        end if;

        if idem_key is not null then
          insert into idempotency_keys (user_id, partner_id, key, operation, request_hash, response_status, response_body)
          values (for_user, for_partner, idem_key, 'deduct', idem_hash, 200, jsonb_build_object(
            'success', true, 'creditsDeducted', amount, 'newBalance', posted.balance_after,
            'transactionId', txn_public_id, 'webhookDelivered', false));
        end if;

        return query select 'done'::text, posted.balance_after, txn_public_id, null::jsonb, pending_ids;
      end $$`);

    // The two authentication lookups of the hot path, as plpgsql so each connection plans them once
    // (a plpgsql function keeps its statements' plans for the session; an unnamed statement, as pg
    // sends without prepared statements, is planned on every call, and planning a three-table join
    // cost more than running it). Transparent to PgBouncer's transaction mode: nothing is PREPAREd.
    this.addSql(`
      create function bearer_grant(for_hash text, at timestamptz)
      returns table (id bigint, user_id bigint, scope text, balance integer, ${PARTNER_OUT})
      language plpgsql stable as $$
      begin
        return query
          select t.id, t.user_id, t.scope, u.balance, ${PARTNER_IN}
          from oauth_tokens t
          join users u on u.id = t.user_id and u.disabled_at is null
          join partners p on p.id = t.partner_id
          where t.access_hash = for_hash and t.revoked_at is null and t.rotated_at is null
            and t.access_expires_at > at;
      end $$`);
    this.addSql(`
      create function legacy_caller(for_hash text, for_privy_id text)
      returns table (${PARTNER_OUT}, u_id bigint, u_balance integer)
      language plpgsql stable as $$
      begin
        return query
          select ${PARTNER_IN}, u.id, u.balance
          from partners p left join users u on u.privy_id = for_privy_id and u.disabled_at is null
          where p.client_secret_hash = for_hash;
      end $$`);
    // GET /api/oauth2/token/info: the token's answer computed where the row is, by the same rules as
    // bearer_grant: active at `at` only while its user is enabled, and the scope is what the token may
    // do now (the granted scopes the partner is still allowed, in granted order). The times are
    // already in the API's ISO form; a rotated token is reported revoked at its rotation.
    this.addSql(`
      create function token_info(for_hash text, at timestamptz)
      returns table (active boolean, scope text, user_id bigint, partner_id integer, expires_at text, revoked_at text)
      language plpgsql stable as $$
      begin
        return query
          select t.revoked_at is null and t.rotated_at is null and t.access_expires_at > at and u.disabled_at is null,
                 coalesce((select string_agg(g.s, ' ' order by g.n)
                           from unnest(string_to_array(t.scope, ' ')) with ordinality as g(s, n)
                           where g.s = any(p.allowed_scopes)), ''),
                 t.user_id, t.partner_id, ${ISO('t.access_expires_at')}, ${ISO('coalesce(t.revoked_at, t.rotated_at)')}
          from oauth_tokens t
          join users u on u.id = t.user_id
          join partners p on p.id = t.partner_id
          where t.access_hash = for_hash;
      end $$`);
  }

  override async down(): Promise<void> {
    this.addSql('drop function token_info(text, timestamptz)');
    this.addSql('drop function bearer_grant(text, timestamptz)');
    this.addSql('drop function legacy_caller(text, text)');
    this.addSql(
      'drop function points_deduct(bigint, integer, integer, text, timestamptz, text, text, bigint, text, text, text, text, text, integer, text, text)',
    );
  }
}
