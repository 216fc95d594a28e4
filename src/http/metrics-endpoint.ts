import { timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import express from 'express';
import type { Config } from '../config.js';
import type { Metrics } from '../observability/metrics.js';

/**
 * `GET /metrics`, Prometheus text format, on the main port. With METRICS_TOKEN set it needs
 * `Authorization: Bearer <METRICS_TOKEN>` (Prometheus: `authorization: { credentials: ... }`);
 * without one it is open outside production and not served at all in production, so the numbers
 * of a production server are never public by default. It is not part of the partner API
 * (openapi.yaml): it is mounted before the API, like the pages.
 */
export function metricsEndpoint(config: Pick<Config, 'metricsToken' | 'production'>, metrics: Metrics) {
  const router = express.Router();
  const token = config.metricsToken;
  if (!token && config.production) return router;
  const expected = token ? Buffer.from(`Bearer ${token}`) : undefined;
  router.get('/metrics', async (req, res, next) => {
    if (expected && !sameSecret(req.get('authorization'), expected)) {
      res
        .status(401)
        .set('WWW-Authenticate', 'Bearer realm="metrics"')
        .type('text/plain')
        .send('unauthorized\n');
      return;
    }
    try {
      const text = await metrics.scrape();
      res.status(200).type(metrics.registry.contentType).send(text);
    } catch (err) {
      next(err);
    }
  });
  return router;
}

/**
 * `npm run worker`'s own /metrics (it serves no API): a listener on HOST:METRICS_PORT answering
 * /metrics under the same rules, and 404 to anything else.
 */
export async function serveMetrics(
  config: Pick<Config, 'metricsToken' | 'production' | 'host'> & { metricsPort: number },
  metrics: Metrics,
): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  app.disable('x-powered-by');
  app.use(metricsEndpoint(config, metrics));
  app.use((_req, res) => void res.status(404).type('text/plain').send('not found\n'));
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.metricsPort, config.host, () => resolve(s));
    s.once('error', reject);
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : config.metricsPort;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  return {
    url: `http://${host}:${port}/metrics`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function sameSecret(given: string | undefined, expected: Buffer): boolean {
  const b = Buffer.from(given ?? '');
  return b.length === expected.length && timingSafeEqual(b, expected);
}
