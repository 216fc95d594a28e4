import { PostgresDriver } from 'kysely';
import { isConnectionFailure } from './connection-failure.js';

/**
 * Kysely 0.29 (under MikroORM) releases a transaction's pooled connection only after its ROLLBACK
 * succeeds. When the database terminated the connection mid-transaction (failover, restart,
 * pg_terminate_backend), the ROLLBACK fails too, and the dead client stays checked out of the pool
 * for good: a few such outages exhaust the pool and every later request waits for a connection that
 * never comes. A connection that is gone has nothing left to roll back (PostgreSQL aborts the
 * transaction when its session ends), so the failed ROLLBACK counts as done; the connection is then
 * released, and pg's pool drops it because it is no longer queryable.
 *
 * The same happens one step earlier: a BEGIN on a connection that died keeps it checked out (the
 * controlled transaction that would release it is never created). There the dead connection is
 * released before the error goes up. (MikroORM only opens transactions this way; Kysely's own
 * `transaction()` releases in a `finally` and is not used here.)
 */
const begin = PostgresDriver.prototype.beginTransaction;
PostgresDriver.prototype.beginTransaction = async function beginOrRelease(connection, settings) {
  try {
    await begin.call(this, connection, settings);
  } catch (err) {
    if (isConnectionFailure(err))
      await this.releaseConnection(connection as Parameters<PostgresDriver['releaseConnection']>[0]);
    throw err;
  }
};

const rollback = PostgresDriver.prototype.rollbackTransaction;
PostgresDriver.prototype.rollbackTransaction = async function rollbackUnlessGone(connection) {
  try {
    await rollback.call(this, connection);
  } catch (err) {
    if (!isConnectionFailure(err)) throw err;
  }
};
