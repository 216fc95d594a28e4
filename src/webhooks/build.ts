import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { WebhookDelivery } from './delivery.js';
import { WebhookHttpClient } from './http-client.js';
import { SecretBox } from './secrets.js';
import { WebhookService } from './service.js';

/** The webhook API service and the delivery engine, sharing one secret box. */
export function buildWebhooks(
  config: Config,
  db: Database,
  clock: Clock,
  observe: { log: Logger; metrics: Metrics },
): { webhooks: WebhookService; webhookDelivery: WebhookDelivery } {
  const { secretKey, timeoutMs, allowHttpLocalhost, retryDelaysMs } = config.webhooks;
  const box = new SecretBox(secretKey);
  return {
    webhooks: new WebhookService(db, clock, box, allowHttpLocalhost),
    webhookDelivery: new WebhookDelivery({
      db,
      clock,
      box,
      timeoutMs,
      retryDelaysMs,
      ...observe,
      http: new WebhookHttpClient({ timeoutMs, allowLoopback: allowHttpLocalhost }),
    }),
  };
}
