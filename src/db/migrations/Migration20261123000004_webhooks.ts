import { Migration } from '@mikro-orm/migrations';

/**
 * Signed webhook delivery: endpoint secrets encrypted at rest (with a second secret that keeps
 * signing for 24 hours after a rotation), endpoint health (why and when it was disabled, since when
 * it has been failing), delivery claims (so two workers never send the same attempt at once), the
 * exact bytes of each event, and a log row per attempt.
 */
export class Migration20261123000004_webhooks extends Migration {
  override async up(): Promise<void> {
    // Nothing could create an endpoint before this migration (the API answered 501), so the
    // plain-text column goes without a data migration.
    this.addSql(`
      alter table webhook_endpoints
        drop column secret,
        add column secret_encrypted text not null,
        add column previous_secret_encrypted text,
        add column previous_secret_expires_at timestamptz,
        add column secret_rotated_at timestamptz,
        add column disabled_reason text check (disabled_reason in ('manual', 'gone', 'failing')),
        add column disabled_detail text,
        add column disabled_at timestamptz,
        add column failing_since timestamptz,
        add column updated_at timestamptz`);
    // The exact JSON text that is signed and sent (jsonb would reorder the keys).
    this.addSql('alter table webhook_events add column body text');
    this.addSql(`
      alter table webhook_deliveries
        alter column next_attempt_at drop default,
        add column claim_token text,
        add column claimed_until timestamptz,
        add column last_attempt_at timestamptz`);
    this.addSql(
      'create index webhook_deliveries_in_flight_idx on webhook_deliveries (endpoint_id, claimed_until) where claimed_until is not null',
    );
    this.addSql('create index webhook_deliveries_event_idx on webhook_deliveries (event_id)');
    this.addSql(`
      create table webhook_attempts (
        id bigint generated always as identity primary key,
        delivery_id bigint not null references webhook_deliveries(id),
        attempt integer not null,
        attempted_at timestamptz not null,
        status_code integer,
        latency_ms integer not null,
        error text,
        response_body text
      )`);
    this.addSql('create index webhook_attempts_delivery_idx on webhook_attempts (delivery_id, id)');
  }
}
