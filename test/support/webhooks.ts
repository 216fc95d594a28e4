import type { components } from '../../generated/types.js';
import type { TestServer } from './harness.js';

type Schemas = components['schemas'];

/** Partner-API calls for webhook tests (X-API-Key), returning status and parsed body. */
export function partnerApi(t: TestServer, apiKey: string) {
  const call = async <T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: T }> => {
    const url = new URL(path, t.url);
    if (url.hostname !== '127.0.0.1') throw new Error(`refusing to talk to ${url.host}`);
    const res = await fetch(url, {
      method,
      headers: { 'x-api-key': apiKey, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
  const ep = '/api/v1/partner/webhook-endpoints';
  const wd = '/api/v1/partner/webhook-deliveries';
  return {
    call,
    async createEndpoint(url: string, events: Schemas['EventType'][], description?: string) {
      const res = await call<Schemas['WebhookEndpointWithSecret']>('POST', ep, {
        url,
        events,
        ...(description ? { description } : {}),
      });
      if (res.status !== 201) throw new Error(`createEndpoint: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    endpoint: (id: string) => call<Schemas['WebhookEndpoint']>('GET', `${ep}/${id}`),
    update: (id: string, patch: Schemas['UpdateWebhookEndpointRequest']) =>
      call<Schemas['WebhookEndpoint']>('PATCH', `${ep}/${id}`, patch),
    remove: (id: string) => call('DELETE', `${ep}/${id}`),
    rotate: (id: string) => call<Schemas['WebhookSecret']>('POST', `${ep}/${id}/rotate-secret`),
    ping: (id: string) => call<Schemas['WebhookDelivery']>('POST', `${ep}/${id}/test`),
    recover: (id: string, body: Schemas['RecoverWebhookDeliveriesRequest']) =>
      call<Schemas['WebhookRecovery']>('POST', `${ep}/${id}/recover`, body),
    deliveries: (q: Record<string, string> = {}) =>
      call<Schemas['WebhookDeliveryList']>('GET', `${wd}?${new URLSearchParams(q)}`),
    delivery: (id: string) => call<Schemas['WebhookDeliveryDetail']>('GET', `${wd}/${id}`),
    resend: (id: string) => call<Schemas['WebhookDelivery']>('POST', `${wd}/${id}/resend`),
  };
}
