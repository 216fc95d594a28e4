import express, { type NextFunction, type Request, type Response } from 'express';
import type { Services } from '../../container.js';
import { NotFound, Problem } from '../../errors/index.js';
import { logRequestError } from '../../http/request-log.js';
import { verifyPartnerAccount } from '../../partners/accounts.js';
import {
  findPartnerById,
  type NewPartner,
  PartnerInputError,
  rotateClientSecret,
  type Scope,
  updatePartnerSettings,
} from '../../partners/partners.js';
import { endpointNotFound } from '../../webhooks/endpoints.js';
import { CsrfError } from '../shared/csrf.js';
import { assertText, BadFormError, field } from '../shared/form.js';
import { sendPage } from '../shared/html.js';
import { signInLimiter } from '../shared/sign-in-limit.js';
import { type Flash, FlashMessages } from './flash.js';
import {
  type EndpointForm,
  endpointForm,
  eventChoices,
  FormError,
  parameterPattern,
  settingsForm,
  utcTime,
} from './forms.js';
import {
  appPage,
  dashboardErrorPage,
  deliveryPage,
  endpointPage,
  type Frame,
  loginPage,
  webhooksPage,
} from './pages.js';
import { type PartnerSession, PartnerSessions } from './sessions.js';

type Handler = (req: Request, res: Response) => Promise<void>;
const wrap =
  (h: Handler) =>
  (req: Request, res: Response, next: NextFunction): void => {
    h(req, res).catch(next);
  };

/** What a refused action tells the partner: its status and message, or undefined for a real fault. */
function refusal(err: unknown): { status: number; message: string } | undefined {
  if (err instanceof FormError) return { status: err.status, message: err.message };
  if (err instanceof Problem) return { status: err.status, message: err.message };
  if (err instanceof BadFormError || err instanceof PartnerInputError)
    return { status: 400, message: err.message };
  return undefined;
}

const DELIVERY_PAGE = 20;

/**
 * The partner dashboard (issue 11): partner accounts sign in with their own email + password and
 * manage their app's settings and webhooks. Server-rendered, no script; the wallet's session rules
 * (src/web/shared/sessions.ts): hashed session ids, no rows for anonymous visitors, a CSRF token on
 * every POST, 303 after each (RFC 9700 §4.12), frame-busting headers on every page. Every change
 * goes through the same services as the partner API, so the rules are the API's.
 */
