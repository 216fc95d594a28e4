import { realPostgresAvailable } from './pg.js';

/** Says once, up front, which database the suite runs on. */
export default async function setup(): Promise<void> {
  const real = await realPostgresAvailable();
  console.log(
    real
      ? `[tests] database: real PostgreSQL (${process.env.TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432'}), a fresh database per test file`
      : '[tests] database: embedded PostgreSQL (PGlite, in memory): no PostgreSQL server reachable. Multi-connection race suites are SKIPPED: PGlite is a single session, so they would prove nothing.',
  );
}
