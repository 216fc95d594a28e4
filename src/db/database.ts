import { Migrator } from '@mikro-orm/migrations';
import { type EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { CompiledQuery } from 'kysely';
import type pg from 'pg';
import { type EmbeddedPostgres, type EmbeddedRole, startEmbeddedPostgres } from './embedded.js';
import { entities } from './entities.js';
import { migrationsList } from './migrations/index.js';
// Side effect: a transaction whose connection died releases it (see the module).
import './dead-connection-rollback.js';

/** The one way services reach SQL: inside a transaction, or as a single autocommit statement. */
export interface Sql {
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** The MikroORM entity manager bound to the same connection/transaction. */
  readonly em: EntityManager;
}

export type DatabaseOptions = {
  /** A postgres:// URL, or undefined for the embedded PGlite in `dataDir`. */
  url: string | undefined;
  dataDir: string;
  poolMax?: number;
  debug?: boolean;
  /**
   * Embedded only. `server` (default) owns the data directory and fails if another live process does;
   * `cli` goes through a running server's socket when there is one, else owns the directory itself.
   */
  embeddedRole?: EmbeddedRole;
};

/**
 * How long a request waits for a database connection before failing with a 503: during an outage
 * new connections are refused or hang, and a request must fail fast rather than queue forever.
 */
export const CONNECT_TIMEOUT_MS = 3000;

export class Database implements Sql {
  private constructor(
    readonly orm: MikroORM,
    readonly kind: 'postgres' | 'embedded',
    private readonly embedded: EmbeddedPostgres | undefined,
    /** The ORM's own pg pool: single statements go straight to it (no Kysely, no ORM per call). */
    private readonly pool: pg.Pool,
  ) {}

  static async open(opts: DatabaseOptions): Promise<Database> {
    const embedded = opts.url ? undefined : await startEmbeddedPostgres(opts.dataDir, opts.embeddedRole);
    try {
      const orm = await MikroORM.init({
        entities,
        // The embedded database is a Unix socket: `pg` reads a `host` starting with '/' as the socket's
        // directory. (MikroORM takes host/port from a clientUrl's authority, so no ?host= URL here.)
        ...(embedded
          ? { host: embedded.socketDir, port: embedded.port, user: 'postgres', dbName: 'postgres' }
          : { clientUrl: opts.url }),
        // PGlite is a single session; a second pooled connection would only queue behind the first.
        pool: { min: 0, max: embedded ? 1 : (opts.poolMax ?? 20) },
        driverOptions: { connectionTimeoutMillis: CONNECT_TIMEOUT_MS },
        extensions: [Migrator],
        migrations: {
          migrationsList,
          transactional: true,
          allOrNothing: true,
          snapshot: false,
          silent: true,
        },
        debug: opts.debug ?? false,
        allowGlobalContext: false,
        discovery: { checkDuplicateTableNames: true },
      });
      const connection = orm.em.getConnection() as unknown as { getNativeClient(): Promise<pg.Pool> };
      const pool = await connection.getNativeClient();
      return new Database(orm, embedded ? 'embedded' : 'postgres', embedded, pool);
    } catch (err) {
      await embedded?.stop();
      throw err;
    }
  }

  get em(): EntityManager {
    return this.orm.em.fork();
  }

  /**
   * How a second pool (the job runner's) reaches this same database: the server's URL, or the
   * embedded database's Unix socket. On the embedded database every connection shares its one
   * session, so the job runner must never be waited on from inside one of our transactions.
   */
  poolConfig(max: number): pg.PoolConfig {
    const c = this.orm.config;
    const url = c.get('clientUrl');
    if (this.kind === 'postgres' && url)
      return { connectionString: url, max, connectionTimeoutMillis: CONNECT_TIMEOUT_MS };
    return {
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      host: c.get('host'),
      port: c.get('port'),
      user: c.get('user'),
      database: c.get('dbName'),
      max,
    };
  }

  /** Applies every committed migration not yet applied; returns their names. */
  async migrate(): Promise<string[]> {
    const done = await this.orm.migrator.up();
    return done.map((m) => m.name);
  }

  /** Names of committed migrations (src/db/migrations/index.ts) not yet recorded as applied. */
  async pendingMigrations(): Promise<string[]> {
    const pending = await this.orm.migrator.getPending();
    return pending.map((m) => m.name);
  }

  /**
   * One autocommit statement on a pooled connection: the hot path (bearer auth, balance, a whole
   * deduct) is one of these. pg's pool.query sends it as an unnamed statement with bind parameters
   * (no prepared statements: PgBouncer and the shared embedded session) and releases, or on a
   * connection error discards, the connection.
   */
  async query<T = Record<string, unknown>>(sql: string, params: readonly unknown[] = []): Promise<T[]> {
    const res = await this.pool.query(sql, params as unknown[]);
    return res.rows as T[];
  }

  /** Runs `fn` in one transaction; every statement in it goes through the same connection. */
  async transaction<T>(fn: (tx: Sql) => Promise<T>): Promise<T> {
    return this.orm.em.fork().transactional(async (em) => {
      const tx: Sql = {
        em,
        query: <R>(sql: string, params: readonly unknown[] = []) =>
          run<R>(em.getTransactionContext() as Executor, sql, params),
      };
      return fn(tx);
    });
  }

  async close(): Promise<void> {
    await this.orm.close(true);
    await this.embedded?.stop();
  }
}

type Executor = { executeQuery(q: CompiledQuery): Promise<{ rows: unknown[] }> };

/**
 * Raw SQL with server-side bind parameters ($1, $2, ...) on the ORM's own connection or transaction.
 * (MikroORM's `execute` inlines parameters into the text; we keep them as real bind parameters.)
 */
async function run<T>(executor: Executor, sql: string, params: readonly unknown[]): Promise<T[]> {
  const res = await executor.executeQuery(CompiledQuery.raw(sql, [...params]));
  return res.rows as T[];
}
