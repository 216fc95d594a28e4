import { type Config, ConfigError, loadConfig } from './config.js';
import { buildContainer, closeContainer } from './container.js';
import { serveMetrics } from './http/metrics-endpoint.js';
import { drainJobs } from './jobs/runner.js';
import { buildTasks } from './jobs/tasks.js';
import { startRunner } from './server.js';

/**
 * `npm run worker`: the job runner alone (no API), for running workers apart from API replicas;
 * with METRICS_PORT it serves its own /metrics (its webhook attempts, the queue, its pools).
 * `npm run worker -- --once` runs every job that is due now and exits.
 */
let config: Config;
try {
  config = loadConfig();
} catch (err) {
  // A bad setting: one clear line naming it, not a stack trace (as `npm start` does).
  if (!(err instanceof ConfigError)) throw err;
  console.error(`TIAN Points worker cannot start: ${err.message}`);
  process.exit(1);
}
if (!config.databaseUrl) {
  // The embedded database has one owner process, and `npm start` already runs the jobs in it.
  console.error(
    'TIAN Points worker: set DATABASE_URL (on the embedded database `npm start` runs the jobs itself)',
  );
  process.exit(1);
}
const services = await buildContainer(config);
const { log } = services;
if (process.argv.includes('--once')) {
  await drainJobs(services.jobsPool, buildTasks(services), log);
  await closeContainer(services);
} else {
  const runner = await startRunner(services);
  const { metricsPort } = config;
  const metrics =
    metricsPort === undefined ? undefined : await serveMetrics({ ...config, metricsPort }, services.metrics);
  const scrape = metrics ? `; metrics at ${metrics.url}` : '';
  log.info(`TIAN Points worker running (concurrency ${config.jobConcurrency}${scrape})`);
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, async () => {
      if (stopping) process.exit(1);
      stopping = true;
      log.info(`${signal}: finishing running jobs (up to ${config.shutdownTimeoutMs} ms)`);
      await Promise.all([runner.stop(config.shutdownTimeoutMs), metrics?.close()]);
      await closeContainer(services);
      process.exit(0);
    });
  }
}
