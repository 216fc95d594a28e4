import type { Services } from '../container.js';
import { purgeExpired } from '../housekeeping.js';
import type { Tasks } from './runner.js';

/**
 * Finds the time-based work that has fallen due by the injected clock (retry delays, renewals,
 * expiry notices) and queues a job for each item, with a job key so a re-run never duplicates one.
 * Runs every minute; tests call it after moving the clock. One line per feature.
 */
export async function scanDue(s: Services): Promise<void> {
  const scanners: ((s: Services, now: Date) => Promise<void>)[] = [];
  const now = s.clock.now();
  for (const scan of scanners) await scan(s, now);
}

/**
 * Every background task by name: what `addJob` may name and what the runner runs. One line per
 * task; each lives in its feature's folder.
 */
export function buildTasks(s: Services): Tasks {
  return {
    /** Deletes expired wallet sessions, token pairs and authorization codes. */
    purge: () => purgeExpired(s),
    /** Queues what has fallen due (see scanDue). */
    tick: () => scanDue(s),
  };
}

/** Periodic tasks (graphile-worker crontab: minute hour day month weekday task). */
export const CRONTAB = ['* * * * * tick', '*/10 * * * * purge'].join('\n');
