import pg from 'pg';
import type { TestServer } from './harness.js';

/**
 * A database outage for one test server, on the real PostgreSQL server: new connections to its
 * database are refused (ALLOW_CONNECTIONS false) and the open ones are terminated, as an
 * administrator or a failover would. `end()` lets connections in again.
 */
export type Outage = { end(): Promise<void>; terminateConnections(): Promise<number> };

/** A superuser connection to the server's maintenance database (never the test server's own). */
async function admin(server: TestServer): Promise<{ client: pg.Client; database: string }> {
  const url = server.services.config.databaseUrl;
  if (!url) throw new Error('an outage needs the real PostgreSQL server (PGlite is one process)');
  const parsed = new URL(url);
  const database = decodeURIComponent(parsed.pathname.slice(1));
  parsed.pathname = '/postgres';
  const client = new pg.Client({ connectionString: parsed.toString() });
  await client.connect();
  return { client, database };
}

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** Terminates every connection to the server's database (the server's pools lose them all). */
export async function terminateConnections(server: TestServer): Promise<number> {
  const { client, database } = await admin(server);
  try {
    return await terminate(client, database);
  } finally {
    await client.end();
  }
}

async function terminate(client: pg.Client, database: string): Promise<number> {
  const res = await client.query(
    'select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
    [database],
  );
  return res.rowCount ?? 0;
}

export async function startOutage(server: TestServer): Promise<Outage> {
  return (await prepareOutage(server)).start();
}

/**
 * The administrator connection an outage needs, opened now (when the database server still has a
 * connection to spare), and `start` to begin the outage on it later, in the middle of a load.
 */
export async function prepareOutage(server: TestServer): Promise<{ start(): Promise<Outage> }> {
  const { client, database } = await admin(server);
  return {
    async start() {
      await client.query(`alter database ${ident(database)} with allow_connections false`);
      await terminate(client, database);
      return {
        terminateConnections: () => terminate(client, database),
        async end() {
          await client.query(`alter database ${ident(database)} with allow_connections true`);
          await client.end();
        },
      };
    },
  };
}
