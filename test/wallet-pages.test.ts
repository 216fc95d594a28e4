import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotification } from '../src/notifications/store.js';
import { walletReturnPath } from '../src/web/wallet/return-to.js';
import {
  type ChromiumSuite,
  chromiumAvailable,
  formFields,
  ScriptedBrowser,
  signInToWallet,
  startChromiumSuite,
} from './support/browser.js';
import { expectAccessible, saveScreenshot } from './support/page-checks.js';
import { WebhookReceiver } from './support/webhook-receiver.js';
import { partnerApi } from './support/webhooks.js';

// The signed-in wallet in a real browser: balance, history (paged), connected apps (revoke),
// subscriptions (cancel), notifications (dismiss), sign-out, and the way back after signing in.

const PASSWORD = 'wallet pages password';
const MINUTE = 60_000;

describe('the return path after signing in is a wallet page of this site, nothing else', () => {
  it('keeps wallet paths with their query', () => {
    expect(walletReturnPath('/wallet')).toBe('/wallet');
    expect(walletReturnPath('/wallet/transactions?before=txn_1')).toBe('/wallet/transactions?before=txn_1');
    expect(walletReturnPath('/wallet/apps')).toBe('/wallet/apps');
  });

  it.each([
    'https://evil.example/wallet',
    '//evil.example/wallet',
    '/\\evil.example',
    '/wallet\\..\\..\\evil',
    '/wallet/../api/v1/points/balance',
    '/wallet/%2e%2e/api',
    '/walletx',
    '/wallet/login',
    '/wallet\t/apps',
    'javascript:alert(1)',
    '',
    undefined,
    ['/wallet'],
  ])('refuses %j', (next) => {
    expect(walletReturnPath(next)).toBeUndefined();
  });
});

