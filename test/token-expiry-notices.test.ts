import { makeWorkerUtils } from 'graphile-worker';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadSpec } from '../src/http/spec.js';
import { addJob } from '../src/jobs/runner.js';
import {
  EXPIRY_NOTICE_DAYS,
  EXPIRY_NOTICE_TASK,
  scanExpiringTokens,
  sendExpiryNotice,
} from '../src/oauth2/expiry-notices.js';
import { formFields, ScriptedBrowser, signInToWallet } from './support/browser.js';
import { startTestServer, type TestServer } from './support/harness.js';
import { tokenRequest } from './support/oauth.js';
import { startSmtpServer, type TestSmtp } from './support/smtp.js';
import { schemaErrors } from './support/spec-schemas.js';

const DAY = 24 * 60 * 60 * 1000;
const PASSWORD = 'correct horse battery';

const spec = loadSpec();

let t: TestServer;
let smtp: TestSmtp;
let seq = 0;

beforeAll(async () => {
  smtp = await startSmtpServer();
  t = await startTestServer({
    SMTP_URL: smtp.url,
    MAIL_FROM: 'askTIAN Wallet <wallet@asktian.test>',
    AUTH_RATE_LIMIT_PER_MINUTE: '1000',
  });
});
afterAll(async () => {
  await t?.stop();
  await smtp?.stop();
});

type Pair = { tokenId: number; accessToken: string; refreshToken: string };

/** A partner, a user (with an email unless told otherwise) and a pair minted now; `issuedAt` is now. */
async function connected(opts: { email?: boolean; server?: TestServer } = {}) {
  const server = opts.server ?? t;
  const n = ++seq;
  const partner = await server.partner({ name: `Expiry App ${n}` });
  const email = opts.email === false ? undefined : `expiry-${n}@example.com`;
  const user = await server.user(email ? { email, password: PASSWORD } : {});
  const issuedAt = server.clock.now().getTime();
  const pair = await mint(server, partner.id, user.id);
  return { partner, user, email, issuedAt, pair };
}

async function mint(server: TestServer, partnerId: number, userId: number): Promise<Pair> {
  const tokens = await server.tokens(partnerId, userId, 'deduct');
  const [row] = await server.db.query<{ id: string }>(
    'select id from oauth_tokens where user_id = $1 order by id desc limit 1',
    [userId],
  );
  return { tokenId: Number(row?.id), ...tokens };
}

/** Moves the clock to `days` after `from` (ms) and runs the minute tick there. */
async function tickAt(from: number, days: number, server: TestServer = t): Promise<void> {
  server.clock.set(new Date(from + days * DAY));
  await server.runDue();
}

async function expiringEvents(tokenId: number, server: TestServer = t) {
  return server.db.query<{ partner_id: number; payload: Record<string, unknown> }>(
    `select partner_id, payload from webhook_events
     where type = 'token.expiring' and (payload->>'tokenId')::bigint = $1 order by id`,
    [tokenId],
  );
}

async function notificationsOf(userId: number, server: TestServer = t) {
  return server.db.query<{
    id: string;
    kind: string;
    details: Record<string, unknown>;
    dismissed_at: Date | null;
    email_sent_at: Date | null;
  }>(
    'select id, kind, details, dismissed_at, email_sent_at from notifications where user_id = $1 order by id',
    [userId],
  );
}

const mailTo = (email: string | undefined) => smtp.messages.filter((m) => m.to.includes(email ?? ''));

async function emailJobs(server: TestServer = t) {
  return server.db.query<{ id: string; attempts: number; last_error: string | null; key: string }>(
    "select id, attempts, last_error, key from graphile_worker.jobs where task_identifier = 'notification-email'",
  );
}

const signIn = (email: string): Promise<ScriptedBrowser> => signInToWallet(t, { email, password: PASSWORD });

/** The fields of the wallet page's form that posts to `action` (its CSRF token and hidden ids). */
function formFor(page: string, action: string): Record<string, string> {
  const index = page.split('<form').findIndex((f) => f.includes(`action="${action}"`)) - 1;
  expect(index).toBeGreaterThanOrEqual(0);
  return formFields(page, index);
}

