import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ChromiumSuite,
  chromiumAvailable,
  signInOnPage,
  startChromiumSuite,
} from './support/browser.js';

const PASSWORD = 'correct horse battery';

describe.skipIf(!chromiumAvailable())('wallet sign-in pages in a real browser (Chromium)', () => {
  let suite: ChromiumSuite;
  let t: ChromiumSuite['t'];
  let browser: ChromiumSuite['browser'];
  let callback: ChromiumSuite['callback'];

  beforeAll(async () => {
    suite = await startChromiumSuite({ name: 'Acme Reader', allowedScopes: ['balance'] });
    ({ t, browser, callback } = suite);
  });
  afterAll(() => suite?.stop());

  const sessionRows = async () =>
    Number((await t.db.query<{ n: string }>('select count(*) as n from wallet_sessions'))[0]?.n);

  const authorizeUrl = (state: string) => suite.authorizeUrl({ scope: 'balance', state });

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
    await signInOnPage(page, { email: 'chromium-hardening@example.com', password: PASSWORD });
    expect(await sessionRows()).toBe(1);
    await page.getByRole('button', { name: 'Allow', exact: true }).click();
    await page.waitForURL((u) => u.href.startsWith(callback.url));
    expect(new URL(page.url()).searchParams.get('state')).toBe('signed-in');
    await context.close();
  });
});
