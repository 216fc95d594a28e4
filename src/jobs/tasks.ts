import type { Services } from '../container.js';
import { purgeExpired } from '../housekeeping.js';
import type { Tasks } from './runner.js';

/**
 * Every background task by name: what `addJob` may name and what the runner runs. One line per
 * task; each lives in its feature's folder.
 */
export function buildTasks(s: Services): Tasks {
  return {
    /** Deletes expired wallet sessions, token pairs and authorization codes. */
    purge: () => purgeExpired(s),
  };
}

/** Periodic tasks (graphile-worker crontab: minute hour day month weekday task). */
export const CRONTAB = ['*/10 * * * * purge'].join('\n');
