import { type Client, createClient } from '../../generated/sdk/client/index.js';
import { type Config, loadConfig } from '../../src/config.js';
import { Database } from '../../src/db/database.js';
import { PartnerSchema } from '../../src/db/entities.js';
import { drainJobs } from '../../src/jobs/runner.js';
import { buildTasks, scanDue } from '../../src/jobs/tasks.js';
import { ManualClock } from '../../src/lib/clock.js';
import { mintPair } from '../../src/oauth2/tokens.js';
import type { DestinationStream } from '../../src/observability/logger.js';
import { createPartner, type NewPartner } from '../../src/partners/partners.js';
import { type Running, startServer } from '../../src/server.js';
import { createUser, type NewUser } from '../../src/users/users.js';
import { createTestDatabase, type TestDatabase } from './pg.js';
import { legacyHeaders, type PrivySignOptions, privyApp } from './privy.js';

export const PRIVY_APP_ID = 'test-privy-app';

export type TestServer = Running & {
  db: Database;
  dbKind: TestDatabase['kind'];
  clock: ManualClock;
  /** Signs a Privy session token with the app's test key (or another key, to forge one). */
  privyToken(privyId: string, opts?: Omit<PrivySignOptions, 'now'>): Promise<string>;
  /** The legacy flow's headers (API key, Privy id, a fresh session token) for this partner and user. */
  legacyHeaders(apiKey: string, privyId: string): Promise<Record<string, string>>;
  partner(
    input?: Partial<NewPartner>,
  ): Promise<{ id: number; clientId: string; clientSecret: string; name: string }>;
  user(input?: NewUser & { points?: number }): Promise<{ id: number; privyId: string }>;
  /** A real access + refresh token pair for (partner, user), minted as the token endpoint does. */
  tokens(
    partnerId: number,
    userId: number,
    scope: string,
  ): Promise<{ accessToken: string; refreshToken: string }>;
  /**
   * A user's balance with the counts of their ledger rows (n) and idempotency keys (k): what a refused
   * request must leave exactly as it was.
   */
  moneyState(userId: number): Promise<{ balance: number; n: string; k: string } | undefined>;
  /** Runs every background job that is due now, until none is left. */
  drainJobs(): Promise<void>;
  /** What the every-minute tick does at the clock's now (queue what fell due), then drainJobs. */
  runDue(): Promise<void>;
  /** A generated-SDK client acting for this partner in the legacy flow for this user. */
  legacyClient(apiKey: string, privyId: string): Promise<Client>;
  client(headers?: Record<string, string>): Client;
  /**
   * A process restart: stops this server (HTTP, jobs, in-process work) and starts a new one on the
   * same database and clock. `url`, `services`, `server` and `app` then name the new one.
   */
  restart(): Promise<void>;
  stop(): Promise<void>;
};

let seq = 0;

/** Starts the real server on 127.0.0.1:0 over a fresh database; everything is torn down by stop(). */
export type TestServerOptions = {
  /** Where the server's log lines go (e.g. captureLogs()); default stdout, at LOG_LEVEL warn. */
  logDestination?: DestinationStream;
};

export async function startTestServer(
  overrides: Partial<Record<string, string>> = {},
  opts: TestServerOptions = {},
): Promise<TestServer> {
  const privy = await privyApp(PRIVY_APP_ID);
  const testDb = await createTestDatabase();
  const config: Config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    NODE_ENV: 'test',
    ...privy.env,
    ...(testDb.url ? { DATABASE_URL: testDb.url } : {}),
    DATA_DIR: 'memory://',
    // Request lines would drown the test output; warnings and errors still show.
    LOG_LEVEL: 'warn',
    ...overrides,
  });
  const db = await Database.open({ url: config.databaseUrl, dataDir: config.dataDir, poolMax: 30 });
  const clock = new ManualClock(new Date());
  // Jobs run when a test drains them (no background worker), so every test controls when work happens.
  let running = await startServer(config, { clock, db, worker: false, logDestination: opts.logDestination });

  // Sessions are issued on the test's clock, which is the one the server verifies them against.
  const privyToken: TestServer['privyToken'] = (privyId, opts = {}) =>
    privy.sign(privyId, { ...opts, now: Math.floor(clock.now().getTime() / 1000) });
  const legacy = async (apiKey: string, privyId: string) =>
    legacyHeaders(apiKey, privyId, await privyToken(privyId));

  const client = (headers: Record<string, string> = {}) => createClient({ baseUrl: running.url, headers });

  const self: TestServer = {
    ...running,
    db,
    dbKind: testDb.kind,
    clock,
    privyToken,
    legacyHeaders: legacy,
    client,
    async partner(input = {}) {
      const { partner, clientSecret } = await db.transaction((tx) =>
        createPartner(tx, {
          name: input.name ?? `Partner ${++seq}`,
          redirectUris: input.redirectUris ?? ['https://partner.test/callback'],
          allowedScopes: input.allowedScopes ?? ['deduct', 'balance', 'subscriptions'],
          ...(input.requirePkce !== undefined ? { requirePkce: input.requirePkce } : {}),
          ...(input.refreshGraceSeconds !== undefined
            ? { refreshGraceSeconds: input.refreshGraceSeconds }
            : {}),
        }),
      );
      return { id: partner.id, clientId: partner.clientId, clientSecret, name: partner.name };
    },
    async user(input = {}) {
      const privyId = input.privyId ?? `did:privy:test${process.pid}x${++seq}`;
      const u = await db.transaction((tx) => createUser(tx, { ...input, privyId }));
      return { id: u.id, privyId };
    },
    async tokens(partnerId, userId, scope) {
      const minted = await db.transaction(async (tx) =>
        mintPair(tx, {
          partner: await tx.em.findOneOrFail(PartnerSchema, { id: partnerId }),
          userId,
          scope,
          grantedScope: scope,
          codeId: null,
          parentId: null,
          now: clock.now(),
        }),
      );
      return { accessToken: minted.access_token, refreshToken: minted.refresh_token };
    },
    async moneyState(userId) {
      const [row] = await db.query<{ balance: number; n: string; k: string }>(
        `select balance, (select count(*) from ledger_entries where user_id = $1) as n,
                (select count(*) from idempotency_keys where user_id = $1) as k from users where id = $1`,
        [userId],
      );
      return row;
    },
    drainJobs: () => drainJobs(running.services.jobsPool, buildTasks(running.services), running.services.log),
    async restart() {
      await running.close();
      running = await startServer(config, { clock, db, worker: false, logDestination: opts.logDestination });
      Object.assign(self, running);
    },
    async runDue() {
      await scanDue(running.services);
      await drainJobs(running.services.jobsPool, buildTasks(running.services), running.services.log);
    },
    async legacyClient(apiKey, privyId) {
      return client(await legacy(apiKey, privyId));
    },
    async stop() {
      await running.close();
      await db.close();
      await testDb.drop();
    },
  };
  return self;
}
