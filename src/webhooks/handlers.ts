import type { Principal } from '../http/auth.js';
import type { Handler } from '../http/operations.js';
import type { WebhookService } from './service.js';

/** The partner a partner-level operation acts for; authentication guarantees it. */
function partnerOf(auth: Principal): number {
  if (auth.kind !== 'partner') throw new Error('partner operation reached its handler without a partner');
  return auth.partner.id;
}

export const webhookHandlers = (webhooks: WebhookService) => {
  const listWebhookEndpoints: Handler<'listWebhookEndpoints'> = async ({ auth }) => ({
    status: 200,
    body: await webhooks.listEndpoints(partnerOf(auth)),
  });

  const createWebhookEndpoint: Handler<'createWebhookEndpoint'> = async ({ auth, body }) => ({
    status: 201,
    body: await webhooks.createEndpoint(partnerOf(auth), {
      url: body.url,
      events: body.events,
      description: body.description,
    }),
  });

  const getWebhookEndpoint: Handler<'getWebhookEndpoint'> = async ({ auth, path }) => ({
    status: 200,
    body: await webhooks.getEndpoint(partnerOf(auth), path.endpointId),
  });

  const updateWebhookEndpoint: Handler<'updateWebhookEndpoint'> = async ({ auth, path, body }) => ({
    status: 200,
    body: await webhooks.updateEndpoint(partnerOf(auth), path.endpointId, {
      url: body.url,
      events: body.events,
      enabled: body.enabled,
      description: body.description,
    }),
  });

  const deleteWebhookEndpoint: Handler<'deleteWebhookEndpoint'> = async ({ auth, path }) => {
    await webhooks.deleteEndpoint(partnerOf(auth), path.endpointId);
    return { status: 204, body: undefined };
  };

  const rotateWebhookSecret: Handler<'rotateWebhookSecret'> = async ({ auth, path }) => ({
    status: 200,
    body: await webhooks.rotateSecret(partnerOf(auth), path.endpointId),
  });

  const sendTestWebhook: Handler<'sendTestWebhook'> = async ({ auth, path }) => ({
    status: 202,
    body: await webhooks.sendTestPing(partnerOf(auth), path.endpointId),
  });

  const recoverWebhookDeliveries: Handler<'recoverWebhookDeliveries'> = async ({ auth, path, body }) => ({
    status: 202,
    body: await webhooks.recover(partnerOf(auth), path.endpointId, { since: body.since, until: body.until }),
  });

  const listWebhookDeliveries: Handler<'listWebhookDeliveries'> = async ({ auth, query }) => ({
    status: 200,
    body: await webhooks.listDeliveries(partnerOf(auth), {
      limit: query.limit ?? 20,
      cursor: query.cursor,
      endpointId: query.endpointId,
      status: query.status,
    }),
  });

  const getWebhookDelivery: Handler<'getWebhookDelivery'> = async ({ auth, path }) => ({
    status: 200,
    body: await webhooks.getDelivery(partnerOf(auth), path.deliveryId),
  });

  const resendWebhookDelivery: Handler<'resendWebhookDelivery'> = async ({ auth, path }) => ({
    status: 202,
    body: await webhooks.resendDelivery(partnerOf(auth), path.deliveryId),
  });

  return {
    listWebhookEndpoints,
    createWebhookEndpoint,
    getWebhookEndpoint,
    updateWebhookEndpoint,
    deleteWebhookEndpoint,
    rotateWebhookSecret,
    sendTestWebhook,
    recoverWebhookDeliveries,
    listWebhookDeliveries,
    getWebhookDelivery,
    resendWebhookDelivery,
  };
};
