import type { Services } from './container.js';
import { purgeExpiredCounters } from './http/rate-limits.js';
import { purgeExpiredCodes, purgeExpiredTokens } from './oauth2/codes.js';
import { purgeExpiredSessions } from './web/shared/sessions.js';

/** Deletes expired wallet sessions, token pairs, authorization codes and rate-limit windows as of the clock's now. */
export async function purgeExpired(s: Pick<Services, 'db' | 'clock'>): Promise<void> {
  const now = s.clock.now();
  await purgeExpiredSessions(s.db, now);
  await purgeExpiredCounters(s.db, now);
  // Tokens first: a code stays while tokens minted from it remain.
  await s.db.transaction(async (tx) => {
    await purgeExpiredTokens(tx, now);
    await purgeExpiredCodes(tx, now);
  });
}
