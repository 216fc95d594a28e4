import { type Config, ConfigError, loadConfig } from './config.js';
import { EmbeddedDatabaseInUse } from './db/embedded.js';
import { type Running, startServer } from './server.js';

/** `npm start`: config -> container -> HTTP server + job runner in one process; one shutdown for both. */
let config: Config;
let running: Running;
try {
  config = loadConfig();
  running = await startServer(config);
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
console.log(`TIAN Points listening on ${running.url} (database: ${where}; jobs run in this process)`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, async () => {
    // A second signal, or the deadline, exits at once.
    if (stopping) process.exit(1);
    stopping = true;
    console.log(
      `${signal}: finishing in-flight requests and running jobs (up to ${config.shutdownTimeoutMs} ms)`,
    );
    setTimeout(() => process.exit(1), config.shutdownTimeoutMs + 2000).unref();
    await running.close();
    process.exit(0);
  });
}
