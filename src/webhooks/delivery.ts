import { randomUUID } from 'node:crypto';
import type { Database, Sql } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { disableEndpoint } from './endpoints.js';
import type { HttpOutcome, WebhookHttpClient } from './http-client.js';
import { queueDeliveryJob } from './outbox.js';
import { DISABLE_AFTER_FAILING_MS, parseRetryAfter, retryDelayMs } from './schedule.js';
import type { SecretBox } from './secrets.js';
import { signedHeaders } from './signer.js';

/** At most this many attempts to one endpoint are on the wire at once (claims, across every worker). */
export const MAX_IN_FLIGHT_PER_ENDPOINT = 10;
/** A claim outlives the attempt's timeout by this much; past it, a crashed worker's claim lapses. */
const CLAIM_MARGIN_MS = 30_000;

export type DeliveryOptions = {
  db: Database;
  clock: Clock;
  box: SecretBox;
  http: WebhookHttpClient;
  timeoutMs: number;
  /** Delays between attempts (default: RETRY_DELAYS_MS). */
  retryDelaysMs?: readonly number[];
  /** In [0, 1): the retry jitter. */
  random?: () => number;
  log?: Logger;
  /** Attempts by outcome and the event-to-delivery lag. */
  metrics?: Pick<Metrics, 'webhookDeliveries' | 'webhookLag'>;
};

/** What one call to `attempt` came to. */
export type AttemptOutcome =
  | { kind: 'succeeded' | 'retrying' | 'failed' }
  /** Nothing to do: delivered, given up, or its endpoint is gone. */
  | { kind: 'done' }
  /** Another worker holds it right now. */
  | { kind: 'claimed' }
  /** Its next attempt is later (by our clock). */
  | { kind: 'not_due'; inMs: number }
  /** Its endpoint already has the most attempts in flight. */
  | { kind: 'busy' };

type Claimed = {
  id: string;
  attempt: number;
  token: string;
  endpointId: number;
  endpointPublicId: string;
  url: string;
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: Date | null;
  eventPublicId: string;
  /** When the change it reports happened (the lag metric). */
  eventCreatedAt: Date;
  body: string;
};

type ClaimRow = {
  id: string;
  attempts: number;
  event_public_id: string;
  event_created_at: string | Date;
  body: string;
  endpoint_id: number;
  endpoint_public_id: string;
  url: string;
  secret_encrypted: string;
  previous_secret_encrypted: string | null;
  previous_secret_expires_at: string | Date | null;
};

/** Timestamps arrive as strings or Dates depending on the driver's type parsers. */
const asDate = (v: string | Date | null): Date | null => (v === null ? null : new Date(v));

/**
 * Sends webhook deliveries: claim (so two workers never send the same attempt at once), sign, POST,
 * record the attempt, then reschedule or finish, with the endpoint's health updated in the same
 * transaction. Every step is safe to repeat (jobs run at least once): a delivery that is no longer
 * pending, not yet due, or claimed by someone else is left alone.
 */
export class WebhookDelivery {
  /** Replaceable (tests stub its resolver); closed by `close`. */
  http: WebhookHttpClient;
  random: () => number;
  private readonly db: Database;
  private readonly clock: Clock;
  private readonly box: SecretBox;
  private readonly timeoutMs: number;
  private readonly retryDelaysMs: readonly number[] | undefined;
  private readonly log: Logger | undefined;
  private readonly metrics: DeliveryOptions['metrics'];
  /** In-process first attempts still running after their caller stopped waiting. */
  private readonly running = new Set<Promise<unknown>>();

  constructor(opts: DeliveryOptions) {
    this.db = opts.db;
    this.clock = opts.clock;
    this.box = opts.box;
    this.http = opts.http;
    this.timeoutMs = opts.timeoutMs;
    this.retryDelaysMs = opts.retryDelaysMs;
    this.random = opts.random ?? Math.random;
    this.log = opts.log;
    this.metrics = opts.metrics;
  }

  /**
   * How long a delivery whose first attempt is made in-process waits before the job queue may try
   * it: longer than that attempt can take, so the two do not both send routinely.
   */
  get holdbackMs(): number {
    return this.timeoutMs + 5_000;
  }

