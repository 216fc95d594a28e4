import type { OperationId } from '../src/http/operations.js';

export type ProbeCreds = {
  baseUrl: string;
  apiKey: string;
  clientId: string;
  redirectUri: string;
  /** Legacy-flow headers of a user with a wallet and plenty of points. */
  user: Record<string, string>;
};

const FAKE = {
  sub: 'sub_00000000000000000000000000',
  we: 'we_00000000000000000000000000',
  wd: 'wd_00000000000000000000000000',
};

/**
 * One valid, harmless request per operation that may still be a `pending` 501 stub. An implemented
 * operation answers it with anything but 501 (a create creates one throwaway resource; lookups of a
 * well-formed unknown id answer 404). Operations not listed here were implemented from the start.
 */
function probes(c: ProbeCreds): Partial<Record<OperationId, [string, string, RequestInit]>> {
  const key = { 'x-api-key': c.apiKey };
  const json = { 'content-type': 'application/json' };
  return {
    createSubscription: [
      'POST',
      '/api/v1/subscriptions',
      { headers: { ...c.user, ...json }, body: JSON.stringify({ planName: 'Probe', amount: 1 }) },
    ],
    listSubscriptions: ['GET', '/api/v1/subscriptions', { headers: c.user }],
    getSubscription: ['GET', `/api/v1/subscriptions/${FAKE.sub}`, { headers: c.user }],
    cancelSubscription: ['POST', `/api/v1/subscriptions/${FAKE.sub}/cancel`, { headers: c.user }],
    listWebhookEndpoints: ['GET', '/api/v1/partner/webhook-endpoints', { headers: key }],
    createWebhookEndpoint: [
      'POST',
      '/api/v1/partner/webhook-endpoints',
      {
        headers: { ...key, ...json },
        body: JSON.stringify({ url: 'https://partner.test/probe-hook', events: ['points.deducted'] }),
      },
    ],
    getWebhookEndpoint: ['GET', `/api/v1/partner/webhook-endpoints/${FAKE.we}`, { headers: key }],
    updateWebhookEndpoint: [
      'PATCH',
      `/api/v1/partner/webhook-endpoints/${FAKE.we}`,
      { headers: { ...key, ...json }, body: JSON.stringify({ enabled: true }) },
    ],
    deleteWebhookEndpoint: ['DELETE', `/api/v1/partner/webhook-endpoints/${FAKE.we}`, { headers: key }],
    sendTestWebhook: ['POST', `/api/v1/partner/webhook-endpoints/${FAKE.we}/test`, { headers: key }],
    listWebhookDeliveries: ['GET', '/api/v1/partner/webhook-deliveries', { headers: key }],
    resendWebhookDelivery: ['POST', `/api/v1/partner/webhook-deliveries/${FAKE.wd}/resend`, { headers: key }],
    authorize: [
      'GET',
      `/api/oauth2/authorize?${new URLSearchParams({ client_id: c.clientId, redirect_uri: c.redirectUri, scope: 'balance', response_type: 'code' })}`,
      {},
    ],
    createToken: [
      'POST',
      '/api/oauth2/token',
      {
        headers: json,
        body: JSON.stringify({
          grant_type: 'refresh_token',
          refresh_token: 'tcrt_probe',
          client_id: c.clientId,
          client_secret: c.apiKey,
        }),
      },
    ],
    revokeToken: [
      'POST',
      '/api/oauth2/revoke',
      {
        headers: json,
        body: JSON.stringify({ token: 'tcat_probe', client_id: c.clientId, client_secret: c.apiKey }),
      },
    ],
    introspectToken: [
      'POST',
      '/api/oauth2/introspect',
      {
        headers: json,
        body: JSON.stringify({ token: 'tcat_probe', client_id: c.clientId, client_secret: c.apiKey }),
      },
    ],
    getTokenInfo: ['GET', '/api/oauth2/token/info', { headers: { authorization: 'Bearer tcat_probe' } }],
    getAuthorizationServerMetadata: ['GET', '/.well-known/oauth-authorization-server', {}],
  };
}

/** The operations that still answer 501 not_implemented on this server. */
export async function pendingOperations(c: ProbeCreds): Promise<Set<OperationId>> {
  const pending = new Set<OperationId>();
  for (const [op, [method, path, init]] of Object.entries(probes(c)) as [
    OperationId,
    [string, string, RequestInit],
  ][]) {
    const res = await fetch(new URL(path, c.baseUrl), { ...init, method, redirect: 'manual' });
    if (isPendingResponse(path, res.status, await res.text())) pending.add(op);
  }
  return pending;
}

/**
 * Whether a response is a `pending` stub's 501. On /api/oauth2/ the OAuth error renderer
 * (src/http/app.ts problemToOAuth) turns that 501 problem into `500 {"error":"server_error"}`,
 * so there a 500 server_error counts as "not implemented yet" too.
 */
export function isPendingResponse(path: string, status: number, text: string): boolean {
  if (status === 501 && text.includes('not_implemented')) return true;
  return path.startsWith('/api/oauth2/') && status === 500 && text.includes('server_error');
}
