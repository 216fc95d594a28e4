import type { ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startTestServer, type TestServer } from '../test/support/harness.js';
import { type MainProcess, startMain, startWorker } from '../test/support/main-process.js';

/**
 * The processes of the reliability suite, on one fresh database of the real PostgreSQL server:
 * a control server in this process (test/support/harness.ts: it creates and drops the database,
 * seeds partners, users and tokens, and owns the injected clock), three `npm start` API processes
 * with RUN_JOBS=false, and one `npm run worker`. Every child is started and stopped here; `stopAll`
 * kills whatever is still running.
 */
export type Cluster = {
  t: TestServer;
  /** The env every child gets (the control server's database and Privy verification key). */
  env: NodeJS.ProcessEnv;
  apis: MainProcess[];
  worker: WorkerProcess | undefined;
  /** The URLs of the API processes (a killed one keeps its slot until it is restarted). */
  urls(): string[];
  /** SIGKILL API process `i`; `restartApi(i)` starts a new one in its slot. */
  killApi(i: number): Promise<void>;
  restartApi(i: number): Promise<void>;
  killWorker(): Promise<void>;
  startWorker(): Promise<void>;
  /** Queues graphile-worker's `tick` (what the every-minute cron does) for the worker to run now. */
  tick(): Promise<void>;
  stopAll(): Promise<void>;
};

export type WorkerProcess = Omit<MainProcess, 'url'>;

/** Every child process started by the suite, so an abort still kills them all. */
const children = new Set<ChildProcess>();
/** Every child's name and output, written to test-artifacts/reliability/ at the end. */
const outputs: { name: string; output: () => string }[] = [];

/** Writes each child's output to test-artifacts/reliability/<name>.log (what to read when a scenario fails). */
export function saveOutputs(): string {
  const dir = join('test-artifacts', 'reliability');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  for (const o of outputs) writeFileSync(join(dir, `${o.name}.log`), o.output());
  return dir;
}

/** Registers a child the suite started elsewhere, for `killEveryChild`. */
export function track(name: string, p: { child: ChildProcess; output: () => string }): void {
  children.add(p.child);
  outputs.push({ name: `${String(outputs.length + 1).padStart(2, '0')}-${name}`, output: p.output });
}

export function killEveryChild(): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

/** Webhook retries in seconds, not hours: a receiver that is down for the load is retried soon after. */
export const RETRY_DELAYS_MS = '1000,2000,4000,8000,15000,30000,60000';

export async function startCluster(): Promise<Cluster> {
  const t = await startTestServer({
    RATE_LIMIT_PER_MINUTE: '100000000',
    AUTH_RATE_LIMIT_PER_MINUTE: '100000000',
    // Its pool's errors during the outage are expected; the children's logs are saved.
    LOG_LEVEL: 'fatal',
  });
  if (t.dbKind !== 'postgres') {
    await t.stop();
    throw new Error('the reliability suite needs the real PostgreSQL server at 127.0.0.1:5432 (TEST_PG_URL)');
  }
  const { privy, databaseUrl } = t.services.config;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    PRIVY_APP_ID: privy.appId,
    PRIVY_VERIFICATION_KEY: privy.verificationKey,
    RATE_LIMIT_PER_MINUTE: '100000000',
    AUTH_RATE_LIMIT_PER_MINUTE: '100000000',
    WEBHOOK_TIMEOUT_MS: '2000',
    WEBHOOK_DELIVERED_WAIT_MS: '500',
    WEBHOOK_RETRY_DELAYS_MS: RETRY_DELAYS_MS,
    JOB_POLL_INTERVAL_MS: '200',
    DATABASE_POOL_MAX: '4',
    JOB_CONCURRENCY: '3',
    SHUTDOWN_TIMEOUT_MS: '5000',
    // info: the "listening on" line the start waits for is an info log.
    LOG_LEVEL: 'info',
  };
  // Within the server's max_connections (100 by default, shared with whatever else runs there):
  // 10 per API process (its 8 clients, and the first webhook attempts made after their commits), 4 + 4
  // for the worker, a few of the control server's 30 (opened lazily).
  const apiEnv = { ...env, RUN_JOBS: 'false', DATABASE_POOL_MAX: '10' };

  const startApi = (i: number) =>
    startWithRetries(`api-${i + 1}`, async () => {
      const p = await startMain(apiEnv, 120_000);
      track(`api-${i + 1}`, p);
      return p;
    });
  const apis = await Promise.all([startApi(0), startApi(1), startApi(2)]);

  const cluster: Cluster = {
    t,
    env,
    apis,
    worker: undefined,
    urls: () => cluster.apis.map((a) => a.url),
    async killApi(i) {
      const api = cluster.apis[i];
      if (!api) throw new Error(`no API process ${i}`);
      api.child.kill('SIGKILL');
      await api.exited;
    },
    async restartApi(i) {
      cluster.apis[i] = await startApi(i);
    },
    async killWorker() {
      const w = cluster.worker;
      if (!w) return;
      w.child.kill('SIGKILL');
      await w.exited;
      cluster.worker = undefined;
    },
    async startWorker() {
      cluster.worker = await startWithRetries('worker', async () => {
        const w = await startWorker(env, 120_000);
        track('worker', w);
        return w;
      });
    },
    async tick() {
      await t.db.query(`select graphile_worker.add_job('tick', '{}'::json, job_key => 'reliability-tick')`);
    },
    async stopAll() {
      const stops = [...cluster.apis.map((a) => stop(a.child, a.exited))];
      if (cluster.worker) stops.push(stop(cluster.worker.child, cluster.worker.exited));
      await Promise.all(stops);
      await t.stop();
    },
  };
  await cluster.startWorker();
  return cluster;
}

/**
 * As a supervisor would: a process that fails to start (the database server refusing connections
 * for a moment, say) is started again, up to 3 times.
 */
async function startWithRetries<T>(name: string, start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (attempt >= 3) throw err;
      console.log(
        `[reliability]   ${name} failed to start (${(err as Error).message.split('\n')[0]}); starting it again`,
      );
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
  }
}

/** SIGTERM, then SIGKILL if it has not exited within 10 s. */
export async function stop(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