export function dashboardPages(s: Services): express.Router {
  const sessions = new PartnerSessions(s.db, s.clock, s.config);
  const flash = new FlashMessages(s.config, s.clock);
  const choices = eventChoices();
  const ENDPOINT_ID = parameterPattern('EndpointId');
  const DELIVERY_ID = parameterPattern('DeliveryId');
  const CURSOR = parameterPattern('Cursor');
  const router = express.Router();
  const signInViews = signInLimiter(s, 'dashboard-sign-in-views');
  const signInAttempts = signInLimiter(s, 'dashboard-sign-in-attempts');

  // Every posted field and query value is text before anything reads it (a NUL byte is a SQL 500).
  router.use('/dashboard', (req, _res, next) => {
    assertText(req.query, 'link');
    assertText(req.body, 'form');
    next();
  });

  /** The signed-in session and the frame of its page, or a 303 to the sign-in page. */
  async function signedIn(
    req: Request,
    res: Response,
  ): Promise<{ session: PartnerSession; frame: Frame } | undefined> {
    const { session } = await sessions.visit(req, res);
    if (!session) {
      res.redirect(303, '/dashboard/login');
      return undefined;
    }
    return {
      session,
      frame: { csrf: session.csrfToken, who: session, flash: flash.take(req, res, session.idHash) },
    };
  }

  /** A POST on a signed-in session: CSRF first (403 without the session's token), then `run`. */
  const post = (path: string, run: (req: Request, res: Response, session: PartnerSession) => Promise<void>) =>
    router.post(
      path,
      wrap(async (req, res) => {
        const session = await sessions.checkSessionForm(req, field(req.body, 'csrf_token'));
        await run(req, res, session);
      }),
    );

  const done = (res: Response, session: PartnerSession, to: string, f: Flash) => {
    flash.set(res, session.idHash, f);
    res.redirect(303, to);
  };

  const endpointId = (req: Request): string => {
    const id = String(req.params.endpointId ?? '');
    if (!ENDPOINT_ID.test(id)) throw endpointNotFound(id);
    return id;
  };
  const deliveryId = (req: Request): string => {
    const id = String(req.params.deliveryId ?? '');
    if (!DELIVERY_ID.test(id)) throw new NotFound('webhook_delivery_not_found', `No webhook delivery ${id}.`);
    return id;
  };

  // --- Sign-in and sign-out ---

  router.get(
    '/dashboard',
    wrap(async (req, res) => {
      const { session } = await sessions.visit(req, res);
      res.redirect(303, session ? '/dashboard/app' : '/dashboard/login');
    }),
  );

  router.get(
    '/dashboard/login',
    signInViews,
    wrap(async (req, res) => {
      const visitor = await sessions.visit(req, res);
      if (visitor.session) return res.redirect(303, '/dashboard/app');
      sendPage(res, 200, loginPage({ csrf: visitor.csrfToken }));
    }),
  );

  router.post(
    '/dashboard/login',
    signInAttempts,
    wrap(async (req, res) => {
      const csrf = field(req.body, 'csrf_token');
      const previous = await sessions.checkSignInForm(req, csrf);
      const email = field(req.body, 'email') ?? '';
      const account = await verifyPartnerAccount(s.db, email, field(req.body, 'password') ?? '');
      if (!account) {
        const error = 'The email or password is not right. Wallet accounts cannot sign in here.';
        return sendPage(res, 401, loginPage({ csrf: csrf ?? '', email, error }));
      }
      await sessions.signIn(res, previous, account);
      res.redirect(303, '/dashboard/app');
    }),
  );

  post('/dashboard/logout', async (_req, res, session) => {
    await sessions.end(res, session);
    res.redirect(303, '/dashboard/login');
  });

  // --- App settings ---

  async function showApp(
    res: Response,
    session: PartnerSession,
    frame: Frame,
    status = 200,
    draft?: NewPartner,
  ) {
    const partner = await s.db.transaction((tx) => findPartnerById(tx, session.partnerId));
    if (!partner) throw new Error(`partner ${session.partnerId} of account ${session.accountId} is gone`);
    const settings: NewPartner = draft ?? {
      name: partner.name,
      redirectUris: partner.redirectUris,
      allowedScopes: partner.allowedScopes as Scope[],
      requirePkce: partner.requirePkce,
      refreshGraceSeconds: partner.refreshGraceSeconds,
    };
    sendPage(
      res,
      status,
      appPage(frame, {
        clientId: partner.clientId,
        secretRotatedAt: partner.secretRotatedAt ?? null,
        settings,
      }),
    );
  }

  router.get(
    '/dashboard/app',
    wrap(async (req, res) => {
      const me = await signedIn(req, res);
      if (me) await showApp(res, me.session, me.frame);
    }),
  );

  post('/dashboard/app', async (req, res, session) => {
    let form: NewPartner | undefined;
    try {
      form = settingsForm(req.body);
      const input = form;
      await s.db.transaction((tx) => updatePartnerSettings(tx, session.partnerId, input));
    } catch (err) {
      const why = refusal(err);
      if (!why) throw err;
      const draft = err instanceof FormError ? (err.values as NewPartner) : form;
      return showApp(
        res,
        session,
        { csrf: session.csrfToken, who: session, error: why.message },
        why.status,
        draft,
      );
    }
    done(res, session, '/dashboard/app', { notice: 'Settings saved.' });
  });

  post('/dashboard/app/rotate-secret', async (_req, res, session) => {
    const { clientSecret } = await s.db.transaction((tx) =>
      rotateClientSecret(tx, session.partnerId, s.clock.now()),
    );
    done(res, session, '/dashboard/app', {
      notice: 'The client secret was rotated. The previous one no longer works.',
      secret: { label: 'New client secret (also your API key)', value: clientSecret },
    });
  });

  // --- Webhooks ---

  async function showWebhooks(
    res: Response,
    session: PartnerSession,
    frame: Frame,
    status = 200,
    draft: Partial<EndpointForm> = {},
  ) {
    const { data } = await s.webhooks.listEndpoints(session.partnerId);
    sendPage(res, status, webhooksPage(frame, data, choices, draft));
  }

  router.get(
    '/dashboard/webhooks',
    wrap(async (req, res) => {
      const me = await signedIn(req, res);
      if (me) await showWebhooks(res, me.session, me.frame);
    }),
  );

  post('/dashboard/webhooks', async (req, res, session) => {
    let form: EndpointForm | undefined;
    let created: Awaited<ReturnType<typeof s.webhooks.createEndpoint>>;
    try {
      form = endpointForm(req.body);
      created = await s.webhooks.createEndpoint(session.partnerId, form);
    } catch (err) {
      const why = refusal(err);
      if (!why) throw err;
      const draft = err instanceof FormError ? (err.values as EndpointForm) : form;
      return showWebhooks(
        res,
        session,
        { csrf: session.csrfToken, who: session, error: why.message },
        why.status,
        draft,
      );
    }
    done(res, session, `/dashboard/webhooks/${created.endpointId}`, {
      notice: 'Endpoint added.',
      secret: { label: 'Signing secret (verify our signatures with it)', value: created.secret },
    });
  });

  async function showEndpoint(
    req: Request,
    res: Response,
    session: PartnerSession,
    frame: Frame,
    status = 200,
    draft?: Partial<EndpointForm>,
  ) {
    const id = endpointId(req);
    const endpoint = await s.webhooks.getEndpoint(session.partnerId, id);
    const raw = typeof req.query.cursor === 'string' ? req.query.cursor : undefined;
    const cursor = raw !== undefined && CURSOR.test(raw) ? raw : undefined;
    const deliveries = await s.webhooks.listDeliveries(session.partnerId, {
      limit: DELIVERY_PAGE,
      endpointId: id,
      cursor,
    });
    const last = await s.webhooks.lastAttempts(
      session.partnerId,
      deliveries.data.map((d) => d.deliveryId),
    );
    sendPage(res, status, endpointPage(frame, endpoint, { ...deliveries, last }, choices, draft));
  }

  router.get(
    '/dashboard/webhooks/:endpointId',
    wrap(async (req, res) => {
      const me = await signedIn(req, res);
      if (me) await showEndpoint(req, res, me.session, me.frame);
    }),
  );

  /**
   * An action on one endpoint: `run` returns what to tell the partner after the 303; a refusal
   * (endpoint disabled, a bad time, a bad URL...) shows the endpoint page again with the reason.
   */
  const endpointAction = (
    path: string,
    run: (req: Request, id: string, session: PartnerSession) => Promise<Flash | 'deleted'>,
  ) =>
    post(`/dashboard/webhooks/:endpointId${path}`, async (req, res, session) => {
      const id = endpointId(req);
      let outcome: Awaited<ReturnType<typeof run>>;
      try {
        outcome = await run(req, id, session);
      } catch (err) {
        const why = refusal(err);
        if (!why || why.status === 404) throw err;
        const draft = err instanceof FormError ? (err.values as EndpointForm) : undefined;
        const frame = { csrf: session.csrfToken, who: session, error: why.message };
        return showEndpoint(req, res, session, frame, why.status, draft);
      }
      if (outcome === 'deleted')
        return done(res, session, '/dashboard/webhooks', { notice: 'Endpoint deleted.' });
      done(res, session, `/dashboard/webhooks/${id}`, outcome);
    });

  endpointAction('', async (req, id, session) => {
    const form = endpointForm(req.body);
    try {
      await s.webhooks.updateEndpoint(session.partnerId, id, {
        url: form.url,
        events: form.events,
        description: form.description ?? '',
      });
    } catch (err) {
      // Shown again as typed, with the reason (a refused URL is the API's 422).
      const why = refusal(err);
      if (!why || why.status === 404) throw err;
      throw new FormError(form, why.message, why.status);
    }
    return { notice: 'Endpoint saved.' };
  });

  endpointAction('/enabled', async (req, id, session) => {
    const value = field(req.body, 'enabled');
    if (value !== 'true' && value !== 'false')
      throw new BadFormError('The form did not say whether to enable the endpoint.');
    await s.webhooks.updateEndpoint(session.partnerId, id, { enabled: value === 'true' });
    return {
      notice:
        value === 'true'
          ? 'Endpoint enabled.'
          : 'Endpoint disabled: nothing is sent to it until you enable it.',
    };
  });

  endpointAction('/test', async (_req, id, session) => {
    const d = await s.webhooks.sendTestPing(session.partnerId, id);
    return { notice: `A test.ping event is on its way (delivery ${d.deliveryId}).` };
  });

  endpointAction('/rotate-secret', async (_req, id, session) => {
    const rotated = await s.webhooks.rotateSecret(session.partnerId, id);
    return {
      notice: `The signing secret was rotated. The previous one also signs until ${rotated.previousSecretExpiresAt}.`,
      secret: { label: 'New signing secret', value: rotated.secret },
    };
  });

  endpointAction('/recover', async (req, id, session) => {
    const since = utcTime(field(req.body, 'since'), 'the start time');
    const r = await s.webhooks.recover(session.partnerId, id, { since });
    return {
      notice:
        r.queued === 0
          ? `No failed deliveries since ${r.since} need resending.`
          : `${r.queued} failed deliver${r.queued === 1 ? 'y' : 'ies'} since ${r.since} queued again.`,
    };
  });

  endpointAction('/delete', async (_req, id, session) => {
    await s.webhooks.deleteEndpoint(session.partnerId, id);
    return 'deleted';
  });

  router.get(
    '/dashboard/deliveries/:deliveryId',
    wrap(async (req, res) => {
      const me = await signedIn(req, res);
      if (!me) return;
      const d = await s.webhooks.getDelivery(me.session.partnerId, deliveryId(req));
      sendPage(res, 200, deliveryPage(me.frame, d));
    }),
  );

  post('/dashboard/deliveries/:deliveryId/resend', async (req, res, session) => {
    const d = await s.webhooks.resendDelivery(session.partnerId, deliveryId(req));
    done(res, session, `/dashboard/webhooks/${d.endpointId}`, {
      notice: `Resent: delivery ${d.deliveryId} of ${d.eventType} is on its way.`,
    });
  });

  router.use('/dashboard', (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    if (err instanceof CsrfError)
      return sendPage(res, 403, dashboardErrorPage('Request refused', err.message, '/dashboard'));
    const why = refusal(err);
    if (why) {
      const title = why.status === 404 ? 'Not found' : 'Request refused';
      return sendPage(res, why.status, dashboardErrorPage(title, why.message, '/dashboard'));
    }
    // Internals (SQL errors, stack traces) go to the server log only; the page stays generic.
    logRequestError(req, err, 'dashboard page failed: answered 500');
    sendPage(
      res,
      500,
      dashboardErrorPage('Something went wrong', 'Please try again in a moment.', '/dashboard'),
    );
  });
  return router;
}
