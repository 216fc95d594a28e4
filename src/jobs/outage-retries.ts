import { RETRYABLE_ERROR_CODES } from 'graphile-worker/dist/lib.js';

/**
 * graphile-worker marks a finished job complete (or failed) in a statement of its own, retried only
 * on the error codes it lists (serialization failures, 57P03, EHOSTUNREACH, ETIMEDOUT); anything else
 * rejects a promise nobody awaits, and the unhandled rejection ends the process. A database outage
 * answers with other codes: a terminated connection (57P01/57P02), a database refusing connections
 * (55000, ALLOW_CONNECTIONS false), too many connections (53300), a refused or reset socket, class 08.
 * The reliability suite's outage killed `npm run worker` that way; with these listed, the runner
 * backs off (1 s growing to 30 s) until the database is back, and the job is marked done once.
 */
const OUTAGE_CODES = [
  '57P01',
  '57P02',
  '55000',
  '53300',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
];

export function retryJobBookkeepingThroughOutages(): void {
  for (const code of OUTAGE_CODES) RETRYABLE_ERROR_CODES[code] ??= { minDelay: 1_000, maxDelay: 30_000 };
}
