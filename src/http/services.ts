import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import type { PrivyVerifier } from '../identity/privy.js';
import type { Clock } from '../lib/clock.js';
import type { OAuthService } from '../oauth2/service.js';
import type { PointsService } from '../points/points.js';
import type { BearerVerifier } from './auth.js';
import type { RateLimits } from './rate-limits.js';

/** Everything handlers may call; built once in the composition root (src/server.ts). */
export type Services = {
  config: Config;
  db: Database;
  clock: Clock;
  privy: PrivyVerifier;
  points: PointsService;
  oauth: OAuthService;
  bearer?: BearerVerifier;
  limits: RateLimits;
};
