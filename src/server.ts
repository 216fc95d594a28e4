import type { Server } from 'node:http';
import type express from 'express';
import type { Config } from './config.js';
import { Database } from './db/database.js';
import { createApp } from './http/app.js';
import { buildHandlers } from './http/handlers.js';
import { RateLimits } from './http/rate-limits.js';
import type { Services } from './http/services.js';
import { PrivyVerifier } from './identity/privy.js';
import { type Clock, systemClock } from './lib/clock.js';
import { purgeExpiredCodes, purgeExpiredTokens } from './oauth2/codes.js';
import { OAuthService } from './oauth2/service.js';
import { PointsService } from './points/points.js';
import { walletPages } from './web/router.js';
import { purgeExpiredSessions } from './web/sessions.js';

export type Running = {
  app: express.Express;
  services: Services;
  server: Server;
  url: string;
  close(): Promise<void>;
};

/** Composition root: config -> database (migrated) -> services -> app. */
export async function buildServices(
  config: Config,
  opts: { clock?: Clock; db?: Database } = {},
): Promise<Services> {
  const clock = opts.clock ?? systemClock;
  const db = opts.db ?? (await Database.open({ url: config.databaseUrl, dataDir: config.dataDir }));
  await db.migrate();
  const oauth = new OAuthService(db, clock);
  return {
    config,
    db,
    clock,
    privy: new PrivyVerifier(config.privy, clock),
    points: new PointsService(db, clock),
    oauth,
    bearer: oauth,
    limits: new RateLimits({
      perMinute: config.rateLimitPerMinute,
      authFailuresPerMinute: config.authRateLimitPerMinute,
      clock,
    }),
  };
}

/** How often a running server deletes what has expired (a job runner will take this over). */
export const PURGE_INTERVAL_MS = 10 * 60 * 1000;

/** Deletes expired wallet sessions, token pairs and authorization codes as of the clock's now. */
export async function purgeExpired(s: Pick<Services, 'db' | 'clock'>): Promise<void> {
  const now = s.clock.now();
  await purgeExpiredSessions(s.db, now);
  // Tokens first: a code stays while tokens minted from it remain.
  await s.db.transaction(async (tx) => {
    await purgeExpiredTokens(tx, now);
    await purgeExpiredCodes(tx, now);
  });
}

export async function startServer(
  config: Config,
  opts: { clock?: Clock; db?: Database } = {},
): Promise<Running> {
  const services = await buildServices(config, opts);
  const app = createApp({ services, handlers: buildHandlers(services), pages: [walletPages(services)] });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.port, config.host, () => resolve(s));
    s.once('error', reject);
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  if (!config.publicUrl) services.config.publicUrl = url;
  let purging: Promise<void> | undefined;
  const purgeTimer = setInterval(() => {
    purging ??= purgeExpired(services)
      .catch((err) => console.error('[purge] deleting expired sessions, codes and tokens failed:', err))
      .finally(() => {
        purging = undefined;
      });
  }, PURGE_INTERVAL_MS).unref();
  return {
    app,
    services,
    server,
    url,
    async close() {
      clearInterval(purgeTimer);
      await purging;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      if (!opts.db) await services.db.close();
    },
  };
}
