import { Logger, type Runner, run, runMigrations, runOnce, type Task, type TaskList } from 'graphile-worker';
import type pg from 'pg';
import type { Sql } from '../db/database.js';
import { type Logger as AppLogger, scrubSecrets } from '../observability/logger.js';
import { retryJobBookkeepingThroughOutages } from './outage-retries.js';

/**
 * Background work lives in PostgreSQL (graphile-worker). A job is added with graphile-worker's own
 * `add_job` SQL function on the caller's transaction, so the job row commits or rolls back with the
 * change it reports: the job row IS the outbox row. Jobs run at least once; every task is idempotent.
 * Time-based work (retry delays, renewals, expiry notices) is decided by our own tables and the
 * injected clock; graphile-worker only runs what is due now.
 */

export type JobOptions = {
  /** At most one pending job per key: adding again replaces it instead of duplicating it. */
  jobKey?: string;
  /** Jobs in one queue run one at a time, in order. */
  queue?: string;
  /** How often graphile-worker retries a task that threw (infrastructure failures). */
  maxAttempts?: number;
  /**
   * Run no sooner than this many milliseconds from now (database time). Only a wake-up hint: what is
   * due is still decided by our tables and the injected clock, and the tick re-queues it if needed.
   */
  delayMs?: number;
};

/** Adds a job in the caller's transaction. */
export async function addJob(
  tx: Sql,
  task: string,
  payload: Record<string, unknown>,
  opts: JobOptions = {},
): Promise<void> {
  await tx.query(
    `select graphile_worker.add_job($1, $2::json, queue_name => $3, max_attempts => $4, job_key => $5,
       run_at => now() + $6::integer * interval '1 millisecond')`,
    [
      task,
      JSON.stringify(payload),
      opts.queue ?? null,
      opts.maxAttempts ?? 10,
      opts.jobKey ?? null,
      Math.max(0, Math.round(opts.delayMs ?? 0)),
    ],
  );
}

export type Tasks = Record<string, (payload: unknown) => Promise<void>>;

export type RunnerOptions = {
  pgPool: pg.Pool;
  tasks: Tasks;
  /** Jobs run at once in this process. */
  concurrency: number;
  /** How often to look for new jobs when no notification arrives (ms). */
  pollInterval: number;
  /** Periodic tasks, in graphile-worker's crontab format (e.g. `* * * * * tick`). */
  crontab?: string;
  /** The process's logger (graphile-worker's warnings and errors go there). */
  log?: AppLogger;
};

const taskList = (tasks: Tasks): TaskList =>
  Object.fromEntries(
    Object.entries(tasks).map(([name, fn]): [string, Task] => [name, (payload) => fn(payload)]),
  );

/**
 * graphile-worker logs every job at info level; keep its warnings and errors only, as JSON lines of
 * the process's logger (or nowhere, when none is given: tests draining jobs themselves).
 */
function jobsLogger(log: AppLogger | undefined): Logger {
  return new Logger((scope) => (level, message) => {
    if (!log) return;
    const fields = { component: 'jobs', task: scope.taskIdentifier, jobId: scope.jobId };
    // A job's error may echo a partner URL or a response that carries a secret.
    if (level === 'error') log.error(fields, scrubSecrets(message));
    else if (level === 'warning') log.warn(fields, scrubSecrets(message));
  });
}

/** Installs or upgrades graphile-worker's schema (before any transaction calls add_job). */
export async function migrateJobs(pgPool: pg.Pool, log?: AppLogger): Promise<void> {
  await runMigrations({ pgPool, logger: jobsLogger(log) });
}

/** The job runner of this process: started with the server (or alone by `npm run worker`). */
export class JobRunner {
  private stopped = false;

  private constructor(private readonly runner: Runner) {
    // The runner's promise settles when it stops for any reason (asked to, or a fatal error).
    const done = () => {
      this.stopped = true;
    };
    runner.promise.then(done, done);
  }

  /** Still taking jobs (readiness). */
  get running(): boolean {
    return !this.stopped;
  }

  static async start(opts: RunnerOptions): Promise<JobRunner> {
    retryJobBookkeepingThroughOutages();
    const runner = await run({
      pgPool: opts.pgPool,
      concurrency: opts.concurrency,
      pollInterval: opts.pollInterval,
      noHandleSignals: true,
      // Named prepared statements are per session: PgBouncer's transaction mode and the embedded
      // database (one session shared by every connection) both need them off.
      noPreparedStatements: true,
      taskList: taskList(opts.tasks),
      ...(opts.crontab ? { crontab: opts.crontab } : {}),
      logger: jobsLogger(opts.log),
    });
    return new JobRunner(runner);
  }

  /**
   * Stops taking jobs and waits for running ones up to `deadlineMs`; past it, running jobs are
   * abandoned (their rows are unlocked after graphile-worker's lock timeout and run again: at least once).
   */
  async stop(deadlineMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), deadlineMs);
    });
    const outcome = await Promise.race([this.runner.stop().then(() => 'stopped' as const), deadline]);
    clearTimeout(timer);
    if (outcome === 'late') await this.runner.kill('shutdown deadline passed').catch(() => {});
  }
}

/** Runs every job that is runnable now, then returns (tests, and `npm run worker -- --once`). */
export async function drainJobs(pgPool: pg.Pool, tasks: Tasks, log?: AppLogger): Promise<void> {
  await runOnce({ pgPool, taskList: taskList(tasks), logger: jobsLogger(log), noPreparedStatements: true });
}
