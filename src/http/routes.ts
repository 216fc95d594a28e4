import type { Services } from '../container.js';
import { healthHandlers } from '../health/handlers.js';
import { oauthHandlers } from '../oauth2/handlers.js';
import { partnerHandlers } from '../partners/handlers.js';
import { pointsHandlers } from '../points/handlers.js';
import { subscriptionHandlers } from '../subscriptions/handlers.js';
import { webhookHandlers } from '../webhooks/handlers.js';
import type { BearerCheckedHandlers, Handlers } from './operations.js';

/**
 * THE table of the API: every operationId of openapi.yaml on its own line, with its handler. An
 * operation missing here, or a handler whose input or reply does not match its generated types,
 * fails the type check.
 */
export function routes(s: Services, overrides: Partial<Handlers> = {}): Handlers {
  const points = pointsHandlers(s.points, s.metrics);
  const subscriptions = subscriptionHandlers(s.subscriptions);
  const oauth = oauthHandlers(s);
  const partner = partnerHandlers(s.db, s.clock);
  const webhooks = webhookHandlers(s.webhooks);
  const health = healthHandlers(s.readiness);
  return {
    // Points (user-level: legacy flow or bearer token)
    getBalance: points.getBalance,
    deductPoints: points.deductPoints,
    listTransactions: points.listTransactions,
    getTransaction: points.getTransaction,
    refundTransaction: points.refundTransaction,
    // Subscriptions (user-level)
    createSubscription: subscriptions.createSubscription,
    listSubscriptions: subscriptions.listSubscriptions,
    getSubscription: subscriptions.getSubscription,
    cancelSubscription: subscriptions.cancelSubscription,
    // OAuth 2.0 authorization server
    authorize: oauth.authorize,
    createToken: oauth.createToken,
    revokeToken: oauth.revokeToken,
    introspectToken: oauth.introspectToken,
    getTokenInfo: oauth.getTokenInfo,
    getAuthorizationServerMetadata: oauth.getAuthorizationServerMetadata,
    // Partner account (API key)
    getPartner: partner.getPartner,
    rotateClientSecret: partner.rotateClientSecret,
    // Webhooks (API key)
    listWebhookEndpoints: webhooks.listWebhookEndpoints,
    createWebhookEndpoint: webhooks.createWebhookEndpoint,
    getWebhookEndpoint: webhooks.getWebhookEndpoint,
    updateWebhookEndpoint: webhooks.updateWebhookEndpoint,
    deleteWebhookEndpoint: webhooks.deleteWebhookEndpoint,
    rotateWebhookSecret: webhooks.rotateWebhookSecret,
    sendTestWebhook: webhooks.sendTestWebhook,
    recoverWebhookDeliveries: webhooks.recoverWebhookDeliveries,
    listWebhookDeliveries: webhooks.listWebhookDeliveries,
    getWebhookDelivery: webhooks.getWebhookDelivery,
    resendWebhookDelivery: webhooks.resendWebhookDelivery,
    // Health (no authentication)
    getHealth: health.getHealth,
    getReadiness: health.getReadiness,
    ...overrides,
  };
}

/** The direct routes' one-round-trip variants (BearerCheckedHandler), beside the table's handlers. */
export function bearerCheckedRoutes(s: Services): BearerCheckedHandlers {
  return { deductPoints: pointsHandlers(s.points, s.metrics).deductPointsAsBearer };
}