describe('token expiry notices: when they come', () => {
  it(`a pair ${EXPIRY_NOTICE_DAYS + 1} days before its access token expires gets nothing; at ${EXPIRY_NOTICE_DAYS} days (23 days after issue) it gets exactly one access notice`, async () => {
    const { partner, user, issuedAt, pair } = await connected();
    await tickAt(issuedAt, 22);
    expect(await expiringEvents(pair.tokenId)).toEqual([]);
    expect(await notificationsOf(user.id)).toEqual([]);

    await tickAt(issuedAt, 23);
    await t.runDue();
    await tickAt(issuedAt, 23.5);
    const events = await expiringEvents(pair.tokenId);
    expect(events).toHaveLength(1);
    expect(events[0]?.partner_id).toBe(partner.id);
    expect(events[0]?.payload).toMatchObject({
      expiringToken: 'access',
      expiresAt: new Date(issuedAt + 30 * DAY).toISOString(),
    });
    expect(await notificationsOf(user.id)).toHaveLength(1);
  });

  it('the refresh token gets its own single notice 83 days after issue when the pair was never rotated', async () => {
    const { user, issuedAt, pair } = await connected();
    await tickAt(issuedAt, 23);
    await tickAt(issuedAt, 82);
    expect((await expiringEvents(pair.tokenId)).map((e) => e.payload.expiringToken)).toEqual(['access']);

    await tickAt(issuedAt, 83);
    await tickAt(issuedAt, 84);
    const events = await expiringEvents(pair.tokenId);
    expect(events.map((e) => e.payload.expiringToken)).toEqual(['access', 'refresh']);
    expect(events[1]?.payload.expiresAt).toBe(new Date(issuedAt + 90 * DAY).toISOString());
    expect((await notificationsOf(user.id)).map((n) => n.details.expiringToken)).toEqual([
      'access',
      'refresh',
    ]);
  });

  it('the token.expiring event carries exactly the documented payload', async () => {
    const { user, issuedAt, pair } = await connected();
    await tickAt(issuedAt, 23);
    const [event] = await expiringEvents(pair.tokenId);
    expect(schemaErrors(spec.components.schemas.TokenExpiringEvent, event?.payload)).toBeUndefined();
    expect(event?.payload).toEqual({
      event: 'token.expiring',
      timestamp: new Date(issuedAt + 23 * DAY).toISOString(),
      tokenId: pair.tokenId,
      userId: user.id,
      scope: 'deduct',
      expiresAt: new Date(issuedAt + 30 * DAY).toISOString(),
      expiringToken: 'access',
      daysBefore: 7,
    });
  });

  it('revoked pairs and pairs rotated away get no notice; the successor of a rotation is noticed by its own expiry', async () => {
    const revoked = await connected();
    const revokeRes = await fetch(`${t.url}/api/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        token: revoked.pair.accessToken,
        client_id: revoked.partner.clientId,
        client_secret: revoked.partner.clientSecret,
      }),
    });
    expect(revokeRes.status).toBe(200);

    const rotating = await connected();
    t.clock.set(new Date(rotating.issuedAt + 10 * DAY));
    const refreshRes = await fetch(`${t.url}/api/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'refresh_token',
        refresh_token: rotating.pair.refreshToken,
        client_id: rotating.partner.clientId,
        client_secret: rotating.partner.clientSecret,
      }),
    });
    expect(refreshRes.status).toBe(200);
    const [successor] = await t.db.query<{ id: string }>('select id from oauth_tokens where parent_id = $1', [
      rotating.pair.tokenId,
    ]);
    const successorId = Number(successor?.id);

    // Day 23 of the first pairs: neither is live any more. The successor, issued on day 10, expires
    // on day 40 (access) and day 100 (refresh).
    await tickAt(rotating.issuedAt, 23);
    await tickAt(rotating.issuedAt, 32);
    expect(await expiringEvents(successorId)).toEqual([]);
    await tickAt(rotating.issuedAt, 33);
    await tickAt(rotating.issuedAt, 89);
    expect(await expiringEvents(revoked.pair.tokenId)).toEqual([]);
    expect(await expiringEvents(rotating.pair.tokenId)).toEqual([]);
    expect(await notificationsOf(revoked.user.id)).toEqual([]);
    expect((await expiringEvents(successorId)).map((e) => e.payload)).toEqual([
      expect.objectContaining({
        expiringToken: 'access',
        expiresAt: new Date(rotating.issuedAt + 40 * DAY).toISOString(),
      }),
    ]);
  });

  it('a partner that refreshes every few weeks never hears of expiry', async () => {
    const { partner, user, issuedAt, pair } = await connected();
    let refreshToken = pair.refreshToken;
    for (let day = 20; day <= 120; day += 20) {
      await tickAt(issuedAt, day);
      const res = await tokenRequest(t, {
        grant_type: 'refresh_token',
        refresh_token: refreshToken,
        client_id: partner.clientId,
        client_secret: partner.clientSecret,
      });
      expect(res.status).toBe(200);
      refreshToken = ((await res.json()) as { refresh_token: string }).refresh_token;
      await tickAt(issuedAt, day + 1);
    }
    const events = await t.db.query(
      "select 1 from webhook_events where type = 'token.expiring' and (payload->>'userId')::bigint = $1",
      [user.id],
    );
    expect(events).toEqual([]);
    expect(await notificationsOf(user.id)).toEqual([]);
  });
});

