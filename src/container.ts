import pg from 'pg';
import type { Config } from './config.js';
import { Database } from './db/database.js';
import type { BearerVerifier } from './http/auth.js';
import { RateLimits } from './http/rate-limits.js';
import { PrivyVerifier } from './identity/privy.js';
import { migrateJobs } from './jobs/runner.js';
import { type Clock, systemClock } from './lib/clock.js';
import { type Mailer, smtpMailer } from './mail/mailer.js';
import { NotificationsService } from './notifications/service.js';
import { OAuthService } from './oauth2/service.js';
import { PointsService } from './points/points.js';
import { SubscriptionsService } from './subscriptions/service.js';

/** Every service, built once (composition root); handlers, pages and jobs receive what they need from it. */
export type Services = {
  config: Config;
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
};

export type ContainerOptions = { clock?: Clock; db?: Database };

/** config -> database (migrated, job schema installed) -> services. */
export async function buildContainer(config: Config, opts: ContainerOptions = {}): Promise<Services> {
  const clock = opts.clock ?? systemClock;
  const db = opts.db ?? (await Database.open({ url: config.databaseUrl, dataDir: config.dataDir }));
  await db.migrate();
  const jobsPool = new pg.Pool(db.poolConfig(db.kind === 'embedded' ? 2 : config.jobConcurrency + 2));
  // An idle client that loses its connection must not crash the process; the next query reconnects.
  jobsPool.on('error', (err) => console.error('[jobs] database connection lost:', err.message));
  await migrateJobs(jobsPool);
  const oauth = new OAuthService(db, clock);
  return {
    config,
    db,
    clock,
    privy: new PrivyVerifier(config.privy, clock),
    points: new PointsService(db, clock),
    subscriptions: new SubscriptionsService(db, clock),
    oauth,
    bearer: oauth,
    limits: new RateLimits({
      perMinute: config.rateLimitPerMinute,
      authFailuresPerMinute: config.authRateLimitPerMinute,
      clock,
    }),
    jobsPool,
    notifications: new NotificationsService(db, clock),
    mailer: smtpMailer(config),
  };
}

/** Releases what the container opened (the database only when it opened it). */
export async function closeContainer(s: Services, opts: ContainerOptions = {}): Promise<void> {
  await s.jobsPool.end();
  s.mailer?.close();
  if (!opts.db) await s.db.close();
}
