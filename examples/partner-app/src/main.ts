/** `npm start` in examples/partner-app: the example partner server, configured by environment variables. */
import { startPartnerApp } from './app.js';
import { loadConfig } from './config.js';

const app = await startPartnerApp(loadConfig(process.env));
console.log(`partner app listening on ${app.url}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void app.close().then(() => process.exit(0));
  });
}
