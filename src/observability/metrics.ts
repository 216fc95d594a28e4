import type pg from 'pg';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Database } from '../db/database.js';

const JOB_STATES = ['ready', 'scheduled', 'locked', 'failed'] as const;

/** What a scrape reads at that moment (job queue depth, connection pools). */
export type MetricsSources = {
  db: Database;
  jobsPool: pg.Pool;
};

/**
 * The Prometheus metrics of one server instance: its own registry (tests run many servers in one
 * process), built in the container. Counters are moved by the code that knows the outcome; gauges
 * are read from the database and the pools when /metrics is scraped.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly requestDuration = new Histogram({
    name: 'tian_http_request_duration_seconds',
    help: 'API request latency, by operationId (or "page" / "unmatched") and HTTP status.',
    labelNames: ['operation', 'status'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  readonly deducts = new Counter({
    name: 'tian_points_deducts_total',
    help: 'Deducts applied (replays of an idempotency key not counted).',
    registers: [this.registry],
  });

  readonly pointsMoved = new Counter({
    name: 'tian_points_moved_total',
    help: 'Points moved by the points API, by kind (deduct, refund).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly tokenGrants = new Counter({
    name: 'tian_oauth_token_grants_total',
    help: 'Token endpoint requests, by grant_type and outcome ("success" or the OAuth error code).',
    labelNames: ['grant_type', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly refreshReplays = new Counter({
    name: 'tian_oauth_refresh_replays_total',
    help: 'Refresh tokens presented again after rotation (the family is revoked, RFC 9700 §4.14.2).',
    registers: [this.registry],
  });

  readonly webhookDeliveries = new Counter({
    name: 'tian_webhook_delivery_attempts_total',
    help: 'Webhook delivery attempts, by outcome (succeeded, retrying, failed).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly webhookLag = new Histogram({
    name: 'tian_webhook_delivery_lag_seconds',
    help: 'From the event (the change it reports) to its delivery acknowledged by the endpoint.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 1800, 7200, 36000, 86400],
    registers: [this.registry],
  });

  constructor(sources: MetricsSources) {
    const { db, jobsPool } = sources;
    new Gauge({
      name: 'tian_jobs_queued',
      help: 'Background jobs in the queue (graphile_worker), by state: ready (due), scheduled (later), locked (running), failed (out of attempts).',
      labelNames: ['state'] as const,
      registers: [this.registry],
      async collect() {
        // During a database outage the scrape still answers (pools, counters); this gauge keeps its last value.
        const rows = await db
          .query<Record<(typeof JOB_STATES)[number], string>>(
            `select count(*) filter (where attempts >= max_attempts) as failed,
                  count(*) filter (where attempts < max_attempts and locked_at is not null) as locked,
                  count(*) filter (where attempts < max_attempts and locked_at is null and run_at <= now()) as ready,
                  count(*) filter (where attempts < max_attempts and locked_at is null and run_at > now()) as scheduled
           from graphile_worker.jobs`,
          )
          .catch(() => undefined);
        if (!rows) return;
        const [row] = rows;
        for (const state of JOB_STATES) this.set({ state }, Number(row?.[state] ?? 0));
      },
    });
    new Gauge({
      name: 'tian_db_pool_connections',
      help: 'Database pool connections, by pool (api, jobs) and state (total, idle, waiting = clients queued for one).',
      labelNames: ['pool', 'state'] as const,
      registers: [this.registry],
      async collect() {
        const pools: [string, pg.Pool | undefined][] = [
          ['api', await apiPool(db)],
          ['jobs', jobsPool],
        ];
        for (const [pool, p] of pools) {
          if (!p) continue;
          this.set({ pool, state: 'total' }, p.totalCount);
          this.set({ pool, state: 'idle' }, p.idleCount);
          this.set({ pool, state: 'waiting' }, p.waitingCount);
        }
      },
    });
  }

  /** The Prometheus text exposition of every metric, read now (this instance's and the process's). */
  scrape(): Promise<string> {
    return Registry.merge([this.registry, processMetrics()]).metrics();
  }
}

let processRegistry: Registry | undefined;

/**
 * prom-client's standard `process_*` and `nodejs_*` metrics (CPU, memory, event-loop lag, GC,
 * handles). They describe the process, not an instance, so one registry per process holds them:
 * its event-loop monitor and GC observer are set up once however many servers a process starts.
 */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** The `pg` pool under the ORM (MikroORM's PostgreSQL connection exposes it). */
async function apiPool(db: Database): Promise<pg.Pool | undefined> {
  const connection = db.orm.em.getConnection() as unknown as { getNativeClient?(): Promise<pg.Pool> };
  return connection.getNativeClient?.();
}
