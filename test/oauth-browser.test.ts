import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deductPoints, getBalance } from '../generated/sdk/index.js';
import {
  type ChromiumSuite,
  chromiumAvailable,
  signInOnPage,
  startChromiumSuite,
} from './support/browser.js';
import { tokenRequest } from './support/oauth.js';

const PASSWORD = 'correct horse battery';

describe.skipIf(!chromiumAvailable())('the seed OAuth flow in a real browser (Chromium)', () => {
  let suite: ChromiumSuite;
  let t: ChromiumSuite['t'];
  let browser: ChromiumSuite['browser'];
  let callback: ChromiumSuite['callback'];
  let partner: ChromiumSuite['partner'];

  beforeAll(async () => {
    suite = await startChromiumSuite({ name: 'Acme Reader', allowedScopes: ['deduct', 'balance'] });
    ({ t, browser, callback, partner } = suite);
  });
  afterAll(() => suite?.stop());

  const authorizeUrl = (state: string, scope = 'deduct balance') => suite.authorizeUrl({ scope, state });
  const signIn = (page: Page, email: string) => signInOnPage(page, { email, password: PASSWORD });

  it('sign in, Allow, code exchange, deduct with the bearer token, refresh, replay revokes everything', async () => {
    const user = await t.user({ email: 'browser-user@example.com', password: PASSWORD, points: 500 });
    const context = await browser.newContext();
    const page = await context.newPage();
    const state = 'RANDOM_CSRF_TOKEN_1';

    // Steps 1-2: the consent screen names the app and each permission; Allow sends the browser back.
    await page.goto(authorizeUrl(state));
    await signIn(page, 'browser-user@example.com');
    const consent = await page.content();
    expect(consent).toContain('Acme Reader');
    expect(consent).toContain('Deduct TIAN Points from your balance');
    expect(consent).toContain('See your TIAN Points balance');
    await page.getByRole('button', { name: 'Allow', exact: true }).click();
    await page.waitForURL((u) => u.href.startsWith(callback.url));
    const back = new URL(page.url());
    expect(back.searchParams.get('state')).toBe(state);
    expect(back.searchParams.get('iss')).toBe(t.url);
    const code = back.searchParams.get('code') ?? '';
    expect(code).toMatch(/^tcac_/);
    // (Chromium may also ask the callback server for /favicon.ico.)
    expect(
      callback.calls
        .filter((u) => u.pathname === '/callback')
        .at(-1)
        ?.searchParams.get('code'),
    ).toBe(code);
    await context.close();

    // Step 3: the seed's JSON token request.
    const tokenRes = await tokenRequest(t, {
      grant_type: 'authorization_code',
      code,
      redirect_uri: callback.url,
      client_id: partner.clientId,
      client_secret: partner.clientSecret,
    });
    expect(tokenRes.status).toBe(200);
    const tokens = (await tokenRes.json()) as { access_token: string; refresh_token: string; scope: string };
    expect(tokens.scope).toBe('deduct balance');

    // Step 4: deduct with only the bearer token, through the generated SDK.
    const api = t.client({ Authorization: `Bearer ${tokens.access_token}` });
    const deduct = await deductPoints({
      client: api,
      body: { amount: 10, description: 'Feature usage', idempotencyKey: 'order_abc123' },
    });
    expect(deduct.response.status).toBe(200);
    expect(deduct.data).toMatchObject({ success: true, creditsDeducted: 10, newBalance: 490 });

    const info = await fetch(`${t.url}/api/oauth2/token/info`, {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    expect(await info.json()).toMatchObject({
      active: true,
      scope: 'deduct balance',
      userId: user.id,
      partnerId: partner.id,
    });

    // Step 5: refresh; the old pair dies at once.
    const refresh = (refreshToken: string) =>
      tokenRequest(t, {
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
        client_id: partner.clientId,
        client_secret: partner.clientSecret,
      });
    const rotated = (await (await refresh(tokens.refresh_token)).json()) as {
      access_token: string;
      refresh_token: string;
    };
    expect(rotated.access_token).toMatch(/^tcat_/);
    expect((await getBalance({ client: api })).response.status).toBe(401);
    const newApi = t.client({ Authorization: `Bearer ${rotated.access_token}` });
    expect((await getBalance({ client: newApi })).data?.balance).toBe(490);

    // Replay of the old refresh token: every token of this user for the partner is revoked.
    const replay = await refresh(tokens.refresh_token);
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ error: 'invalid_grant' });
    expect((await getBalance({ client: newApi })).response.status).toBe(401);
    expect((await refresh(rotated.refresh_token)).status).toBe(400);
    const events = await t.db.query<{ payload: Record<string, unknown> }>(
      "select payload from webhook_events where type = 'token.revoked' and partner_id = $1 and (payload->>'userId')::bigint = $2",
      [partner.id, user.id],
    );
    expect(events.length).toBeGreaterThan(0);
    expect(events[0]?.payload).toMatchObject({
      event: 'token.revoked',
      userId: user.id,
      revokedBy: 'partner',
    });
  });

  it('Deny sends the browser back with error=access_denied and the same state', async () => {
    await t.user({ email: 'browser-deny@example.com', password: PASSWORD, points: 5 });
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(authorizeUrl('deny-state-42', 'balance'));
    await signIn(page, 'browser-deny@example.com');
    await page.getByRole('button', { name: 'Deny', exact: true }).click();
    await page.waitForURL((u) => u.href.startsWith(callback.url));
    const back = new URL(page.url());
    expect(back.searchParams.get('error')).toBe('access_denied');
    expect(back.searchParams.get('state')).toBe('deny-state-42');
    expect(back.searchParams.get('code')).toBeNull();
    await context.close();
  });

  it('the consent page cannot be framed by another site', async () => {
    await t.user({ email: 'browser-frame@example.com', password: PASSWORD });
    const context = await browser.newContext();
    const page = await context.newPage();
    const response = await page.goto(authorizeUrl('frame'));
    expect(response?.headers()['x-frame-options']).toBe('DENY');
    expect(response?.headers()['content-security-policy']).toContain("frame-ancestors 'none'");
    await context.close();
  });
});
