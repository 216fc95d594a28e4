import type { Services } from '../container.js';
import { notImplemented } from '../errors/index.js';
import { oauthHandlers } from '../oauth2/handlers.js';
import { partnerHandlers } from '../partners/handlers.js';
import { pointsHandlers } from '../points/handlers.js';
import { subscriptionHandlers } from '../subscriptions/handlers.js';
import { webhookHandlers } from '../webhooks/handlers.js';
import type { Handler, Handlers, OperationId } from './operations.js';

/** Operations specified for later work: they answer 501 problem+json until implemented. */
const pending =
  <K extends OperationId>(id: K): Handler<K> =>
  async () => {
    throw notImplemented(id);
  };

/** The whole API surface: operationId -> handler. */
export function buildHandlers(s: Services, extra: Partial<Handlers> = {}): Handlers {
  return {
    ...pointsHandlers(s.points),
    ...partnerHandlers(s.db, s.clock),
    ...subscriptionHandlers(s.subscriptions),
    ...webhookHandlers(s.webhooks),
    ...oauthHandlers(s),
    ...extra,
  };
}
