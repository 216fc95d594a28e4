import express, { type NextFunction, type Request, type Response } from 'express';
import type { Services } from '../../container.js';
import { Problem } from '../../errors/index.js';
import { BadFormError, bigIdField, field, idField, isText } from '../shared/form.js';
import { sendPage } from '../shared/html.js';
import type { WalletSession, WalletSessions } from '../shared/sessions.js';
import {
  appsPage,
  badHistoryLinkPage,
  balancePage,
  notificationsPage,
  subscriptionsPage,
  transactionsPage,
  type Viewer,
} from './account-pages.js';

/** Transactions per page of the history; the balance page shows the latest few. */
const HISTORY_PAGE_SIZE = 20;
const LATEST_ON_BALANCE = 5;
/** The subscriptionId pattern of openapi.yaml. */
const SUBSCRIPTION_ID = /^sub_[0-9A-Za-z]{10,40}$/;

type SignedInPage = (req: Request, res: Response, session: WalletSession) => Promise<void>;

/**
 * The signed-in wallet: balance, transaction history, connected apps (revoke), subscriptions
 * (cancel), notifications (dismiss). Reads and changes go through the services; every POST carries
 * the session's CSRF token and answers 303 to the page it came from.
 */
export function accountPages(s: Services, sessions: WalletSessions): express.Router {
  const router = express.Router();
  const viewer = (session: WalletSession): Viewer => ({
    csrf: session.csrfToken,
    userLabel: session.userLabel ?? `user ${session.userId}`,
  });

  /** A page for the signed-in user; a signed-out visitor is sent to sign in and brought back. */
  const signedIn =
    (page: SignedInPage) =>
    (req: Request, res: Response, next: NextFunction): void => {
      sessions
        .current(req)
        .then((session) => {
          if (session) return page(req, res, session);
          res.redirect(303, `/wallet/login?${new URLSearchParams({ next: req.originalUrl })}`);
        })
        .catch(next);
    };
  /** A form for the signed-in user: the session's own CSRF token or a 403 page. */
  const action =
    (act: SignedInPage) =>
    (req: Request, res: Response, next: NextFunction): void => {
      sessions
        .checkSessionForm(req, field(req.body, 'csrf_token'))
        .then((session) => act(req, res, session))
        .catch(next);
    };

  router.get(
    '/wallet',
    signedIn(async (_req, res, session) => {
      const [balance, latest, notifications] = await Promise.all([
        s.points.walletBalance(session.userId),
        s.points.walletTransactions(session.userId, { limit: LATEST_ON_BALANCE }),
        s.notifications.showing(session.userId),
      ]);
      sendPage(
        res,
        200,
        balancePage(viewer(session), { balance, latest, notifications: notifications.length }),
      );
    }),
  );

  router.get(
    '/wallet/transactions',
    signedIn(async (req, res, session) => {
      try {
        const page = await s.points.walletTransactions(session.userId, {
          before: cursorParam(req, 'before'),
          after: cursorParam(req, 'after'),
          limit: HISTORY_PAGE_SIZE,
        });
        sendPage(res, 200, transactionsPage(viewer(session), page));
      } catch (err) {
        // A hand-edited or stale link: a 400 page that keeps the navigation, never a 500.
        const bad = err instanceof BadFormError || (err instanceof Problem && err.status === 400);
        if (!bad) throw err;
        sendPage(res, 400, badHistoryLinkPage(viewer(session), (err as Error).message));
      }
    }),
  );

  router.get(
    '/wallet/apps',
    signedIn(async (_req, res, session) => {
      sendPage(res, 200, appsPage(viewer(session), await s.oauth.connectedApps(session.userId)));
    }),
  );

  // Every token the app holds for this user dies; the app hears `token.revoked` (revokedBy: user).
  router.post(
    '/wallet/apps/revoke',
    action(async (req, res, session) => {
      const partnerId = idField(req.body, 'partner_id', 'an app connected to your wallet');
      await s.oauth.disconnectApp(session.userId, partnerId);
      res.redirect(303, '/wallet/apps');
    }),
  );

  router.get(
    '/wallet/subscriptions',
    signedIn(async (_req, res, session) => {
      const subs = await s.subscriptions.listForWallet(session.userId);
      sendPage(res, 200, subscriptionsPage(viewer(session), subs));
    }),
  );

  router.post(
    '/wallet/subscriptions/cancel',
    action(async (req, res, session) => {
      const id = field(req.body, 'subscription_id') ?? '';
      const when = field(req.body, 'when');
      if (!SUBSCRIPTION_ID.test(id) || (when !== 'now' && when !== 'period_end')) {
        throw new BadFormError('The form did not name one of your subscriptions and when to cancel it.');
      }
      const sub = await s.subscriptions.cancelFromWallet(session.userId, id, {
        atPeriodEnd: when === 'period_end',
      });
      if (!sub) throw new BadFormError('The form did not name one of your subscriptions.');
      res.redirect(303, '/wallet/subscriptions');
    }),
  );

  router.get(
    '/wallet/notifications',
    signedIn(async (_req, res, session) => {
      const notifications = await s.notifications.showing(session.userId);
      sendPage(res, 200, notificationsPage(viewer(session), notifications));
    }),
  );

  router.post(
    '/wallet/notifications/dismiss',
    action(async (req, res, session) => {
      const id = bigIdField(req.body, 'notification_id', 'one of your notifications');
      if ((await s.notifications.dismiss(session.userId, id)) === 'unknown') {
        throw new BadFormError('The form did not name one of your notifications.');
      }
      res.redirect(303, '/wallet/notifications');
    }),
  );

  // The one page the wallet had before these: links to it (in emails already sent) still work.
  router.get('/wallet/settings', (_req, res) => res.redirect(301, '/wallet/apps'));
  return router;
}

/** A cursor from the query: absent, or one plain string (a repeated or odd parameter is a 400 page). */
function cursorParam(req: Request, name: string): string | undefined {
  const v: unknown = req.query[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length > 100 || !isText(v)) {
    throw new BadFormError('The link does not name one of your transactions.');
  }
  return v;
}
