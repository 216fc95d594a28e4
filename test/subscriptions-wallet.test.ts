import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formFields, ScriptedBrowser, signInToWallet } from './support/browser.js';
import { FAKE_IDS } from './support/fake-ids.js';
import { startTestServer, type TestServer } from './support/harness.js';

// Users see their subscriptions on the wallet's Subscriptions page (server-rendered, no script) and cancel them
// there with a CSRF-protected form, through real HTTP.

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
  t.clock.set(new Date('2027-01-31T10:00:00.000Z'));
});
afterAll(() => t?.stop());

let seq = 0;
async function signedInUser() {
  const email = `wallet-subs-${++seq}@example.test`;
  const password = 'wallet-subs-password';
  const user = await t.user({ email, password, points: 1000 });
  return { user, browser: await signInToWallet(t, { email, password }) };
}

async function subscribe(userId: number, planName: string, partnerName: string) {
  const partner = await t.partner({ name: partnerName });
  const { body } = await t.services.subscriptions.create(
    { partnerId: partner.id, userId },
    { planName, amount: 100 },
  );
  return {
    partner,
    id: body.subscriptionId,
    get: () => t.services.subscriptions.get({ partnerId: partner.id, userId }, body.subscriptionId),
  };
}

async function subscriptionsPage(browser: ScriptedBrowser) {
  const res = await browser.get('/wallet/subscriptions');
  expect(res.status).toBe(200);
  const page = await res.text();
  return { page, csrf: formFields(page, 0).csrf_token ?? '' };
}

const cancel = (browser: ScriptedBrowser, form: Record<string, string>) =>
  browser.post('/wallet/subscriptions/cancel', form);

describe('subscriptions in the wallet', () => {
  it('lists every subscription of the user with the app, the price and when it renews', async () => {
    const { user, browser } = await signedInUser();
    await subscribe(user.id, 'Pro monthly', 'Acme Reader');
    await subscribe(user.id, 'Storage <b>plus</b>', 'Cloudy');
    const { page } = await subscriptionsPage(browser);
    expect(page).toContain('<h1>Subscriptions</h1>');
    expect(page).toContain('<h2>Pro monthly</h2><p>With Acme Reader, 100 points a month.</p>');
    expect(page).toContain('Renews on 2027-02-28.');
    expect(page).toContain('Next charge: 2027-02-28, 100 points.');
    // Names are escaped, never markup.
    expect(page).toContain('Storage &#60;b&#62;plus&#60;/b&#62;');
    expect(page).not.toContain('<b>plus</b>');
  });

  it('a user without subscriptions is told so', async () => {
    const { browser } = await signedInUser();
    expect((await subscriptionsPage(browser)).page).toContain('You have no subscriptions.');
  });

  it('cancel at period end keeps it until the paid period ends; cancel now ends it and tells the partner', async () => {
    const { user, browser } = await signedInUser();
    const later = await subscribe(user.id, 'Later plan', 'Partner L');
    const now = await subscribe(user.id, 'Now plan', 'Partner N');
    const { csrf } = await subscriptionsPage(browser);

    const first = await cancel(browser, { csrf_token: csrf, subscription_id: later.id, when: 'period_end' });
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe('/wallet/subscriptions');
    expect(await later.get()).toMatchObject({
      status: 'active',
      cancelAtPeriodEnd: true,
      nextChargeAt: null,
    });
    expect((await subscriptionsPage(browser)).page).toContain(
      'Canceled; it ends on 2027-02-28 and is not charged again.',
    );

    const second = await cancel(browser, { csrf_token: csrf, subscription_id: now.id, when: 'now' });
    expect(second.status).toBe(303);
    expect(await now.get()).toMatchObject({ status: 'canceled', endedAt: '2027-01-31T10:00:00.000Z' });
    const events = await t.db.query<{ type: string }>(
      'select type from webhook_events where partner_id = $1 order by id',
      [now.partner.id],
    );
    expect(events.map((e) => e.type)).toEqual(['subscription.created', 'subscription.canceled']);
    const { page } = await subscriptionsPage(browser);
    expect(page).toContain('Ended on 2027-01-31.');
    // An ended subscription has no cancel form any more; canceling it again just comes back.
    expect(page).not.toContain('Cancel Now plan now');
    expect((await cancel(browser, { csrf_token: csrf, subscription_id: now.id, when: 'now' })).status).toBe(
      303,
    );
  });

  it('refuses a form without the session CSRF token (403) and changes nothing', async () => {
    const { user, browser } = await signedInUser();
    const sub = await subscribe(user.id, 'Pro', 'Partner C');
    for (const csrf of [undefined, '', 'not-the-token']) {
      const form: Record<string, string> = { subscription_id: sub.id, when: 'now' };
      if (csrf !== undefined) form.csrf_token = csrf;
      const res = await cancel(browser, form);
      expect(res.status).toBe(403);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    }
    // Another signed-in user's token does not work either, nor does no session at all.
    const other = await signedInUser();
    const { csrf: otherCsrf } = await subscriptionsPage(other.browser);
    expect(
      (await cancel(browser, { csrf_token: otherCsrf, subscription_id: sub.id, when: 'now' })).status,
    ).toBe(403);
    const anonymous = new ScriptedBrowser(t.url);
    expect(
      (await cancel(anonymous, { csrf_token: otherCsrf, subscription_id: sub.id, when: 'now' })).status,
    ).toBe(403);
    expect((await sub.get()).status).toBe('active');
  });

  it('refuses bad or foreign subscription ids and a bad choice with a 400 page, changing nothing', async () => {
    const { user, browser } = await signedInUser();
    const mine = await subscribe(user.id, 'Mine', 'Partner M');
    const stranger = await t.user({ points: 1000 });
    const theirs = await subscribe(stranger.id, 'Theirs', 'Partner T');
    const { csrf } = await subscriptionsPage(browser);
    const bad: Record<string, string>[] = [
      { subscription_id: 'sub_!!', when: 'now' },
      { subscription_id: "1' or 1=1", when: 'now' },
      { subscription_id: '', when: 'now' },
      { when: 'now' },
      { subscription_id: FAKE_IDS.subscriptionId, when: 'now' },
      { subscription_id: theirs.id, when: 'now' },
      { subscription_id: mine.id, when: 'tomorrow' },
      { subscription_id: mine.id },
    ];
    for (const form of bad) {
      const res = await cancel(browser, { csrf_token: csrf, ...form });
      expect(res.status, JSON.stringify(form)).toBe(400);
      expect(await res.text()).toContain('did not name one of your subscriptions');
    }
    expect((await mine.get()).status).toBe('active');
    expect((await theirs.get()).status).toBe('active');
  });
});
