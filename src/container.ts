import pg from 'pg';
import type { Config } from './config.js';
import { Database } from './db/database.js';
import { ReadinessProbe } from './health/readiness.js';
import { RateLimits } from './http/rate-limits.js';
import { PrivyVerifier } from './identity/privy.js';
import { tagConnectionFailures } from './jobs/outage-retries.js';
import { migrateJobs } from './jobs/runner.js';
import { type Clock, systemClock } from './lib/clock.js';
import { type Mailer, smtpMailer } from './mail/mailer.js';
import { NotificationsService } from './notifications/service.js';
import { type BearerVerifier, OAuthService } from './oauth2/service.js';
import { createLogger, type DestinationStream, type Logger } from './observability/logger.js';
import { Metrics } from './observability/metrics.js';
import { PointsService } from './points/points.js';
import { SubscriptionsService } from './subscriptions/service.js';
import { buildWebhooks } from './webhooks/build.js';
import type { WebhookDelivery } from './webhooks/delivery.js';
import type { WebhookService } from './webhooks/service.js';

/** Every service, built once (composition root); handlers, pages and jobs receive what they need from it. */
export type Services = {
  config: Config;
  /** The process's structured logger (JSON lines; see README "Operations"). */
  log: Logger;
  /** This instance's Prometheus metrics (its own registry), served at /metrics. */
  metrics: Metrics;
  db: Database;
  clock: Clock;
  privy: PrivyVerifier;
  points: PointsService;
  subscriptions: SubscriptionsService;
  oauth: OAuthService;
  bearer?: BearerVerifier;
  limits: RateLimits;
  /** The job runner's own pool on the same database (graphile-worker reads and locks jobs through it). */
  jobsPool: pg.Pool;
  /** The user's notifications (wallet settings page). */
  notifications: NotificationsService;
  /** Outgoing email; undefined when SMTP_URL is not set (email off). */
  mailer: Mailer | undefined;
  /** The partner webhook API (endpoints, secrets, delivery log). */
  webhooks: WebhookService;
  /** Sends webhook deliveries: in-process first attempts, the delivery job, the retry scanner. */
  webhookDelivery: WebhookDelivery;
  /** Readiness (/readyz): database, migrations, and the job runner when this process runs one. */
  readiness: ReadinessProbe;
};

export type ContainerOptions = {
  clock?: Clock;
  db?: Database;
  /** Where log lines go (default stdout); tests capture them in memory. */
  logDestination?: DestinationStream;
};

/** config -> database (migrated, job schema installed) -> services. */
export async function buildContainer(config: Config, opts: ContainerOptions = {}): Promise<Services> {
  const clock = opts.clock ?? systemClock;
  const log = createLogger(config, opts.logDestination);
  const db =
    opts.db ??
    (await Database.open({
      url: config.databaseUrl,
      dataDir: config.dataDir,
      poolMax: config.databasePoolMax,
    }));
  await db.migrate();
  // One more connection than jobs at once: graphile-worker keeps one for LISTEN (a wake-up hint).
  const jobsPool = new pg.Pool(db.poolConfig(jobConcurrency(config, db) + 1));
  // A client that loses its connection must not crash the process; the next query reconnects.
  const lost = (err: Error) => log.error({ err }, 'job runner: database connection lost');
  jobsPool.on('error', lost);
  jobsPool.on('connect', (client) => client.on('error', lost));
  tagConnectionFailures(jobsPool);
  await migrateJobs(jobsPool, log);
  const metrics = new Metrics({ db, jobsPool });
  const oauth = new OAuthService(db, clock, metrics);
  const { webhooks, webhookDelivery } = buildWebhooks(config, db, clock, { log, metrics });
  return {
    config,
    log,
    metrics,
    db,
    clock,
    privy: new PrivyVerifier(config.privy, clock),
    points: new PointsService(db, clock, webhookDelivery, config.webhooks.deliveredWaitMs),
    subscriptions: new SubscriptionsService(db, clock),
    oauth,
    bearer: oauth,
    limits: new RateLimits({
      perMinute: config.rateLimitPerMinute,
      authFailuresPerMinute: config.authRateLimitPerMinute,
      clock,
      db,
      syncMs: config.rateLimitSyncMs,
      log,
    }),
    jobsPool,
    notifications: new NotificationsService(db, clock),
    mailer: smtpMailer(config),
    webhooks,
    webhookDelivery,
    readiness: new ReadinessProbe(db),
  };
}

/**
 * Jobs run at once in this process. On the embedded database every connection takes turns on its
 * one session, so more than one job at a time would only queue.
 */
export function jobConcurrency(config: Config, db: Database): number {
  return db.kind === 'embedded' ? 1 : config.jobConcurrency;
}

/** Releases what the container opened (the database only when it opened it). */
export async function closeContainer(s: Services, opts: ContainerOptions = {}): Promise<void> {
  await s.webhookDelivery.close();
  await s.limits.close();
  await s.jobsPool.end();
  s.mailer?.close();
  if (!opts.db) await s.db.close();
}
