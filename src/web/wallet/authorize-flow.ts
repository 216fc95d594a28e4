import type { Request, Response } from 'express';
import type { Config } from '../../config.js';
import {
  AUTHORIZE_PARAMS,
  type AuthorizationRequest,
  AuthorizePageError,
  type AuthorizeParams,
  AuthorizeRedirectError,
  redirectTo,
} from '../../oauth2/authorize-request.js';
import type { OAuthService } from '../../oauth2/service.js';
import { assertText, BadFormError } from '../shared/form.js';
import { sendPage } from '../shared/html.js';
import { errorPage } from '../shared/layout.js';
import type { WalletSession, WalletSessions } from '../shared/sessions.js';
import { consentPage, loginPage } from './pages.js';

export type WalletDeps = { config: Config; oauth: OAuthService; sessions: WalletSessions };

/** The authorization request's parameters from a query or a posted form; only strings count. */
export function authorizeParamsFrom(source: unknown): AuthorizeParams {
  const src = typeof source === 'object' && source !== null ? (source as Record<string, unknown>) : {};
  const params: AuthorizeParams = {};
  for (const k of AUTHORIZE_PARAMS) {
    const v = src[k];
    if (typeof v === 'string') params[k] = v;
  }
  return params;
}

export const issuerOf = (config: Config) => config.publicUrl ?? '';

/**
 * Validates the request, answering its error the RFC 6749 §4.1.2.1 way: an HTML page (400) when the
 * client or redirect URI is not trusted, else a redirect with `error`, `state` and `iss` (RFC 9207).
 * `redirectStatus` is 302 from GET /authorize and 303 after a POST (RFC 9700 §4.12).
 */
export async function checkOrRespond(
  deps: WalletDeps,
  res: Response,
  params: AuthorizeParams,
  redirectStatus: 302 | 303,
): Promise<AuthorizationRequest | undefined> {
  try {
    // Nothing is trusted yet, so a NUL byte or broken Unicode (which SQL would fail on) gets the page.
    assertText(params, 'link');
    return await deps.oauth.checkAuthorizationRequest(params);
  } catch (err) {
    if (err instanceof AuthorizePageError || err instanceof BadFormError) {
      sendPage(res, 400, errorPage('This sign-in link is not valid', err.message));
      return undefined;
    }
    if (err instanceof AuthorizeRedirectError) {
      // No body: the spec documents this redirect without one (express's res.redirect adds text).
      res
        .status(redirectStatus)
        .location(
          redirectTo(err.redirectUri, {
            error: err.error,
            error_description: err.message,
            state: err.state,
            iss: issuerOf(deps.config),
          }),
        )
        .end();
      return undefined;
    }
    throw err;
  }
}

/** GET /api/oauth2/authorize: the sign-in page, or the consent page when already signed in. */
export async function showAuthorize(deps: WalletDeps, req: Request, res: Response): Promise<void> {
  const request = await checkOrRespond(deps, res, authorizeParamsFrom(req.query), 302);
  if (!request) return;
  const { session, csrfToken } = await deps.sessions.visit(req, res);
  if (!session) {
    sendPage(
      res,
      200,
      loginPage({ csrf: csrfToken, authorize: request.params, appName: request.partner.name }),
    );
    return;
  }
  showConsent(res, session, request);
}

export function showConsent(res: Response, session: WalletSession, request: AuthorizationRequest): void {
  sendPage(
    res,
    200,
    consentPage({
      csrf: session.csrfToken,
      appName: request.partner.name,
      scopes: request.scopes,
      userLabel: session.userLabel ?? `user ${session.userId}`,
      authorize: request.params,
    }),
    // Chromium applies form-action to the redirect that answers the consent POST.
    [new URL(request.redirectUri).origin],
  );
}
