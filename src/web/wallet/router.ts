import express, { type NextFunction, type Request, type Response } from 'express';
import type { Services } from '../../container.js';
import { Problem } from '../../errors/index.js';
import { addressKey } from '../../http/rate-limits.js';
import { logRequestError } from '../../http/request-log.js';
import { redirectTo } from '../../oauth2/authorize-request.js';
import { findUserByPrivyId, verifyPassword } from '../../users/users.js';
import { CsrfError } from '../shared/csrf.js';
import { assertText, BadFormError, field } from '../shared/form.js';
import { sendPage } from '../shared/html.js';
import { errorPage } from '../shared/layout.js';
import { WalletSessions } from '../shared/sessions.js';
import { signInLimiter } from '../shared/sign-in-limit.js';
import { accountPages } from './account.js';
import { authorizeParamsFrom, checkOrRespond, issuerOf, type WalletDeps } from './authorize-flow.js';
import { loginPage } from './pages.js';
import { walletReturnPath } from './return-to.js';

type Page = (req: Request, res: Response) => Promise<void>;
const wrap =
  (page: Page) =>
  (req: Request, res: Response, next: NextFunction): void => {
    page(req, res).catch(next);
  };

/**
 * The wallet's server-rendered pages: sign-in, consent, sign-out, and the signed-in wallet
 * (account.ts). Mounted before the OpenAPI validator (they are not part of the partner API). Every
 * POST carries a CSRF token and answers 303 See Other (RFC 9700 §4.12).
 */
export function walletPages(s: Services): express.Router {
  const sessions = new WalletSessions(s.db, s.clock, s.config);
  const deps: WalletDeps = { config: s.config, oauth: s.oauth, sessions };
  const router = express.Router();

  // Views of the sign-in page and sign-in attempts have a budget each, per client address.
  const signInViews = signInLimiter(s, 'wallet-sign-in-views');
  const signInAttempts = signInLimiter(s, 'wallet-sign-in-attempts');

  // Every posted field is text before anything reads it: a NUL byte would fail in SQL as a 500.
  router.use('/wallet', (req, _res, next) => {
    assertText(req.body, 'form');
    next();
  });

  /** Who the submitted credentials belong to, or why not (shown on the sign-in page). */
  async function signInUser(body: unknown): Promise<{ id: number; label: string } | string> {
    if (field(body, 'method') === 'privy') {
      const privyId = field(body, 'privy_id') ?? '';
      const sessionToken = field(body, 'session_token') ?? '';
      try {
        await s.privy.verify(sessionToken, privyId);
      } catch {
        return 'The Privy session could not be verified. Sign in to Privy again.';
      }
      const user = await findUserByPrivyId(s.db, privyId);
      return user
        ? { id: user.id, label: user.email ?? privyId }
        : 'There is no askTIAN wallet for this Privy account.';
    }
    const email = field(body, 'email') ?? '';
    const user = await verifyPassword(s.db, email, field(body, 'password') ?? '');
    return user ? { id: user.id, label: user.email ?? email } : 'The email or password is not right.';
  }

  router.get(
    '/wallet/login',
    signInViews,
    wrap(async (req, res) => {
      const visitor = await sessions.visit(req, res);
      const next = walletReturnPath(req.query.next);
      if (visitor.session) return res.redirect(303, next ?? '/wallet');
      sendPage(res, 200, loginPage({ csrf: visitor.csrfToken, next }));
    }),
  );

  router.post(
    '/wallet/login',
    signInAttempts,
    wrap(async (req, res) => {
      const csrf = field(req.body, 'csrf_token');
      const session = await sessions.checkSignInForm(req, csrf);
      const authorize = field(req.body, 'client_id') ? authorizeParamsFrom(req.body) : undefined;
      const next = walletReturnPath(field(req.body, 'next'));
      const user = await signInUser(req.body);
      if (typeof user === 'string') {
        return sendPage(res, 401, loginPage({ csrf: csrf ?? '', authorize, next, error: user }));
      }
      await sessions.signIn(res, session, user);
      // Back to the authorization request (re-validated there), which now shows the consent page;
      // else to the wallet page that sent the visitor to sign in.
      res.redirect(
        303,
        authorize ? `/api/oauth2/authorize?${new URLSearchParams(authorize)}` : (next ?? '/wallet'),
      );
    }),
  );

  router.post(
    '/wallet/consent',
    wrap(async (req, res) => {
      const session = await sessions.checkSessionForm(req, field(req.body, 'csrf_token'));
      const params = authorizeParamsFrom(req.body);
      // The hidden fields are client input: the request is checked again from scratch.
      const request = await checkOrRespond(deps, res, params, 303);
      if (!request) return;
      const iss = issuerOf(s.config);
      if (field(req.body, 'decision') !== 'allow') {
        return res.redirect(
          303,
          redirectTo(request.redirectUri, {
            error: 'access_denied',
            error_description: 'The user denied the request.',
            state: request.state,
            iss,
          }),
        );
      }
      const code = await s.oauth.issueCode(request, session.userId);
      res.redirect(303, redirectTo(request.redirectUri, { code, state: request.state, iss }));
    }),
  );

  router.use(accountPages(s, sessions));

  router.post(
    '/wallet/logout',
    wrap(async (req, res) => {
      const session = await sessions.checkSessionForm(req, field(req.body, 'csrf_token'));
      await sessions.end(res, session);
      res.redirect(303, '/wallet/login');
    }),
  );

  router.use('/wallet', (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof CsrfError) return sendPage(res, 403, errorPage('Request refused', err.message));
    if (err instanceof BadFormError) return sendPage(res, 400, errorPage('Request refused', err.message));
    // A service refused the input (a cursor that names nothing of this user's): its own words.
    if (err instanceof Problem && err.status < 500) {
      return sendPage(res, err.status, errorPage('Request refused', err.message));
    }
    // Internals (SQL errors, stack traces) go to the server log only; the page stays generic.
    logRequestError(req, err, 'wallet page failed: answered 500');
    sendPage(res, 500, errorPage('Something went wrong', 'Please try again in a moment.'));
  });
  return router;
}
