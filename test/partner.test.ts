import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getPartner, rotateClientSecret } from '../generated/sdk/index.js';
import { startTestServer, type TestServer } from './support/harness.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t?.stop());

describe('partner API', () => {
  it('shows the partner its own account, never the secret', async () => {
    const p = await t.partner({
      name: 'Acme Reader',
      redirectUris: ['https://acme.test/cb'],
      allowedScopes: ['deduct'],
    });
    const res = await getPartner({ client: t.client({ 'X-API-Key': p.clientSecret }) });
    expect(res.data).toEqual({
      partnerId: p.id,
      clientId: p.clientId,
      name: 'Acme Reader',
      redirectUris: ['https://acme.test/cb'],
      allowedScopes: ['deduct'],
      requirePkce: false,
      refreshGraceSeconds: 0,
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    expect(JSON.stringify(res.data)).not.toContain(p.clientSecret);
  });

  it('rotating the client secret kills the old one at once and the new one works', async () => {
    const p = await t.partner();
    const res = await rotateClientSecret({ client: t.client({ 'X-API-Key': p.clientSecret }) });
    expect(res.response.status).toBe(200);
    const fresh = res.data?.clientSecret ?? '';
    expect(fresh).toMatch(/^tcsk_[A-Za-z0-9_-]{43}$/);
    const old = await getPartner({ client: t.client({ 'X-API-Key': p.clientSecret }) });
    expect(old.response.status).toBe(401);
    expect(old.error).toMatchObject({ code: 'invalid_api_key' });
    const now = await getPartner({ client: t.client({ 'X-API-Key': fresh }) });
    expect(now.data?.clientId).toBe(p.clientId);
    const [row] = await t.db.query<{ client_secret_hash: string }>(
      'select client_secret_hash from partners where id = $1',
      [p.id],
    );
    expect(row?.client_secret_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(row?.client_secret_hash).not.toContain(fresh);
  });
});
