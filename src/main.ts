import { type Config, ConfigError, loadConfig } from './config.js';
import { EmbeddedDatabaseInUse } from './db/embedded.js';
import { type Running, startServer } from './server.js';

/** `npm start`: config -> container -> HTTP server + job runner in one process; one shutdown for both. */
let config: Config;
let running: Running;
try {
  config = loadConfig();
  running = await startServer(config, { worker: config.runJobs });
} catch (err) {
  // A bad setting, or another process owning the embedded database: one clear line, not a stack trace.
  if (!(err instanceof EmbeddedDatabaseInUse || err instanceof ConfigError)) throw err;
  console.error(`TIAN Points cannot start: ${err.message}`);
  process.exit(1);
}
const where =
  running.services.db.kind === 'embedded'
    ? `embedded PostgreSQL (PGlite) in ${config.dataDir}`
    : 'PostgreSQL at DATABASE_URL';
const jobs = config.runJobs ? 'jobs run in this process' : 'RUN_JOBS=false: jobs run in `npm run worker`';
const { log } = running.services;
// The URL is followed by a space: tools that wait for this line read it with /listening on (http:\/\/\S+)/.
log.info({ url: running.url }, `TIAN Points listening on ${running.url} (database: ${where}; ${jobs})`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, async () => {
    // A second signal, or the deadline, exits at once.
    if (stopping) process.exit(1);
    stopping = true;
    log.info(
      `${signal}: finishing in-flight requests and running jobs (up to ${config.shutdownTimeoutMs} ms)`,
    );
    setTimeout(() => {
      log.error('shutdown deadline passed: exiting with in-flight work abandoned');
      process.exit(1);
    }, config.shutdownTimeoutMs + 2000).unref();
    await running.close();
    log.info('stopped');
    process.exit(0);
  });
}