describe('token expiry notices: exactly once', () => {
  it('the scan running twice, the job enqueued twice and two scans racing still notify once per threshold', async () => {
    const { user, email, issuedAt, pair } = await connected();
    t.clock.set(new Date(issuedAt + 23 * DAY));
    const now = t.clock.now();
    // Two scans racing, then a third after them (the job key keeps one job), then the job added
    // twice more without its key.
    await Promise.all([scanExpiringTokens(t.services, now), scanExpiringTokens(t.services, now)]);
    await scanExpiringTokens(t.services, now);
    const payload = { userId: user.id, tokenId: pair.tokenId, expiringToken: 'access' };
    await t.db.transaction(async (tx) => {
      await addJob(tx, EXPIRY_NOTICE_TASK, payload);
      await addJob(tx, EXPIRY_NOTICE_TASK, payload);
    });
    const queued = await t.db.query(
      `select 1 from graphile_worker._private_jobs j join graphile_worker._private_tasks k on k.id = j.task_id
       where k.identifier = $1 and j.payload::jsonb @> $2::jsonb`,
      [EXPIRY_NOTICE_TASK, JSON.stringify({ tokenId: pair.tokenId })],
    );
    expect(queued).toHaveLength(3);
    // Two workers draining at once.
    await Promise.all([t.drainJobs(), t.drainJobs()]);
    await t.runDue();
    expect(await expiringEvents(pair.tokenId)).toHaveLength(1);
    expect(await notificationsOf(user.id)).toHaveLength(1);
    expect(mailTo(email)).toHaveLength(1);
  });

  it('two workers running the same notice at once notify once', async () => {
    const { user, issuedAt, pair } = await connected();
    t.clock.set(new Date(issuedAt + 23 * DAY));
    const payload = { userId: user.id, tokenId: pair.tokenId, expiringToken: 'access' };
    await Promise.all([
      sendExpiryNotice(t.services, payload),
      sendExpiryNotice(t.services, payload),
      sendExpiryNotice(t.services, payload),
    ]);
    expect(await expiringEvents(pair.tokenId)).toHaveLength(1);
    expect(await notificationsOf(user.id)).toHaveLength(1);
    const [notification] = await notificationsOf(user.id);
    const emails = await emailJobs();
    expect(emails.filter((j) => j.key === `notification-email:${notification?.id}`)).toHaveLength(1);
    await t.drainJobs();
  });

  it('a job for a pair that was revoked after the scan queued it does nothing', async () => {
    const { partner, user, issuedAt, pair } = await connected();
    t.clock.set(new Date(issuedAt + 23 * DAY));
    await scanExpiringTokens(t.services, t.clock.now());
    await fetch(`${t.url}/api/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        token: pair.accessToken,
        client_id: partner.clientId,
        client_secret: partner.clientSecret,
      }),
    });
    await t.drainJobs();
    expect(await expiringEvents(pair.tokenId)).toEqual([]);
    expect(await notificationsOf(user.id)).toEqual([]);
  });
});

describe('token expiry notices: what the user sees', () => {
  it("the wallet's notifications page shows the notice with the app's name, which token and when it expires, and the user can dismiss it", async () => {
    const { partner, user, email, issuedAt } = await connected();
    await tickAt(issuedAt, 23);
    const browser = await signIn(email ?? '');
    const page = await (await browser.get('/wallet/notifications')).text();
    const expires = `${new Date(issuedAt + 30 * DAY).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
    expect(page).toContain(`${partner.name}: access token expires ${expires}`);
    expect(page).toContain(`The access token ${partner.name} uses for your wallet expires on ${expires}.`);

    const form = formFor(page, '/wallet/notifications/dismiss');
    const [notification] = await notificationsOf(user.id);
    expect(form.notification_id).toBe(notification?.id);

    const withoutCsrf = await browser.post('/wallet/notifications/dismiss', {
      notification_id: form.notification_id ?? '',
    });
    expect(withoutCsrf.status).toBe(403);
    // A token from a signed-out visitor's sign-in form is not this session's token.
    const anonymous = new ScriptedBrowser(t.url);
    const anonymousCsrf = formFields(await (await anonymous.get('/wallet/login')).text()).csrf_token ?? '';
    const wrongCsrf = await browser.post('/wallet/notifications/dismiss', {
      ...form,
      csrf_token: anonymousCsrf,
    });
    expect(wrongCsrf.status).toBe(403);
    expect((await notificationsOf(user.id))[0]?.dismissed_at).toBeNull();

    const res = await browser.post('/wallet/notifications/dismiss', form);
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe('/wallet/notifications');
    const after = await (await browser.get('/wallet/notifications')).text();
    expect(after).not.toContain('access token expires');
    expect(after).toContain('No notifications.');
    // Still connected: only the notice went away.
    expect(await (await browser.get('/wallet/apps')).text()).toContain(partner.name);
    // Dismissing twice (a double click) is harmless.
    expect((await browser.post('/wallet/notifications/dismiss', form)).status).toBe(303);
  });

  it('dismissing with a malformed id, or the id of someone else’s notification, is a 400 page that changes nothing', async () => {
    const mine = await connected();
    const theirs = await connected();
    await tickAt(mine.issuedAt, 23);
    const browser = await signIn(mine.email ?? '');
    const page = await (await browser.get('/wallet/notifications')).text();
    const form = formFor(page, '/wallet/notifications/dismiss');
    const [other] = await notificationsOf(theirs.user.id);
    const malformed = ['', 'abc', '0', '01', '-1', '1e3', '0x1', ' 1', '99999999999999999999'];
    for (const id of [...malformed, other?.id ?? '']) {
      const res = await browser.post('/wallet/notifications/dismiss', {
        ...form,
        notification_id: id,
      });
      expect(res.status, `notification_id=${id}`).toBe(400);
      expect(res.headers.get('location')).toBeNull();
      expect(await res.text()).toContain('The form did not name one of your notifications.');
    }
    const { notification_id: _, ...withoutId } = form;
    expect((await browser.post('/wallet/notifications/dismiss', withoutId)).status).toBe(400);
    expect((await notificationsOf(theirs.user.id))[0]?.dismissed_at).toBeNull();
    expect((await notificationsOf(mine.user.id))[0]?.dismissed_at).toBeNull();
  });

  it('a notice stops showing once the partner refreshed the pair it warned about', async () => {
    const { partner, email, issuedAt, pair } = await connected();
    await tickAt(issuedAt, 23);
    const res = await fetch(`${t.url}/api/oauth2/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: 'refresh_token',
        refresh_token: pair.refreshToken,
        client_id: partner.clientId,
        client_secret: partner.clientSecret,
      }),
    });
    expect(res.status).toBe(200);
    await t.runDue();
    const wallet = await signIn(email ?? '');
    expect(await (await wallet.get('/wallet/apps')).text()).toContain(partner.name);
    expect(await (await wallet.get('/wallet/notifications')).text()).not.toContain('access token expires');
  });

  it('the email reaches the user once, with the right recipient, subject and the app name in the body', async () => {
    const { partner, user, email, issuedAt } = await connected();
    await tickAt(issuedAt, 23);
    await t.runDue();
    await t.drainJobs();
    const mails = mailTo(email);
    expect(mails).toHaveLength(1);
    const [mail] = mails;
    expect(mail?.to).toEqual([email]);
    expect(mail?.from).toBe('wallet@asktian.test');
    expect(mail?.subject).toBe(`${partner.name}'s access token for your askTIAN Wallet expires in 7 days`);
    expect(mail?.text).toContain(`The access token ${partner.name} uses for your wallet expires on`);
    expect(mail?.text).toContain(`${t.url}/wallet/notifications`);
    expect((await notificationsOf(user.id))[0]?.email_sent_at).not.toBeNull();

    await tickAt(issuedAt, 83);
    const refreshMail = mailTo(email).at(-1);
    expect(mailTo(email)).toHaveLength(2);
    expect(refreshMail?.subject).toBe(`Your askTIAN Wallet connection to ${partner.name} ends in 7 days`);
  });

  it('a user without an email gets the wallet notice and no email', async () => {
    const { user, issuedAt, pair } = await connected({ email: false });
    const before = smtp.messages.length;
    await tickAt(issuedAt, 23);
    expect(await notificationsOf(user.id)).toHaveLength(1);
    expect(await expiringEvents(pair.tokenId)).toHaveLength(1);
    expect(smtp.messages.length).toBe(before);
  });

  it('while the SMTP server is down the email job fails and is retried; the notice is not repeated and the email goes out once it is back', async () => {
    const { user, email, issuedAt, pair } = await connected();
    await smtp.down();
    try {
      await tickAt(issuedAt, 23);
      const [notification] = await notificationsOf(user.id);
      expect(notification?.email_sent_at).toBeNull();
      const key = `notification-email:${notification?.id}`;
      // graphile-worker records a failure just after the drain returns (it does not await it).
      const job = await vi.waitFor(async () => {
        const [failed] = (await emailJobs()).filter((j) => j.key === key && j.last_error !== null);
        if (!failed) throw new Error('the email job has not failed yet');
        return failed;
      });
      expect(job.attempts).toBe(1);
      expect(job.last_error).toMatch(/ECONNREFUSED/);
      // Its retry is due later by graphile-worker's backoff (database time); the scan meanwhile
      // neither repeats the notice nor adds a second email job.
      await t.runDue();
      expect(await expiringEvents(pair.tokenId)).toHaveLength(1);
      expect(await notificationsOf(user.id)).toHaveLength(1);
      expect((await emailJobs()).filter((j) => j.key === key)).toHaveLength(1);
      expect(mailTo(email)).toEqual([]);

      await smtp.up();
      const utils = await makeWorkerUtils({ pgPool: t.services.jobsPool });
      try {
        await utils.rescheduleJobs([job.id], { runAt: new Date(0) });
      } finally {
        await utils.release();
      }
      await t.drainJobs();
      await t.drainJobs();
      expect(mailTo(email)).toHaveLength(1);
      expect((await notificationsOf(user.id))[0]?.email_sent_at).not.toBeNull();
      expect(await expiringEvents(pair.tokenId)).toHaveLength(1);
      await vi.waitFor(async () => expect((await emailJobs()).filter((j) => j.key === key)).toEqual([]));
    } finally {
      await smtp.up().catch(() => {});
    }
  });
});

describe('token expiry notices without SMTP_URL', () => {
  let plain: TestServer;
  beforeAll(async () => {
    plain = await startTestServer();
  });
  afterAll(() => plain?.stop());

  it('the notice and the webhook still happen, and no email is queued or sent', async () => {
    const before = smtp.messages.length;
    const { user, issuedAt, pair } = await connected({ server: plain });
    await tickAt(issuedAt, 23, plain);
    expect(await notificationsOf(user.id, plain)).toHaveLength(1);
    expect(await expiringEvents(pair.tokenId, plain)).toHaveLength(1);
    expect(await emailJobs(plain)).toEqual([]);
    expect((await notificationsOf(user.id, plain))[0]?.email_sent_at).toBeNull();
    expect(smtp.messages.length).toBe(before);
  });
});
