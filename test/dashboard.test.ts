import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deductPoints } from '../generated/sdk/index.js';
import { createPartnerAccount } from '../src/partners/accounts.js';
import { purgeExpiredSessions, SESSION_TTL_MS } from '../src/web/shared/sessions.js';
import { chromiumAvailable, formFields, launchChromium, ScriptedBrowser } from './support/browser.js';
import { runCli } from './support/cli.js';
import { startTestServer, type TestServer } from './support/harness.js';
import { expectAccessible, saveScreenshot } from './support/page-checks.js';
import { WebhookReceiver } from './support/webhook-receiver.js';
import { partnerApi } from './support/webhooks.js';

/**
 * The partner dashboard (/dashboard) in Chromium and through a scripted browser: partner accounts
 * sign in with their own credentials, change the app's settings, and manage webhook endpoints, the
 * delivery log and secrets; every page is screenshotted and checked with axe-core.
 */
const run = chromiumAvailable();
let t: TestServer;
let browser: Browser;
let seq = 0;

beforeAll(async () => {
  if (!run) return;
  t = await startTestServer({ AUTH_RATE_LIMIT_PER_MINUTE: '1000' });
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

/** A partner with a dashboard account of its own. */
async function partnerWithAccount(input: Parameters<TestServer['partner']>[0] = {}) {
  const partner = await t.partner(input);
  const email = `owner${++seq}@partner${partner.id}.test`;
  const password = `dashboard password ${seq}`;
  await t.db.transaction((tx) => createPartnerAccount(tx, { partnerId: partner.id, email, password }));
  return { partner, email, password, api: partnerApi(t, partner.clientSecret) };
}

/** A new browser context signed in to the dashboard (lands on App settings). */
async function signedInPage(account: { email: string; password: string }): Promise<Page> {
  const page = await (await browser.newContext()).newPage();
  await page.goto(`${t.url}/dashboard`);
  await page.getByLabel('Email').fill(account.email);
  await page.getByLabel('Password').fill(account.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'App settings' }).waitFor();
  return page;
}

/** A scripted browser signed in to the dashboard; `csrf()` reads the session's token from a page. */
async function scriptedSignIn(account: { email: string; password: string }) {
  const b = new ScriptedBrowser(t.url);
  const login = await b.get('/dashboard/login');
  const res = await b.post('/dashboard/login', {
    ...formFields(await login.text()),
    email: account.email,
    password: account.password,
  });
  if (res.status !== 303) throw new Error(`dashboard sign-in answered ${res.status}`);
  const csrf = async () => formFields(await (await b.get('/dashboard/app')).text()).csrf_token ?? '';
  return { b, csrf: await csrf() };
}

async function check(page: Page, screenshot: string) {
  await saveScreenshot(page, screenshot);
  await expectAccessible(page);
}

/** The number of requests for an event type the receiver got. */
const receivedOf = (r: WebhookReceiver, type: string) =>
  r.received.filter((w) => (JSON.parse(w.body) as { event?: string }).event === type).length;

describe.runIf(run)('partner dashboard: signing in', () => {
  it('a partner account signs in with its own email and password, and signs out', async () => {
    const a = await partnerWithAccount({ name: 'Sign-in Co' });
    const page = await (await browser.newContext()).newPage();
    const res = await page.goto(`${t.url}/dashboard/app`);
    expect(res?.headers()['x-frame-options']).toBe('DENY');
    await page.getByRole('heading', { name: 'Partner dashboard' }).waitFor();
    await check(page, 'dashboard-sign-in');

    await page.getByLabel('Email').fill(a.email);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toContain('email or password is not right');
    await check(page, 'dashboard-sign-in-refused');

    await page.getByLabel('Password').fill(a.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'App settings' }).waitFor();
    await expect(page.locator('header').textContent()).resolves.toContain(
      `Sign-in Co · signed in as ${a.email}`,
    );

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Partner dashboard' }).waitFor();
    await page.goto(`${t.url}/dashboard/webhooks`);
    await page.getByRole('heading', { name: 'Partner dashboard' }).waitFor();
  });

  it("a wallet user's credentials do not open the dashboard, and a partner account's do not open the wallet", async () => {
    const a = await partnerWithAccount();
    const walletEmail = `wallet${++seq}@example.test`;
    await t.user({ email: walletEmail, password: 'wallet password 1' });
    const b = new ScriptedBrowser(t.url);
    const login = await b.get('/dashboard/login');
    const refused = await b.post('/dashboard/login', {
      ...formFields(await login.text()),
      email: walletEmail,
      password: 'wallet password 1',
    });
    expect(refused.status).toBe(401);
    expect(await refused.text()).toContain('Wallet accounts cannot sign in here');
    expect((await b.get('/dashboard/app')).status).toBe(303);

    const wallet = await b.get('/wallet/login');
    const walletRefused = await b.post('/wallet/login', {
      ...formFields(await wallet.text()),
      method: 'password',
      email: a.email,
      password: a.password,
    });
    expect(walletRefused.status).toBe(401);
  });

  it('sessions follow the wallet rules: hashed ids, no rows for anonymous visitors, new id at sign-in, purged when expired', async () => {
    const a = await partnerWithAccount();
    const count = async () =>
      Number((await t.db.query<{ n: string }>('select count(*) as n from partner_sessions'))[0]?.n);
    const before = await count();
    const b = new ScriptedBrowser(t.url);
    for (let i = 0; i < 3; i++) expect((await b.get('/dashboard/login')).status).toBe(200);
    expect(await count()).toBe(before);

    const login = await b.get('/dashboard/login');
    const res = await b.post('/dashboard/login', {
      ...formFields(await login.text()),
      email: a.email,
      password: a.password,
    });
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith('tian_partner='));
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    const id = cookie?.split(';')[0]?.split('=')[1] ?? '';
    const rows = await t.db.query<{ id_hash: string }>(
      'select id_hash from partner_sessions where id_hash = $1',
      [id],
    );
    expect(rows).toHaveLength(0);
    expect(await count()).toBe(before + 1);

    t.clock.advance(SESSION_TTL_MS + 1_000);
    expect((await b.get('/dashboard/app')).status).toBe(303);
    expect(await purgeExpiredSessions(t.db, t.clock.now())).toBeGreaterThanOrEqual(1);
    expect(await count()).toBe(0);
  });

  it('the admin CLI creates partner accounts (case-insensitive unique email, generated password shown once)', async ({
    skip,
  }) => {
    const url = t.services.config.databaseUrl;
    if (!url) {
      const why = 'the CLI reaches the test database only when it is a PostgreSQL server';
      console.warn(`[tests] dashboard CLI test SKIPPED: ${why}.`);
      return skip(why);
    }
    const partner = await t.partner({ name: 'CLI Co' });
    const env = { ...process.env, DATABASE_URL: url, NODE_ENV: 'test' };
    const email = `Cli${++seq}@Partner.test`;
    const made = await runCli(env, [
      'partner-account:create',
      '--partner-id',
      String(partner.id),
      '--email',
      email,
    ]);
    expect(made.code, made.err).toBe(0);
    expect(made.out).toMatchObject({ partnerId: partner.id, email: email.toLowerCase() });
    const password = String(made.out.password);
    expect(password.length).toBeGreaterThanOrEqual(12);
    const stored = await t.db.query<{ password_hash: string }>(
      'select password_hash from partner_accounts where email = $1',
      [email.toLowerCase()],
    );
    expect(stored[0]?.password_hash).toMatch(/^\$argon2id\$/);

    const again = await runCli(env, [
      'partner-account:create',
      '--partner-id',
      String(partner.id),
      '--email',
      email.toUpperCase(),
      '--password',
      'another long password',
    ]);
    expect(again).toMatchObject({
      code: 1,
      out: { error: expect.stringContaining('already a dashboard account') },
    });
    const short = await runCli(env, [
      'partner-account:create',
      '--partner-id',
      String(partner.id),
      '--email',
      'a@b.test',
      '--password',
      'short',
    ]);
    expect(short).toMatchObject({
      code: 1,
      out: { error: expect.stringContaining('at least 12 characters') },
    });
    const nobody = await runCli(env, [
      'partner-account:create',
      '--partner-id',
      '999999',
      '--email',
      'c@d.test',
    ]);
    expect(nobody).toMatchObject({ code: 1, out: { error: 'No partner 999999.' } });

    // The printed password opens the dashboard, whatever the email's case.
    const { b } = await scriptedSignIn({ email: email.toUpperCase(), password });
    expect(await (await b.get('/dashboard/app')).text()).toContain('CLI Co');
  }, 120_000);

  it('a POST without the session CSRF token is refused with a 403 page and changes nothing', async () => {
    const a = await partnerWithAccount({ name: 'CSRF Co' });
    const { b } = await scriptedSignIn(a);
    const form = { name: 'Hijacked', redirect_uris: 'https://evil.test/cb', refresh_grace_seconds: '0' };
    const none = await b.post('/dashboard/app', form);
    expect(none.status).toBe(403);
    expect(await none.text()).toContain('did not come from this site');
    const wrong = await b.post('/dashboard/app', { ...form, csrf_token: 'forged' });
    expect(wrong.status).toBe(403);
    expect((await b.post('/dashboard/app/rotate-secret', {})).status).toBe(403);
    expect((await a.api.call('GET', '/api/v1/partner')).body).toMatchObject({ name: 'CSRF Co' });
  });

  it('a CSRF token minted for the wallet sign-in form is refused by the dashboard sign-in', async () => {
    const a = await partnerWithAccount({ name: 'Cross Co' });
    const wallet = await fetch(`${t.url}/wallet/login`);
    const token = formFields(await wallet.text()).csrf_token ?? '';
    const walletCookie = wallet.headers.getSetCookie().find((c) => c.startsWith('tian_csrf='));
    const value = walletCookie?.split(';')[0]?.slice('tian_csrf='.length) ?? '';
    expect(value).toBe(token);
    // Planted as the dashboard's CSRF cookie (a sibling domain can set cookies outside production).
    const res = await fetch(`${t.url}/dashboard/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: `tian_partner_csrf=${value}` },
      body: new URLSearchParams({ csrf_token: token, email: a.email, password: a.password }).toString(),
    });
    expect(res.status).toBe(403);
  });

  it('sign-in attempts are rate limited per address', async () => {
    const limited = await startTestServer({ AUTH_RATE_LIMIT_PER_MINUTE: '3' });
    try {
      const b = new ScriptedBrowser(limited.url);
      const fields = formFields(await (await b.get('/dashboard/login')).text());
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        statuses.push(
          (await b.post('/dashboard/login', { ...fields, email: 'x@y.test', password: 'wrong' })).status,
        );
      }
      expect(statuses).toEqual([401, 401, 401, 429]);
    } finally {
      await limited.stop();
    }
  });
});

describe.runIf(run)('partner dashboard: app settings', () => {
  it('saves name, redirect URIs, scopes, PKCE and the refresh grace window, as the API then shows them', async () => {
    const a = await partnerWithAccount({ name: 'Settings Co', allowedScopes: ['deduct'] });
    const page = await signedInPage(a);
    await check(page, 'dashboard-app-settings');
    await page.getByLabel('App name').fill('Settings Co Reader');
    await page.getByLabel('Redirect URIs').fill('https://settings.test/callback\nhttp://127.0.0.1:8123/cb');
    await page.getByRole('checkbox', { name: /^balance/ }).check();
    await page.getByRole('checkbox', { name: /^deduct/ }).uncheck();
    await page.getByLabel('Require PKCE').check();
    await page.getByLabel('Refresh grace window').fill('30');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect(page.getByRole('status').textContent()).resolves.toContain('Settings saved.');
    const { body } = await a.api.call('GET', '/api/v1/partner');
    expect(body).toMatchObject({
      name: 'Settings Co Reader',
      redirectUris: ['https://settings.test/callback', 'http://127.0.0.1:8123/cb'],
      allowedScopes: ['balance'],
      requirePkce: true,
      refreshGraceSeconds: 30,
    });
    // Reloading shows the saved values, not the notice again.
    await page.reload();
    expect(await page.getByRole('status').count()).toBe(0);
    await expect(page.getByLabel('Refresh grace window').inputValue()).resolves.toBe('30');
  });

  it('refuses redirect URIs the OAuth server would refuse at registration, keeping what was typed', async () => {
    const a = await partnerWithAccount({ name: 'Strict Co' });
    const page = await signedInPage(a);
    const cases: [string, string][] = [
      ['http://strict.test/cb', 'must use https'],
      ['https://strict.test/cb#frag', 'must not have a fragment'],
      ['https://user:pw@strict.test/cb', 'must not carry user credentials'],
      ['https://STRICT.test/cb', 'canonical form'],
      ['/relative', 'Not an absolute URL'],
    ];
    for (const [uri, message] of cases) {
      await page.getByLabel('Redirect URIs').fill(uri);
      await page.getByRole('button', { name: 'Save settings' }).click();
      await expect(page.getByRole('alert').textContent()).resolves.toContain(message);
      await expect(page.getByLabel('Redirect URIs').inputValue()).resolves.toBe(uri);
    }
    await check(page, 'dashboard-app-settings-refused');
    await page.getByLabel('Redirect URIs').fill('https://strict.test/cb');
    await page.getByLabel('App name').fill('   ');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toContain('needs a name');
    expect((await a.api.call('GET', '/api/v1/partner')).body).toMatchObject({
      name: 'Strict Co',
      redirectUris: ['https://partner.test/callback'],
    });
  });

  it('answers bad settings posts with a 400 page naming the problem, never a 500', async () => {
    const a = await partnerWithAccount();
    const { b, csrf } = await scriptedSignIn(a);
    const base = {
      csrf_token: csrf,
      name: 'Ok',
      redirect_uris: 'https://ok.test/cb',
      refresh_grace_seconds: '0',
    };
    const cases: [Record<string, string>, string][] = [
      [{ refresh_grace_seconds: '301' }, 'from 0 to 300'],
      [{ refresh_grace_seconds: '-1' }, 'from 0 to 300'],
      [{ refresh_grace_seconds: '1e2' }, 'from 0 to 300'],
      [{ scopes: 'admin' }, 'There is no scope admin'],
      [{ name: 'x'.repeat(101) }, 'at most 100 characters'],
      [{ name: 'nul\u0000byte' }, 'not allowed'],
    ];
    for (const [patch, message] of cases) {
      const res = await b.post('/dashboard/app', { ...base, ...patch });
      expect(res.status, JSON.stringify(patch)).toBe(400);
      expect(await res.text()).toContain(message);
    }
  });

  it('rotating the client secret shows the new one once; the old API key stops working', async () => {
    const a = await partnerWithAccount();
    const page = await signedInPage(a);
    await page.getByRole('button', { name: 'Rotate client secret' }).click();
    const secret = await page.getByLabel('New client secret').inputValue();
    expect(secret).toMatch(/^tcsk_/);
    await expect(page.getByRole('status').textContent()).resolves.toContain('shown only this once');
    await check(page, 'dashboard-client-secret-rotated');
    expect((await a.api.call('GET', '/api/v1/partner')).status).toBe(401);
    expect((await partnerApi(t, secret).call('GET', '/api/v1/partner')).status).toBe(200);
    await page.reload();
    expect(await page.getByLabel('New client secret').count()).toBe(0);
  });
});

describe.runIf(run)('partner dashboard: webhooks', () => {
  it('adds an endpoint with the Event Filter (one checkbox per event type of openapi.yaml) and shows its signing secret once', async () => {
    const a = await partnerWithAccount();
    const receiver = await WebhookReceiver.start();
    try {
      const page = await signedInPage(a);
      await page.getByRole('link', { name: 'Webhooks' }).click();
      await expect(page.locator('main').textContent()).resolves.toContain('No webhook endpoints yet');
      await check(page, 'dashboard-webhooks-empty');
      const boxes = await page
        .getByRole('checkbox')
        .evaluateAll((els) => els.map((e) => (e as HTMLInputElement).value));
      expect(boxes).toEqual([
        'token.revoked',
        'token.expiring',
        'points.deducted',
        'points.refunded',
        'subscription.created',
        'subscription.renewed',
        'subscription.payment_failed',
        'subscription.canceled',
      ]);

      await page.getByLabel('URL').fill(receiver.url());
      await page.getByRole('button', { name: 'Add endpoint' }).click();
      await expect(page.getByRole('alert').textContent()).resolves.toContain('Tick at least one event type');
      await page.getByLabel('URL').fill('ftp://files.test/hook');
      await page.getByRole('checkbox', { name: /^points\.deducted/ }).check();
      await page.getByRole('button', { name: 'Add endpoint' }).click();
      await expect(page.getByRole('alert').textContent()).resolves.toContain('must use https');
      await check(page, 'dashboard-webhooks-refused');

      await page.getByLabel('URL').fill(receiver.url());
      await page.getByLabel('Description').fill('Main receiver');
      await page.getByRole('button', { name: 'Add endpoint' }).click();
      await page.getByRole('heading', { name: 'Webhook endpoint' }).waitFor();
      const secret = await page.getByLabel('Signing secret').inputValue();
      expect(secret).toMatch(/^whsec_/);
      await check(page, 'dashboard-endpoint-created');

      // The secret verifies what we send.
      await page.getByRole('button', { name: 'Send test event' }).click();
      await t.drainJobs();
      const [ping] = await receiver.waitFor(1);
      expect(ping && WebhookReceiver.verify(ping, secret, t.clock.now())).toMatchObject({
        event: 'test.ping',
      });

      await page.reload();
      expect(await page.getByLabel('Signing secret').count()).toBe(0);
      await page.getByRole('link', { name: 'Webhooks' }).click();
      await expect(page.getByRole('table').textContent()).resolves.toContain(receiver.url());
      await check(page, 'dashboard-webhooks-list');
    } finally {
      await receiver.close();
    }
  });

  it('unticking an event in the Event Filter stops that event reaching the receiver', async () => {
    const a = await partnerWithAccount();
    const receiver = await WebhookReceiver.start();
    try {
      const endpoint = await a.api.createEndpoint(receiver.url(), ['points.deducted', 'points.refunded']);
      const user = await t.user({ points: 1_000 });
      const client = await t.legacyClient(a.partner.clientSecret, user.privyId);
      const deduct = async () => {
        const res = await deductPoints({ client, body: { amount: 5 } });
        expect(res.response.status).toBe(200);
        await t.drainJobs();
      };
      await deduct();
      await receiver.waitFor(1);
      expect(receivedOf(receiver, 'points.deducted')).toBe(1);

      const page = await signedInPage(a);
      await page.goto(`${t.url}/dashboard/webhooks/${endpoint.endpointId}`);
      await page.getByRole('checkbox', { name: /^points\.deducted/ }).uncheck();
      await page.getByRole('button', { name: 'Save endpoint' }).click();
      await expect(page.getByRole('status').textContent()).resolves.toContain('Endpoint saved.');
      expect((await a.api.endpoint(endpoint.endpointId)).body.events).toEqual(['points.refunded']);

      await deduct();
      await deduct();
      // A test ping afterwards proves the deliveries before it had their chance to arrive.
      await page.getByRole('button', { name: 'Send test event' }).click();
      await t.drainJobs();
      await receiver.waitFor(2);
      expect(receivedOf(receiver, 'test.ping')).toBe(1);
      expect(receivedOf(receiver, 'points.deducted')).toBe(1);
    } finally {
      await receiver.close();
    }
  });

  it('shows the delivery log (status, attempts, latency, response) and resends a delivery', async () => {
    const a = await partnerWithAccount();
    const receiver = await WebhookReceiver.start();
    try {
      receiver.always({ status: 200, body: 'thanks from the receiver' });
      const endpoint = await a.api.createEndpoint(receiver.url(), ['points.deducted']);
      const page = await signedInPage(a);
      await page.goto(`${t.url}/dashboard/webhooks/${endpoint.endpointId}`);
      await expect(page.locator('main').textContent()).resolves.toContain('No deliveries yet');
      await page.getByRole('button', { name: 'Send test event' }).click();
      await expect(page.getByRole('status').textContent()).resolves.toContain(
        'test.ping event is on its way',
      );
      await t.drainJobs();
      await receiver.waitFor(1);
      await page.reload();
      const row = page.getByRole('row').filter({ hasText: 'test.ping' });
      await expect(row.textContent()).resolves.toMatch(
        /succeeded\s*1\s*200\s*thanks from the receiver\s*\d+ ms/,
      );
      await check(page, 'dashboard-endpoint-delivery-log');

      await row.getByRole('link').click();
      await page.getByRole('heading', { name: 'Webhook delivery' }).waitFor();
      const attempt = await page.getByRole('table').textContent();
      expect(attempt).toContain('200');
      expect(attempt).toMatch(/\d+ ms/);
      expect(attempt).toContain('thanks from the receiver');
      await check(page, 'dashboard-delivery');

      await page.getByRole('button', { name: 'Resend' }).click();
      await expect(page.getByRole('status').textContent()).resolves.toContain('Resent');
      await t.drainJobs();
      const both = await receiver.waitFor(2);
      expect(both[1]?.headers['webhook-id']).toBe(both[0]?.headers['webhook-id']);
    } finally {
      await receiver.close();
    }
  });

  it('disables and enables an endpoint, and recovers the deliveries that failed since a time', async () => {
    const a = await partnerWithAccount();
    const receiver = await WebhookReceiver.start();
    try {
      const endpoint = await a.api.createEndpoint(receiver.url(), ['points.deducted']);
      const user = await t.user({ points: 1_000 });
      const client = await t.legacyClient(a.partner.clientSecret, user.privyId);
      const since = new Date(t.clock.now().getTime() - 60_000).toISOString().slice(0, 16);

      const page = await signedInPage(a);
      await page.goto(`${t.url}/dashboard/webhooks/${endpoint.endpointId}`);
      await page.getByRole('button', { name: 'Disable endpoint' }).click();
      await expect(page.getByRole('status').textContent()).resolves.toContain('Endpoint disabled');
      await expect(page.locator('main').textContent()).resolves.toContain('Disabled (manual)');
      await check(page, 'dashboard-endpoint-disabled');

      // Disabled: events are logged as failed, nothing is sent; a test event is refused on the page.
      expect((await deductPoints({ client, body: { amount: 7 } })).response.status).toBe(200);
      await t.drainJobs();
      expect(receiver.received).toHaveLength(0);
      await page.getByRole('button', { name: 'Send test event' }).click();
      await expect(page.getByRole('alert').textContent()).resolves.toContain('is disabled; enable it first');

      await page.getByRole('button', { name: 'Enable endpoint' }).click();
      await expect(page.getByRole('status').textContent()).resolves.toContain('Endpoint enabled.');
      t.clock.advance(1_000);
      await page.getByLabel('Resend the events whose delivery failed since').fill(since);
      await page.getByRole('button', { name: 'Recover' }).click();
      await expect(page.getByRole('status').textContent()).resolves.toContain('1 failed delivery');
      await t.drainJobs();
      const [got] = await receiver.waitFor(1);
      expect(JSON.parse(got?.body ?? '{}')).toMatchObject({ event: 'points.deducted', amount: 7 });
      await check(page, 'dashboard-endpoint-recovered');
    } finally {
      await receiver.close();
    }
  });

  it('rotates the signing secret: the new one is shown once and signs the next delivery', async () => {
    const a = await partnerWithAccount();
    const receiver = await WebhookReceiver.start();
    try {
      const endpoint = await a.api.createEndpoint(receiver.url(), ['points.deducted']);
      const page = await signedInPage(a);
      await page.goto(`${t.url}/dashboard/webhooks/${endpoint.endpointId}`);
      await page.getByRole('button', { name: 'Rotate signing secret' }).click();
      const secret = await page.getByLabel('New signing secret').inputValue();
      expect(secret).toMatch(/^whsec_/);
      expect(secret).not.toBe(endpoint.secret);
      await check(page, 'dashboard-signing-secret-rotated');
      await page.getByRole('button', { name: 'Send test event' }).click();
      await t.drainJobs();
      const [ping] = await receiver.waitFor(1);
      expect(ping && WebhookReceiver.verify(ping, secret, t.clock.now())).toMatchObject({
        event: 'test.ping',
      });
    } finally {
      await receiver.close();
    }
  });

  it('edits and deletes an endpoint, refusing bad input on the page', async () => {
    const a = await partnerWithAccount();
    const endpoint = await a.api.createEndpoint('https://hooks.partner.test/a', ['token.revoked']);
    const page = await signedInPage(a);
    await page.goto(`${t.url}/dashboard/webhooks/${endpoint.endpointId}`);
    await page.getByLabel('URL').fill('https://10.0.0.1/hook');
    await page.getByRole('button', { name: 'Save endpoint' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toContain('private networks');
    await expect(page.getByLabel('URL').inputValue()).resolves.toBe('https://10.0.0.1/hook');
    await check(page, 'dashboard-endpoint-refused');
    await page.getByLabel('URL').fill('https://hooks.partner.test/b');
    await page.getByLabel('Description').fill('Renamed');
    await page.getByRole('button', { name: 'Save endpoint' }).click();
    await expect(page.getByRole('status').textContent()).resolves.toContain('Endpoint saved.');
    expect((await a.api.endpoint(endpoint.endpointId)).body).toMatchObject({
      url: 'https://hooks.partner.test/b',
      description: 'Renamed',
      events: ['token.revoked'],
    });
    await page.getByRole('button', { name: 'Delete endpoint' }).click();
    await expect(page.getByRole('status').textContent()).resolves.toContain('Endpoint deleted.');
    expect((await a.api.endpoint(endpoint.endpointId)).status).toBe(404);
  });

  it("one partner can neither see nor change another partner's endpoints or deliveries (404 page)", async () => {
    const owner = await partnerWithAccount();
    const other = await partnerWithAccount();
    const endpoint = await owner.api.createEndpoint('https://hooks.owner.test/x', ['points.deducted']);
    const ping = await owner.api.ping(endpoint.endpointId);
    const { b, csrf } = await scriptedSignIn(other);

    const view = await b.get(`/dashboard/webhooks/${endpoint.endpointId}`);
    expect(view.status).toBe(404);
    expect(await view.text()).toContain(`No webhook endpoint ${endpoint.endpointId}`);
    expect((await b.get(`/dashboard/deliveries/${ping.body.deliveryId}`)).status).toBe(404);
    expect(await (await b.get('/dashboard/webhooks')).text()).not.toContain('hooks.owner.test');

    const posts: [string, Record<string, string>][] = [
      ['', { url: 'https://hooks.other.test/x', events: 'points.deducted' }],
      ['/enabled', { enabled: 'false' }],
      ['/test', {}],
      ['/rotate-secret', {}],
      ['/recover', { since: '2026-01-01T00:00' }],
      ['/delete', {}],
    ];
    for (const [path, form] of posts) {
      const res = await b.post(`/dashboard/webhooks/${endpoint.endpointId}${path}`, {
        csrf_token: csrf,
        ...form,
      });
      expect(res.status, path).toBe(404);
    }
    expect(
      (await b.post(`/dashboard/deliveries/${ping.body.deliveryId}/resend`, { csrf_token: csrf })).status,
    ).toBe(404);
    expect((await owner.api.endpoint(endpoint.endpointId)).body).toMatchObject({
      url: 'https://hooks.owner.test/x',
      enabled: true,
      secretRotatedAt: null,
    });
    expect((await owner.api.deliveries()).body.data).toHaveLength(1);

    const page = await signedInPage(other);
    const res = await page.goto(`${t.url}/dashboard/webhooks/${endpoint.endpointId}`);
    expect(res?.status()).toBe(404);
    await check(page, 'dashboard-not-found');
  });

  it('answers bad webhook inputs with a clear 4xx page, never a 500', async () => {
    const a = await partnerWithAccount();
    const endpoint = await a.api.createEndpoint('https://hooks.bad.test/x', ['points.deducted']);
    const { b, csrf } = await scriptedSignIn(a);
    const ep = `/dashboard/webhooks/${endpoint.endpointId}`;
    const cases: [string, Record<string, string>, number, string][] = [
      [
        '/dashboard/webhooks',
        { url: 'https://x.test/h', events: 'no.such.event' },
        400,
        'no event type no.such.event',
      ],
      [
        '/dashboard/webhooks',
        { url: `https://x.test/${'a'.repeat(2000)}`, events: 'points.deducted' },
        400,
        'longer than 2000',
      ],
      [
        '/dashboard/webhooks',
        { url: 'https://x.test/h', events: 'points.deducted', description: 'd'.repeat(501) },
        400,
        'longer than 500',
      ],
      [
        '/dashboard/webhooks',
        { url: 'not a url', events: 'points.deducted' },
        422,
        'not a valid absolute URL',
      ],
      [
        '/dashboard/webhooks',
        { url: 'https://x.test/\u0000', events: 'points.deducted' },
        400,
        'not allowed',
      ],
      [`${ep}/recover`, { since: 'yesterday' }, 400, 'as a date and time'],
      [`${ep}/recover`, { since: '2999-01-01T00:00' }, 422, 'in the future'],
      [`${ep}/enabled`, { enabled: 'maybe' }, 400, 'whether to enable'],
      ['/dashboard/webhooks/not-an-id/test', {}, 404, 'No webhook endpoint'],
      ['/dashboard/deliveries/wd_%00/resend', {}, 404, 'No webhook delivery'],
    ];
    for (const [path, form, status, message] of cases) {
      const res = await b.post(path, { csrf_token: csrf, ...form });
      expect(res.status, `${path} ${JSON.stringify(form).slice(0, 80)}`).toBe(status);
      expect(await res.text()).toContain(message);
    }
    expect((await b.get(`${ep}?cursor=%00`)).status).toBe(400);
    expect((await b.get(`${ep}?cursor=!!`)).status).toBe(200);
    expect((await b.get('/dashboard/deliveries/wd_0000000000000000')).status).toBe(404);
  });
});
