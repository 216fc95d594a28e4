import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getTokenInfo } from '../generated/sdk/index.js';
import { ACCESS_TOKEN_TTL_SECONDS } from '../src/oauth2/tokens.js';
import { authorizeAsUser, chromiumAvailable, launchChromium, signInOnPage } from './support/browser.js';
import { startTestServer, type TestServer } from './support/harness.js';
import { type MainProcess, startListening } from './support/main-process.js';
import { expectAccessible, saveScreenshot } from './support/page-checks.js';
import { partnerApi } from './support/webhooks.js';

/**
 * examples/partner-app as a partner would run it: its own process (`npm start` there), configured by
 * environment variables, importing the SDK as the package @tian/points-sdk, against the real server.
 */

type StoredTokens = { userId: number; accessToken: string; refreshToken: string; expiresAt: string };

const PARTNER_APP = 'examples/partner-app/src/main.ts';
const USER = { email: 'example-app@example.com', password: 'correct horse battery' };

/** A port nobody listens on right now, for a server whose URL must be registered before it starts. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || !address) throw new Error('no port');
  return address.port;
}

describe.runIf(chromiumAvailable())('the example partner app (examples/partner-app)', () => {
  let t: TestServer;
  let app: MainProcess;
  let browser: Browser;
  let page: Page;
  let userId: number;
  let appEnv: NodeJS.ProcessEnv;
  let storeDir: string;
  let storeFile: string;

  const stored = (): Record<string, StoredTokens> => JSON.parse(readFileSync(storeFile, 'utf8'));
  const tokenInfo = async (accessToken: string) =>
    (await getTokenInfo({ client: t.client({ Authorization: `Bearer ${accessToken}` }) })).data;

  beforeAll(async () => {
    // The package's JavaScript and declarations (what `npm pack` ships); a no-op when up to date.
    execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-b', 'packages/sdk'], {
      stdio: 'pipe',
    });
    t = await startTestServer({ AUTH_RATE_LIMIT_PER_MINUTE: '1000' });
    // The server's clock starts one access-token lifetime (and a minute) in the past, so that setting it
    // to the real time later expires the first access token, while the webhooks signed after that carry
    // real timestamps: the example verifies them with standardwebhooks against its own (real) clock.
    t.clock.set(new Date(Date.now() - (ACCESS_TOKEN_TTL_SECONDS + 60) * 1000));

    const port = await freePort();
    const appUrl = `http://127.0.0.1:${port}`;
    const partner = await t.partner({
      name: 'Example Shop',
      redirectUris: [`${appUrl}/callback`],
      allowedScopes: ['balance', 'deduct'],
      requirePkce: true,
    });
    userId = (await t.user({ ...USER, points: 100 })).id;
    const endpoint = await partnerApi(t, partner.clientSecret).createEndpoint(`${appUrl}/webhooks/tian`, [
      'token.revoked',
    ]);
    storeDir = mkdtempSync(join(tmpdir(), 'partner-app-'));
    storeFile = join(storeDir, 'tokens.json');
    appEnv = {
      PATH: process.env.PATH,
      TIAN_URL: t.url,
      TIAN_CLIENT_ID: partner.clientId,
      TIAN_CLIENT_SECRET: partner.clientSecret,
      TIAN_WEBHOOK_SECRET: endpoint.secret,
    };
    app = await startListening(
      PARTNER_APP,
      { ...appEnv, PORT: String(port), TOKEN_STORE_FILE: storeFile },
      60_000,
    );
    expect(app.url).toBe(appUrl);
    browser = await launchChromium();
    page = await browser.newPage();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    if (app) {
      app.child.kill('SIGTERM');
      await app.exited;
    }
    await t?.stop();
    if (storeDir) rmSync(storeDir, { recursive: true, force: true });
  });

  it('connects a wallet through the code flow with state and PKCE and stores the tokens server-side', async () => {
    await page.goto(app.url);
    await expectAccessible(page);
    await saveScreenshot(page, 'example-partner-app-signed-out');
    const [authorize] = await Promise.all([
      page.waitForRequest((r) => r.url().startsWith(`${t.url}/api/oauth2/authorize?`)),
      page.getByRole('link', { name: 'Connect your TIAN wallet' }).click(),
    ]);
    const query = new URL(authorize.url()).searchParams;
    expect(query.get('redirect_uri')).toBe(`${app.url}/callback`);
    expect(query.get('state')).toMatch(/^[\w-]{32,}$/);
    expect(query.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(query.get('code_challenge_method')).toBe('S256');

    // At TIAN: sign in and allow, as the user would.
    await signInOnPage(page, USER);
    await saveScreenshot(page, 'example-partner-app-consent');
    await page.getByRole('button', { name: 'Allow', exact: true }).click();

    await page.getByText('Your TIAN wallet is connected.').waitFor();
    expect(new URL(page.url()).origin).toBe(app.url);
    expect(await page.textContent('main')).toContain('100 points');
    await expectAccessible(page);
    await saveScreenshot(page, 'example-partner-app-connected');

    const tokens = stored()[String(userId)];
    expect(tokens?.accessToken).toMatch(/^tcat_/);
    expect(tokens?.refreshToken).toMatch(/^tcrt_/);
    expect(await tokenInfo(tokens?.accessToken ?? '')).toMatchObject({
      active: true,
      userId,
      scope: 'balance deduct',
    });
    // Tokens never reach the browser.
    const cookies = await page.context().cookies(app.url);
    expect(JSON.stringify(cookies)).not.toContain(tokens?.accessToken);
    expect(await page.content()).not.toContain(tokens?.accessToken);
  });

  it('deducts with an idempotency key: the same form sent twice deducts once', async () => {
    const form = page.locator('form[action="/deduct"]');
    const fields = {
      csrf_token: await form.locator('input[name="csrf_token"]').inputValue(),
      idempotency_key: await form.locator('input[name="idempotency_key"]').inputValue(),
      amount: '30',
    };
    await page.getByLabel('Amount').fill('30');
    await page.getByRole('button', { name: 'Deduct points' }).click();
    await page.getByText(/Deducted 30 points \(transaction txn_/).waitFor();
    expect(await page.textContent('main')).toContain('70 points');
    await saveScreenshot(page, 'example-partner-app-deducted');

    // The same form submitted again (a double click, a resent request): TIAN replays the first answer.
    const again = await page.request.post(`${app.url}/deduct`, { form: fields, maxRedirects: 0 });
    expect(again.status()).toBe(303);
    const state = await t.moneyState(userId);
    expect(state?.balance).toBe(70);
    expect(state?.k).toBe('1');
  });

  it('refreshes silently, once, when concurrent calls get 401 for an expired access token, and the calls go through', async () => {
    const before = stored()[String(userId)];
    t.clock.set(new Date()); // the first access token expired a minute ago, by the server's clock
    expect(await tokenInfo(before?.accessToken ?? '')).toMatchObject({ active: false });

    // Two purchases at once (the page's form and another tab's): both get a 401 and wait for one refresh;
    // a second refresh would replay the single-use refresh token, and TIAN would end the whole grant.
    const csrf = await page.locator('input[name="csrf_token"]').inputValue();
    const purchase = (key: string) =>
      page.request.post(`${app.url}/deduct`, {
        form: { csrf_token: csrf, idempotency_key: key, amount: '10' },
        maxRedirects: 0,
      });
    const answers = await Promise.all([purchase(randomUUID()), purchase(randomUUID())]);
    expect(answers.map((a) => a.status())).toEqual([303, 303]);
    await app.printed(new RegExp(`refreshed the access token of TIAN user ${userId} after a 401`));
    expect(app.output().match(/after a 401/g)).toHaveLength(1);

    await page.goto(app.url);
    expect(await page.textContent('main')).toContain('50 points');
    const after = stored()[String(userId)];
    expect(after?.accessToken).not.toBe(before?.accessToken);
    expect(after?.refreshToken).not.toBe(before?.refreshToken);
    expect(await tokenInfo(after?.accessToken ?? '')).toMatchObject({ active: true, userId });
    expect((await t.moneyState(userId))?.balance).toBe(50);
  });

  it('refuses a token.revoked webhook whose signature does not verify, and keeps the tokens', async () => {
    const res = await fetch(`${app.url}/webhooks/tian`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'webhook-id': 'msg_forged',
        'webhook-timestamp': String(Math.floor(Date.now() / 1000)),
        'webhook-signature': `v1,${Buffer.from('forged').toString('base64')}`,
      },
      body: JSON.stringify({ event: 'token.revoked', userId, revokedBy: 'user' }),
    });
    expect(res.status).toBe(400);
    await app.printed(/refused a webhook: No matching signature found/);
    expect(stored()[String(userId)]?.accessToken).toMatch(/^tcat_/);
  });

  it("refuses a callback it did not start or whose state does not match, and shows a user's Deny", async () => {
    const unsolicited = await fetch(`${app.url}/callback?code=abc&state=xyz`, { redirect: 'manual' });
    expect(unsolicited.status).toBe(400);
    expect(await unsolicited.text()).toContain('This sign-in was not started here');

    const connect = await fetch(`${app.url}/connect`, { redirect: 'manual' });
    const cookie = (connect.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const forged = new URL(`${app.url}/callback`);
    forged.search = new URLSearchParams({
      code: 'a-code-for-someone-else',
      state: 'not-the-state',
      iss: t.url,
    }).toString();
    const callback = await fetch(forged, { headers: { cookie }, redirect: 'manual' });
    expect(callback.status).toBe(303);
    const home = await (await fetch(app.url, { headers: { cookie } })).text();
    expect(home).toContain('That sign-in could not be verified.');
    await app.printed(/refused a sign-in callback/);

    // A user who answers Deny comes back with access_denied, which the app shows as such.
    const again = await fetch(`${app.url}/connect`, { headers: { cookie }, redirect: 'manual' });
    const authorize = new URL(again.headers.get('location') ?? '');
    const { location } = await authorizeAsUser(t, Object.fromEntries(authorize.searchParams), USER, 'deny');
    expect(location.searchParams.get('error')).toBe('access_denied');
    await fetch(location, { headers: { cookie }, redirect: 'manual' });
    expect(await (await fetch(app.url, { headers: { cookie } })).text()).toContain(
      'Your TIAN wallet was not connected (access_denied).',
    );
  });

  it("a user revoking the app in the wallet ends the partner's token, and the app clears its tokens on token.revoked", async () => {
    const live = stored()[String(userId)];
    const wallet = await browser.newPage();
    await wallet.goto(`${t.url}/wallet/settings`);
    // The wallet session from the sign-in above is a month old by the server's clock: sign in again.
    if (await wallet.getByLabel('Email').count()) {
      await wallet.getByLabel('Email').fill(USER.email);
      await wallet.getByLabel('Password', { exact: true }).fill(USER.password);
      await wallet.getByRole('button', { name: 'Sign in', exact: true }).click();
      await wallet.goto(`${t.url}/wallet/settings`);
    }
    await wallet.getByText('Example Shop').first().waitFor();
    await saveScreenshot(wallet, 'example-partner-app-wallet-before-revoke');
    await wallet.getByRole('button', { name: /(revoke|disconnect).*Example Shop/i }).click();
    await wallet.waitForLoadState();
    await saveScreenshot(wallet, 'example-partner-app-wallet-after-revoke');

    await t.drainJobs();
    await app.printed(new RegExp(`token.revoked for TIAN user ${userId} \\(by user\\): tokens cleared`));
    expect(stored()[String(userId)]).toBeUndefined();
    expect(await tokenInfo(live?.accessToken ?? '')).toMatchObject({ active: false, userId });

    await page.goto(app.url);
    await page.getByText('Your TIAN wallet is not connected any more.').waitFor();
    await page.getByRole('link', { name: 'Connect your TIAN wallet' }).waitFor();
    await expectAccessible(page);
    await saveScreenshot(page, 'example-partner-app-after-revoke');
  });

  it('refreshes before the access token expires, without waiting for a 401, when the margin says so', async () => {
    // A second instance for the same partner whose margin is the whole token lifetime: every call
    // finds its token about to expire. The user goes through the flow with a scripted browser.
    // Any free port: its callback differs from the registered one by the port only, which RFC 8252
    // §7.3 allows on loopback.
    const eager = await startListening(
      PARTNER_APP,
      {
        ...appEnv,
        PORT: '0',
        TOKEN_STORE_FILE: '',
        REFRESH_BEFORE_EXPIRY_SECONDS: String(ACCESS_TOKEN_TTL_SECONDS),
      },
      60_000,
    );
    try {
      const connect = await fetch(`${eager.url}/connect`, { redirect: 'manual' });
      const cookie = (connect.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
      const authorize = new URL(connect.headers.get('location') ?? '');
      const { location } = await authorizeAsUser(t, Object.fromEntries(authorize.searchParams), USER);
      expect(`${location.origin}${location.pathname}`).toBe(`${eager.url}/callback`);
      const callback = await fetch(location, { headers: { cookie }, redirect: 'manual' });
      expect(callback.status).toBe(303);
      const home = await (await fetch(eager.url, { headers: { cookie } })).text();
      expect(home).toContain('Your TIAN wallet is connected.');
      expect(home).toContain('50 points');
      expect(eager.output()).toMatch(/refreshed the access token of TIAN user \d+ before it expires/);
      expect(eager.output()).not.toMatch(/after a 401/);
    } finally {
      eager.child.kill('SIGTERM');
      await eager.exited;
    }
  });
});
