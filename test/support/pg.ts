import { randomBytes } from 'node:crypto';
import pg from 'pg';

const ADMIN_URL = process.env.TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';

let reachable: Promise<boolean> | undefined;

/** Whether the real PostgreSQL server is there (CI: always; a partner's laptop: maybe not). */
export function realPostgresAvailable(): Promise<boolean> {
  if (process.env.TEST_DB === 'embedded') return Promise.resolve(false);
  reachable ??= (async () => {
    const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 2000 });
    try {
      await client.connect();
      await client.query('select 1');
      return true;
    } catch {
      if (process.env.CI === 'true' || process.env.TEST_DB === 'postgres') {
        throw new Error(`PostgreSQL is required here but not reachable at ${ADMIN_URL}`);
      }
      return false;
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return reachable;
}

export type TestDatabase = { url: string | undefined; kind: 'postgres' | 'embedded'; drop(): Promise<void> };

/** A fresh, empty database for one test file on the real server, or an in-memory embedded one. */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (!(await realPostgresAvailable())) return { url: undefined, kind: 'embedded', drop: async () => {} };
  const name = `tian_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await adminQuery(`create database ${name}`);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    kind: 'postgres',
    drop: () => adminQuery(`drop database if exists ${name} with (force)`),
  };
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}
