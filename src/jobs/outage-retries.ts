import { RETRYABLE_ERROR_CODES } from 'graphile-worker/dist/lib.js';
import type pg from 'pg';
import { isConnectionFailure } from '../db/connection-failure.js';

/**
 * graphile-worker marks a finished job complete (or failed) in a statement of its own, retried only
 * on the error codes it lists (serialization failures, 57P03, EHOSTUNREACH, ETIMEDOUT); anything else
 * rejects a promise nobody awaits, and the unhandled rejection ends the process. A database outage
 * answers with other codes: a terminated connection (57P01/57P02), a database refusing connections
 * (55000, ALLOW_CONNECTIONS false), too many connections (53300), a refused or reset socket, class 08,
 * or no code at all ("Connection terminated unexpectedly"). The reliability suite's outage killed
 * `npm run worker` that way. With these codes listed, and codeless connection failures on the job
 * runner's connections tagged 08006 (connection_failure), the runner backs off (1 s growing to 30 s)
 * until the database is back, and the job is marked done once.
 */
const CONNECTION_FAILURE = '08006';
const OUTAGE_CODES = [
  '57P01',
  '57P02',
  '55000',
  '53300',
  '08000',
  '08001',
  '08003',
  '08004',
  CONNECTION_FAILURE,
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
];

export function retryJobBookkeepingThroughOutages(): void {
  for (const code of OUTAGE_CODES) RETRYABLE_ERROR_CODES[code] ??= { minDelay: 1_000, maxDelay: 30_000 };
}

/** A connection failure without a code (pg's "Connection terminated unexpectedly") gets 08006. */
function tagged(err: unknown): unknown {
  if (err instanceof Error && !(err as { code?: unknown }).code && isConnectionFailure(err))
    Object.assign(err, { code: CONNECTION_FAILURE });
  return err;
}

/**
 * The job runner's pool: a connection failure without a code, when connecting or on a query of one
 * of its connections, rejects tagged 08006.
 */
export function tagConnectionFailures(pool: pg.Pool): void {
  const connect = pool.connect.bind(pool) as (...args: unknown[]) => unknown;
  pool.connect = ((...args: unknown[]) => {
    const result = connect(...args);
    return result instanceof Promise ? result.catch((err: unknown) => Promise.reject(tagged(err))) : result;
  }) as typeof pool.connect;
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    client.query = ((...args: unknown[]) => {
      const result = query(...args);
      return result instanceof Promise ? result.catch((err: unknown) => Promise.reject(tagged(err))) : result;
    }) as typeof client.query;
  });
}
