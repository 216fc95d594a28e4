import { loadConfig } from './config.js';
import { EmbeddedDatabaseInUse } from './db/embedded.js';
import { type Running, startServer } from './server.js';

const config = loadConfig();
let running: Running;
try {
  running = await startServer(config);
} catch (err) {
  // Another process owns the embedded database: one clear line, not a stack trace.
  if (!(err instanceof EmbeddedDatabaseInUse)) throw err;
  console.error(`TIAN Points cannot start: ${err.message}`);
  process.exit(1);
}
const where =
  running.services.db.kind === 'embedded'
    ? `embedded PostgreSQL (PGlite) in ${config.dataDir}`
    : 'PostgreSQL at DATABASE_URL';
console.log(`TIAN Points listening on ${running.url} (database: ${where})`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, async () => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: shutting down`);
    await running.close();
    process.exit(0);
  });
}
