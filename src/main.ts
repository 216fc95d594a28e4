import { loadConfig } from './config.js';
import { startServer } from './server.js';

const config = loadConfig();
const running = await startServer(config);
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
