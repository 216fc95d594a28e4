import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumAvailable, launchChromium, startCallbackServer } from './support/browser.js';
import { startTestServer, type TestServer } from './support/harness.js';

const PASSWORD = 'correct horse battery';

describe.skipIf(!chromiumAvailable())('wallet sign-in pages in a real browser (Chromium)', () => {
  let t: TestServer;
  let browser: Browser;
  let callback: Awaited<ReturnType<typeof startCallbackServer>>;
  let partner: Awaited<ReturnType<TestServer['partner']>>;

  beforeAll(async () => {
    t = await startTestServer({ AUTH_RATE_LIMIT_PER_MINUTE: '1000' });
    callback = await startCallbackServer();
    partner = await t.partner({
      name: 'Acme Reader',
      redirectUris: [callback.url],
      allowedScopes: ['balance'],
    });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await callback?.close();
    await t?.stop();
  });

  const sessionRows = async () =>
    Number((await t.db.query<{ n: string }>('select count(*) as n from wallet_sessions'))[0]?.n);

  function authorizeUrl(state: string): string {
    const q = new URLSearchParams({
      response_type: 'code',
      client_id: partner.clientId,
      redirect_uri: callback.url,
      scope: 'balance',
      state,
    });
    return `${t.url}/api/oauth2/authorize?${q}`;
  }

  it('an anonymous visit stores no session; the form signs in with the CSRF cookie; a NUL in a hidden field gets a 400 page', async () => {
    await t.user({ email: 'chromium-hardening@example.com', password: PASSWORD });
    const context = await browser.newContext();
    const page = await context.newPage();

    await page.goto(authorizeUrl('anonymous'));
    await page.goto(`${t.url}/wallet/login`);
    await page.goto(authorizeUrl('anonymous'));
    expect(await sessionRows()).toBe(0);
    const cookies = await context.cookies(t.url);
    expect(cookies.map((c) => c.name)).toEqual(['tian_csrf']);
    expect(cookies[0]).toMatchObject({ httpOnly: true, sameSite: 'Lax' });

    // A page script (or a tampered link) puts a NUL byte into the carried request.
    await page.evaluate(() => {
      const state = document.querySelector<HTMLInputElement>('form input[name="state"]');
      if (state) state.value = 'a\u0000b';
    });
    await page.getByLabel('Email').fill('chromium-hardening@example.com');
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    const refused = page.waitForResponse((r) => r.url().endsWith('/wallet/login'));
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    expect((await refused).status()).toBe(400);
    await page.getByText('contains characters that are not allowed').waitFor();
    expect(await sessionRows()).toBe(0);

    // The untouched form signs in: the only row is the signed-in session.
    await page.goto(authorizeUrl('signed-in'));
    await page.getByLabel('Email').fill('chromium-hardening@example.com');
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('button', { name: 'Allow', exact: true }).waitFor();
    expect(await sessionRows()).toBe(1);
    await page.getByRole('button', { name: 'Allow', exact: true }).click();
    await page.waitForURL((u) => u.href.startsWith(callback.url));
    expect(new URL(page.url()).searchParams.get('state')).toBe('signed-in');
    await context.close();
  });
});