  /**
   * The first attempt of freshly committed deliveries, made right away in this process. Resolves
   * true when every one was acknowledged (2xx) within `waitMs`; false at once for none, and false
   * when one failed or was slower. Attempts still running carry on after that (and are recorded).
   */
  async deliverFirst(deliveryIds: readonly string[], waitMs: number): Promise<boolean> {
    if (deliveryIds.length === 0) return false;
    const all = Promise.all(deliveryIds.map((id) => this.attempt(id, 'first'))).then(
      (outcomes) => outcomes.every((o) => o.kind === 'succeeded'),
      (err: Error) => {
        this.log?.error({ err, component: 'webhooks' }, 'webhook first attempt failed');
        return false;
      },
    );
    this.running.add(all);
    void all.finally(() => this.running.delete(all));
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), waitMs);
    });
    const delivered = await Promise.race([all, late]);
    clearTimeout(timer);
    return delivered;
  }

  /** The delivery job: one due attempt. Queued by the outbox, by the retry scanner and by itself. */
  async runJob(payload: unknown): Promise<void> {
    const id = (payload as { deliveryId?: unknown } | null)?.deliveryId;
    if (typeof id !== 'string' || !/^\d{1,19}$/.test(id)) {
      this.log?.error(
        { component: 'webhooks', job: 'deliver-webhook' },
        'webhook delivery job without a delivery id',
      );
      return;
    }
    const outcome = await this.attempt(id, 'due');
    // A full endpoint frees up within one timeout; a near-due delivery is worth a precise wake-up.
    // Anything else due later is found by the scanner.
    if (outcome.kind === 'busy') await this.db.transaction((tx) => queueDeliveryJob(tx, id, 1_000));
    if (outcome.kind === 'not_due' && outcome.inMs <= 60_000)
      await this.db.transaction((tx) => queueDeliveryJob(tx, id, outcome.inMs));
  }

  /** The retry scanner (every minute): a job for each pending delivery whose next attempt is due. */
  async scanDue(now: Date): Promise<void> {
    const due = await this.db.query<{ id: string }>(
      `select id::text from webhook_deliveries
       where status = 'pending' and next_attempt_at <= $1 and (claimed_until is null or claimed_until <= $1)
       order by next_attempt_at limit 1000`,
      [now],
    );
    if (due.length === 0) return;
    await this.db.transaction(async (tx) => {
      for (const { id } of due) await queueDeliveryJob(tx, id);
    });
  }

  /**
   * One attempt of one delivery: `first` claims a delivery never attempted (whatever its
   * schedule), `due` one whose next attempt is due by our clock.
   */
  async attempt(deliveryId: string, mode: 'first' | 'due'): Promise<AttemptOutcome> {
    const claimed = await this.claim(deliveryId, mode, this.clock.now());
    if (!('token' in claimed)) return claimed;
    const at = this.clock.now();
    const outcome = await this.send(claimed, at);
    const recorded = await this.record(claimed, at, outcome);
    this.observe(claimed, recorded);
    return recorded;
  }

  private observe(c: Claimed, recorded: AttemptOutcome): void {
    const { kind } = recorded;
    if (!this.metrics || (kind !== 'succeeded' && kind !== 'retrying' && kind !== 'failed')) return;
    this.metrics.webhookDeliveries.inc({ outcome: kind });
    if (kind === 'succeeded')
      this.metrics.webhookLag.observe(
        Math.max(0, this.clock.now().getTime() - c.eventCreatedAt.getTime()) / 1000,
      );
  }

  /** Waits for in-process attempts still running, then closes connections (shutdown). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.running]);
    await this.http.close();
  }

  private claim(id: string, mode: 'first' | 'due', now: Date): Promise<Claimed | AttemptOutcome> {
    return this.db.transaction(async (tx) => {
      // The endpoint's row lock serialises claims per endpoint, so the in-flight count below is exact.
      // FOR NO KEY UPDATE, not FOR UPDATE: a deduct inserting a delivery takes KEY SHARE on the
      // endpoint (its foreign key), which FOR UPDATE would block; under load that deadlocked deducts.
      const [endpoint] = await tx.query<{ id: number; live: boolean }>(
        `select e.id, e.enabled and e.deleted_at is null as live from webhook_endpoints e
         where e.id = (select endpoint_id from webhook_deliveries where id = $1) for no key update`,
        [id],
      );
      if (!endpoint) return { kind: 'done' } as const;
      const token = randomUUID();
      const [row] = await tx.query<ClaimRow>(
        `update webhook_deliveries d set claim_token = $2, claimed_until = $3
         from webhook_events ev, webhook_endpoints e
         where d.id = $1 and ev.id = d.event_id and e.id = d.endpoint_id
           and d.status = 'pending' and e.enabled and e.deleted_at is null
           and (d.claimed_until is null or d.claimed_until <= $4)
           and (case when $5::text = 'first' then d.attempts = 0 else d.next_attempt_at <= $4 end)
           and (select count(*) from webhook_deliveries x
                where x.endpoint_id = d.endpoint_id and x.claimed_until > $4 and x.id <> d.id) < $6
         returning d.id::text, d.attempts, ev.public_id as event_public_id, ev.created_at as event_created_at, coalesce(ev.body, ev.payload::text) as body,
           e.id as endpoint_id, e.public_id as endpoint_public_id, e.url, e.secret_encrypted,
           e.previous_secret_encrypted, e.previous_secret_expires_at`,
        [
          id,
          token,
          new Date(now.getTime() + this.timeoutMs + CLAIM_MARGIN_MS),
          now,
          mode,
          MAX_IN_FLIGHT_PER_ENDPOINT,
        ],
      );
      if (row) return toClaimed(row, token);
      return this.whyNotClaimed(tx, id, endpoint.live, mode, now);
    });
  }

  private async whyNotClaimed(
    tx: Sql,
    id: string,
    endpointLive: boolean,
    mode: 'first' | 'due',
    now: Date,
  ): Promise<AttemptOutcome> {
    const [d] = await tx.query<{
      status: string;
      attempts: number;
      next_attempt_at: string | Date | null;
      claimed_until: string | Date | null;
    }>('select status, attempts, next_attempt_at, claimed_until from webhook_deliveries where id = $1', [id]);
    if (!d || d.status !== 'pending') return { kind: 'done' };
    const claimedUntil = asDate(d.claimed_until);
    const nextAttemptAt = asDate(d.next_attempt_at);
    if (!endpointLive) {
      await tx.query(
        `update webhook_deliveries set status = 'failed', next_attempt_at = null,
           last_error = 'endpoint disabled: nothing was sent' where id = $1 and status = 'pending'`,
        [id],
      );
      return { kind: 'done' };
    }
    if (claimedUntil && claimedUntil > now) return { kind: 'claimed' };
    if (mode === 'first' && d.attempts > 0) return { kind: 'done' };
    if (mode === 'due' && (!nextAttemptAt || nextAttemptAt > now)) {
      return { kind: 'not_due', inMs: nextAttemptAt ? nextAttemptAt.getTime() - now.getTime() : 0 };
    }
    return { kind: 'busy' };
  }

  private async send(c: Claimed, at: Date): Promise<HttpOutcome> {
    let secrets: string[];
    try {
      secrets = [this.box.open(c.secret, c.endpointPublicId)];
      if (c.previousSecret && c.previousSecretExpiresAt && c.previousSecretExpiresAt > at)
        secrets.push(this.box.open(c.previousSecret, c.endpointPublicId));
    } catch {
      // Never sent unsigned: the server's WEBHOOK_SECRET_KEY is not the one the secret was sealed with.
      return noResponse('not sent: the signing secret cannot be decrypted (was WEBHOOK_SECRET_KEY changed?)');
    }
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'askTIAN-Webhooks/1.0',
      ...signedHeaders(c.eventPublicId, at, c.body, secrets),
    };
    try {
      return await this.http.post(c.url, headers, c.body);
    } catch (err) {
      return noResponse(`not sent: ${(err as Error).message}`);
    }
  }

  /** The attempt's log row, the delivery's next state and the endpoint's health: one transaction. */
  private record(c: Claimed, at: Date, out: HttpOutcome): Promise<AttemptOutcome> {
    const now = this.clock.now();
    const code = out.statusCode;
    const ok = code !== null && code >= 200 && code < 300;
    const gone = code === 410;
    const error = ok ? null : (out.error ?? statusError(code));
    return this.db.transaction(async (tx) => {
      await tx.query(
        `insert into webhook_attempts (delivery_id, attempt, attempted_at, status_code, latency_ms, error, response_body)
         values ($1, $2, $3, $4, $5, $6, $7)`,
        [c.id, c.attempt, at, code, out.latencyMs, error, out.responseBody],
      );
      const [endpoint] = await tx.query<{ enabled: boolean; failing_since: string | Date | null }>(
        ok
          ? 'update webhook_endpoints set failing_since = null where id = $1 returning enabled, failing_since'
          : `update webhook_endpoints set failing_since = coalesce(failing_since, $2)
             where id = $1 returning enabled and deleted_at is null as enabled, failing_since`,
        ok ? [c.endpointId] : [c.endpointId, at],
      );
      const honoured = code === 429 || code === 503 ? parseRetryAfter(out.retryAfter, now) : undefined;
      const delay =
        ok || gone || !endpoint?.enabled
          ? undefined
          : retryDelayMs(c.attempt, this.random, honoured, this.retryDelaysMs);
      const status = ok ? 'succeeded' : delay === undefined ? 'failed' : 'pending';
      const [mine] = await tx.query(
        `update webhook_deliveries set status = $3, attempts = $4, last_status_code = $5, last_error = $6,
           last_attempt_at = $7, next_attempt_at = $8, delivered_at = $9, claim_token = null, claimed_until = null
         where id = $1 and claim_token = $2 returning id`,
        [
          c.id,
          c.token,
          status,
          c.attempt,
          code,
          error,
          at,
          delay === undefined ? null : new Date(now.getTime() + delay),
          ok ? now : null,
        ],
      );
      let disabled = false;
      const failingSince = asDate(endpoint?.failing_since ?? null);
      if (!ok && endpoint?.enabled) {
        if (gone) {
          disabled = await disableEndpoint(
            tx,
            c.endpointId,
            'gone',
            `Answered 410 Gone at ${at.toISOString()}.`,
            now,
          );
        } else if (failingSince && now.getTime() - failingSince.getTime() >= DISABLE_AFTER_FAILING_MS) {
          disabled = await disableEndpoint(
            tx,
            c.endpointId,
            'failing',
            `Every attempt since ${failingSince.toISOString()} failed (5 days); the last: ${error}.`,
            now,
          );
        }
      }
      // Our claim lapsed and another worker took over: the attempt is logged, its outcome is theirs.
      if (!mine) return { kind: 'claimed' } as const;
      if (status === 'pending' && !disabled && delay !== undefined) {
        await queueDeliveryJob(tx, c.id, delay);
        return { kind: 'retrying' } as const;
      }
      return { kind: status === 'succeeded' ? 'succeeded' : 'failed' } as const;
    });
  }
}

function toClaimed(r: ClaimRow, token: string): Claimed {
  return {
    id: r.id,
    attempt: r.attempts + 1,
    token,
    endpointId: r.endpoint_id,
    endpointPublicId: r.endpoint_public_id,
    url: r.url,
    secret: r.secret_encrypted,
    previousSecret: r.previous_secret_encrypted,
    previousSecretExpiresAt: asDate(r.previous_secret_expires_at),
    eventPublicId: r.event_public_id,
    eventCreatedAt: new Date(r.event_created_at),
    body: r.body,
  };
}

const noResponse = (error: string): HttpOutcome => ({
  statusCode: null,
  latencyMs: 0,
  error,
  responseBody: null,
  retryAfter: undefined,
});

function statusError(code: number | null): string {
  if (code === null) return 'no response';
  if (code >= 300 && code < 400) return `HTTP ${code}: redirects are not followed`;
  if (code === 410) return 'HTTP 410 Gone: the endpoint is disabled';
  return `HTTP ${code}`;
}