describe.skipIf(!chromiumAvailable())('the signed-in wallet in a real browser (Chromium)', () => {
  let suite: ChromiumSuite;
  let t: ChromiumSuite['t'];
  let rx: WebhookReceiver;
  let seq = 0;

  beforeAll(async () => {
    suite = await startChromiumSuite({ name: 'Acme Reader', allowedScopes: ['deduct', 'balance'] });
    t = suite.t;
    t.clock.set(new Date('2027-03-01T09:00:00.000Z'));
    rx = await WebhookReceiver.start();
  });
  afterAll(async () => {
    await rx?.close();
    await suite?.stop();
  });

  async function newUser(points = 0) {
    const email = `wallet-pages-${++seq}@example.test`;
    const user = await t.user({ email, password: PASSWORD, points });
    return { ...user, email };
  }

  /** A fresh browser context signed in on /wallet/login, landing on the balance page. */
  async function signedInPage(email: string): Promise<{ context: BrowserContext; page: Page }> {
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(`${t.url}/wallet/login`);
    await signIn(page, email);
    await page.waitForURL(`${t.url}/wallet`);
    return { context, page };
  }

  /** Fails a missing element within seconds, not at the test's timeout. */
  async function newContext(): Promise<BrowserContext> {
    const context = await suite.browser.newContext();
    context.setDefaultTimeout(5_000);
    return context;
  }

  async function signIn(page: Page, email: string) {
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  }

  async function check(page: Page, name: string) {
    await saveScreenshot(page, `wallet-${name}`);
    await expectAccessible(page);
  }

  const rows = (page: Page) => page.locator('tbody tr');

  it('a signed-out visitor is sent to sign in and brought back to the page they asked for', async () => {
    const user = await newUser(100);
    const context = await newContext();
    const page = await context.newPage();
    const res = await fetch(`${t.url}/wallet/subscriptions`, { redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/wallet/login?next=%2Fwallet%2Fsubscriptions');

    await page.goto(`${t.url}/wallet/subscriptions`);
    expect(new URL(page.url()).pathname).toBe('/wallet/login');
    await signIn(page, user.email);
    await page.waitForURL(`${t.url}/wallet/subscriptions`);
    await page.getByRole('heading', { name: 'Subscriptions', level: 1 }).waitFor();
    await context.close();

    // Anything but a wallet page of this site is ignored: no open redirect.
    const b = new ScriptedBrowser(t.url);
    const login = await (await b.get('/wallet/login?next=%2F%2Fevil.example%2Fwallet')).text();
    expect(login).not.toContain('evil.example');
    const signedIn = await b.post('/wallet/login', {
      ...formFields(login),
      next: '//evil.example/wallet',
      method: 'password',
      email: user.email,
      password: PASSWORD,
    });
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.get('location')).toBe('/wallet');
    // Already signed in, the sign-in page goes straight to the (checked) page.
    const again = await b.get('/wallet/login?next=%2Fwallet%2Fapps');
    expect(again.headers.get('location')).toBe('/wallet/apps');
    expect((await b.get('/wallet/login?next=https%3A%2F%2Fevil.example')).headers.get('location')).toBe(
      '/wallet',
    );
  });

  it('a new user sees a zero balance and "No transactions yet" on every list', async () => {
    const user = await newUser();
    const { context, page } = await signedInPage(user.email);
    await page.getByText('Your balance: 0 points').waitFor();
    await page.getByText('No transactions yet').waitFor();
    await check(page, 'balance-empty');

    await page.getByRole('link', { name: 'Transaction history' }).click();
    await page.getByRole('heading', { name: 'Transaction history', level: 1 }).waitFor();
    await page.getByText('No transactions yet').waitFor();
    expect(await page.getByRole('link', { name: 'Older' }).count()).toBe(0);
    await check(page, 'transactions-empty');

    await page.getByRole('link', { name: 'Connected apps' }).click();
    await page.getByText('No apps are connected to your wallet.').waitFor();
    await check(page, 'apps-empty');

    await page.getByRole('link', { name: 'Subscriptions' }).click();
    await page.getByText('You have no subscriptions.').waitFor();
    await check(page, 'subscriptions-empty');

    await page.getByRole('link', { name: 'Notifications' }).click();
    await page.getByText('No notifications.').waitFor();
    await check(page, 'notifications-empty');
    await context.close();
  });

  it('the balance page shows the balance and the latest five transactions with app, amount and status', async () => {
    const user = await newUser(1000);
    const actor = { partnerId: suite.partner.id, userId: user.id };
    const deducted: string[] = [];
    for (let i = 1; i <= 6; i++) {
      t.clock.advance(MINUTE);
      const { body } = await t.services.points.deduct(actor, { amount: 10 * i, description: `Article ${i}` });
      deducted.push(body.transactionId);
    }
    t.clock.advance(MINUTE);
    await t.services.points.refund(actor, deducted[5] ?? '', { reason: 'Duplicate purchase' });

    const { context, page } = await signedInPage(user.email);
    await page.getByText(`Your balance: ${1000 - 210 + 60} points`).waitFor();
    expect(await rows(page).count()).toBe(5);
    const newest = rows(page).first();
    await expect.poll(() => newest.innerText()).toContain('+60 points');
    expect(await newest.innerText()).toContain(`Refund of ${deducted[5]}`);
    expect(await newest.innerText()).toContain('Acme Reader');
    expect(await rows(page).nth(1).innerText()).toMatch(/Article 6[\s\S]*−60 points[\s\S]*Refunded/);
    expect(await rows(page).nth(2).innerText()).toMatch(
      /2027-03-01 09:\d\d UTC[\s\S]*Article 5[\s\S]*−50 points[\s\S]*Completed/,
    );
    await check(page, 'balance');
    await page.getByRole('link', { name: 'All transactions' }).click();
    await page.getByRole('heading', { name: 'Transaction history', level: 1 }).waitFor();
    await context.close();
  });

  it('the history pages 20 at a time, newest first, with Older and Newer links', async () => {
    const user = await newUser(10_000);
    const actor = { partnerId: suite.partner.id, userId: user.id };
    for (let i = 1; i <= 44; i++) {
      t.clock.advance(MINUTE);
      await t.services.points.deduct(actor, { amount: 1, description: `Usage ${i}` });
    }
    // 45 entries: the initial credit and 44 deductions.
    const { context, page } = await signedInPage(user.email);
    await page.goto(`${t.url}/wallet/transactions`);
    const descriptions = async () =>
      (await rows(page).locator('td:nth-child(3)').allInnerTexts()).map((d) => d.split('\n')[0]);
    const first = await descriptions();
    expect(first).toHaveLength(20);
    expect(first[0]).toBe('Usage 44');
    expect(first[19]).toBe('Usage 25');
    expect(await page.getByRole('link', { name: 'Newer' }).count()).toBe(0);
    await check(page, 'transactions-page-1');

    await page.getByRole('link', { name: 'Older' }).click();
    await page.waitForURL(/before=txn_/);
    const second = await descriptions();
    expect(second[0]).toBe('Usage 24');
    expect(second[19]).toBe('Usage 5');

    await page.getByRole('link', { name: 'Older' }).click();
    await page.waitForURL(/before=txn_/);
    expect(await descriptions()).toEqual(['Usage 4', 'Usage 3', 'Usage 2', 'Usage 1', 'Initial balance']);
    expect(await rows(page).last().innerText()).toContain('+10000 points');
    expect(await page.getByRole('link', { name: 'Older' }).count()).toBe(0);
    await check(page, 'transactions-last-page');

    await page.getByRole('link', { name: 'Newer' }).click();
    await page.waitForURL(/after=txn_/);
    expect(await descriptions()).toEqual(second);
    await page.getByRole('link', { name: 'Newer' }).click();
    expect(await descriptions()).toEqual(first);
    expect(await page.getByRole('link', { name: 'Newer' }).count()).toBe(0);
    await context.close();
  });

  it('a cursor that names none of the user’s transactions is a 400 page, never a 500', async () => {
    const user = await newUser(50);
    const stranger = await newUser(50);
    const [theirs] = await t.db.query<{ public_id: string }>(
      'select public_id from ledger_entries where user_id = $1',
      [stranger.id],
    );
    const b = await signInToWallet(t, { email: user.email, password: PASSWORD });
    for (const query of [
      'before=garbage',
      'before=',
      `before=${theirs?.public_id}`,
      'before=txn_0000000000ZZZZZZZZZZZZZZZZ',
      'after=%00',
      'before=a&before=b',
      `before=${theirs?.public_id}&after=${theirs?.public_id}`,
      `before=${'x'.repeat(500)}`,
    ]) {
      const res = await b.get(`/wallet/transactions?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
      const page = await res.text();
      expect(page, query).toMatch(/transactions/);
      expect(page).not.toContain(theirs?.public_id);
    }

    const context = await newContext();
    const page = await context.newPage();
    await page.goto(`${t.url}/wallet/login`);
    await signIn(page, user.email);
    await page.waitForURL(`${t.url}/wallet`);
    const res = await page.goto(`${t.url}/wallet/transactions?before=garbage`);
    expect(res?.status()).toBe(400);
    await page.getByText('The link does not name one of your transactions.').waitFor();
    await check(page, 'transactions-bad-cursor');
    await page.getByRole('link', { name: 'Your latest transactions' }).click();
    await page.getByRole('heading', { name: 'Transaction history', level: 1 }).waitFor();
    await context.close();
  });

  it('revoking an app: its token is inactive at token info and its webhook receiver gets a signed token.revoked', async () => {
    const partner = await t.partner({ name: 'Revoke Me Reader', allowedScopes: ['deduct', 'balance'] });
    const { secret } = await partnerApi(t, partner.clientSecret).createEndpoint(rx.url('/revoke-hook'), [
      'token.revoked',
    ]);
    const user = await newUser(100);
    const tokens = await t.tokens(partner.id, user.id, 'deduct balance');
    const tokenInfo = async () =>
      (await (
        await fetch(`${t.url}/api/oauth2/token/info`, {
          headers: { authorization: `Bearer ${tokens.accessToken}` },
        })
      ).json()) as { active: boolean; revokedAt: string | null };
    expect((await tokenInfo()).active).toBe(true);

    const { context, page } = await signedInPage(user.email);
    await page.getByRole('link', { name: 'Connected apps' }).click();
    await page.getByRole('heading', { name: 'Revoke Me Reader', level: 2 }).waitFor();
    await page.getByText('Deduct TIAN Points from your balance (and refund its own deductions)').waitFor();
    await page.getByText('See your TIAN Points balance and transactions (read-only)').waitFor();
    await check(page, 'apps');

    // Without the session's CSRF token nothing happens.
    const forged = await page.request.post(`${t.url}/wallet/apps/revoke`, {
      form: { partner_id: String(partner.id) },
      maxRedirects: 0,
    });
    expect(forged.status()).toBe(403);
    expect((await tokenInfo()).active).toBe(true);

    const before = rx.received.length;
    await page.getByRole('button', { name: 'Revoke access for Revoke Me Reader' }).click();
    await page.getByText('No apps are connected to your wallet.').waitFor();
    expect(new URL(page.url()).pathname).toBe('/wallet/apps');
    await check(page, 'apps-after-revoke');

    expect(await tokenInfo()).toMatchObject({ active: false, revokedAt: t.clock.now().toISOString() });
    await t.drainJobs();
    const [delivery] = (await rx.waitFor(before + 1)).slice(before);
    expect(delivery?.path).toBe('/revoke-hook');
    const event = WebhookReceiver.verify(delivery as NonNullable<typeof delivery>, secret, t.clock.now());
    expect(event).toMatchObject({ event: 'token.revoked', userId: user.id, revokedBy: 'user' });
    await context.close();
  });

  it('subscriptions show state, next charge date and amount; Cancel at period end, then Cancel now', async () => {
    const user = await newUser(1000);
    const partner = await t.partner({ name: 'Cloud Storage' });
    const { body } = await t.services.subscriptions.create(
      { partnerId: partner.id, userId: user.id },
      { planName: 'Storage plus', amount: 120 },
    );
    const { context, page } = await signedInPage(user.email);
    await page.getByRole('link', { name: 'Subscriptions' }).click();
    await page.getByRole('heading', { name: 'Storage plus', level: 2 }).waitFor();
    await page.getByText('With Cloud Storage, 120 points a month.').waitFor();
    const renews = body.nextChargeAt?.slice(0, 10) ?? 'missing';
    await page.getByText(`Renews on ${renews}.`).waitFor();
    await page.getByText(`Next charge: ${renews}, 120 points.`).waitFor();
    await check(page, 'subscriptions');

    await page.getByRole('button', { name: 'Cancel Storage plus at period end' }).click();
    await page
      .getByText(`Canceled; it ends on ${body.currentPeriodEnd.slice(0, 10)} and is not charged again.`)
      .waitFor();
    await page.getByText('Next charge: none.').waitFor();
    expect(new URL(page.url()).pathname).toBe('/wallet/subscriptions');
    await check(page, 'subscriptions-canceling');

    await page.getByRole('button', { name: 'Cancel Storage plus now' }).click();
    await page.getByText(`Ended on ${t.clock.now().toISOString().slice(0, 10)}.`).waitFor();
    expect(await page.getByRole('button', { name: /Cancel Storage plus/ }).count()).toBe(0);
    await check(page, 'subscriptions-ended');
    await context.close();
  });

  it('notifications show what expires when, and Dismiss marks one read', async () => {
    const user = await newUser();
    await createNotification(t.db, {
      userId: user.id,
      kind: 'token.expiring',
      details: {
        partnerId: suite.partner.id,
        appName: 'Acme Reader',
        tokenId: 1,
        expiringToken: 'refresh',
        expiresAt: '2027-03-08T09:00:00.000Z',
        daysBefore: 7,
      },
      now: t.clock.now(),
      showUntil: new Date('2027-03-08T09:00:00.000Z'),
    });
    const { context, page } = await signedInPage(user.email);
    await page.getByText('You have 1 notification.').waitFor();
    await page.getByRole('link', { name: 'Read it' }).click();
    await page.getByRole('heading', { name: 'Acme Reader: connection ends 2027-03-08 09:00 UTC' }).waitFor();
    await check(page, 'notifications');

    await page.getByRole('button', { name: 'Dismiss' }).click();
    await page.getByText('No notifications.').waitFor();
    expect(new URL(page.url()).pathname).toBe('/wallet/notifications');
    await page.getByRole('link', { name: 'Balance' }).click();
    expect(await page.getByText('You have 1 notification.').count()).toBe(0);
    await context.close();
  });

  it('Sign out ends the session: the wallet pages send the browser to sign in again', async () => {
    const user = await newUser(10);
    const { context, page } = await signedInPage(user.email);
    const cookie = (await context.cookies(t.url)).find((c) => c.name === 'tian_wallet');
    expect(cookie).toBeDefined();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(`${t.url}/wallet/login`);
    await check(page, 'signed-out');
    await page.goto(`${t.url}/wallet/apps`);
    expect(new URL(page.url()).pathname).toBe('/wallet/login');

    // The old cookie is dead on the server too, and sign-out without the CSRF token is refused.
    const stale = await fetch(`${t.url}/wallet`, {
      headers: { cookie: `tian_wallet=${cookie?.value}` },
      redirect: 'manual',
    });
    expect(stale.status).toBe(303);
    const b = await signInToWallet(t, { email: user.email, password: PASSWORD });
    expect((await b.post('/wallet/logout', {})).status).toBe(403);
    expect((await b.get('/wallet')).status).toBe(200);
    await context.close();
  });

  it('the old settings address leads to Connected apps', async () => {
    const res = await fetch(`${t.url}/wallet/settings`, { redirect: 'manual' });
    expect(res.status).toBe(301);
    expect(res.headers.get('location')).toBe('/wallet/apps');
  });
});
