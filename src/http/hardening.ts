import type { ServerResponse } from 'node:http';
import cors from 'cors';
import type express from 'express';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import helmet from 'helmet';
import type { Config } from '../config.js';
import { sendPage } from '../web/shared/html.js';
import { errorPage } from '../web/shared/layout.js';
import type { SpecOperation } from './spec.js';

/**
 * Security headers on every response (helmet). The API's JSON gets the strictest policy (it loads
 * nothing and is never framed); a page replaces the Content-Security-Policy with its own when it is
 * sent (setPageHeaders: still `default-src 'none'` and `frame-ancestors 'none'`), and keeps the rest:
 * X-Frame-Options DENY, nosniff, no-referrer, cross-origin isolation of the window and the resources,
 * and HSTS in production only (a development server on http://127.0.0.1 must not pin https).
 * Plus `Cache-Control: no-store` (nothing of the API is cacheable; a page may set its own).
 *
 * Helmet's headers do not depend on the request, so helmet runs once, at start-up, against a
 * recording response; each request then sets that fixed list (the hot path's cost was helmet's
 * per-request work and the same headers set twice).
 */
export function securityHeaders(config: Config): RequestHandler {
  const set = securityHeaderSetter(config);
  return (_req, res, next) => {
    set(res);
    next();
  };
}

/** securityHeaders' work on one response (node's own, for the direct routes). */
export function securityHeaderSetter(config: Config): (res: ServerResponse) => void {
  const { headers, removed } = helmetHeaders(config);
  headers.push(['Cache-Control', 'no-store']);
  const names = headers.map(([name]) => name);
  const values = headers.map(([, value]) => value);
  const count = headers.length;
  return (res) => {
    for (let i = 0; i < count; i++) res.setHeader(names[i] as string, values[i] as string);
    for (const name of removed) res.removeHeader(name);
  };
}

/** The headers helmet sets (in its order) and removes, recorded from one run against a stand-in response. */
function helmetHeaders(config: Config): { headers: [string, string][]; removed: string[] } {
  const middleware = helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'none'"],
      },
    },
    xFrameOptions: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    strictTransportSecurity: config.production ? { maxAge: 31_536_000, includeSubDomains: true } : false,
  });
  const headers: [string, string][] = [];
  const removed: string[] = [];
  let done = false;
  const recorder = {
    setHeader(name: string, value: unknown) {
      if (typeof value !== 'string') throw new Error(`helmet set ${name} to a non-string`);
      headers.push([name, value]);
    },
    removeHeader(name: string) {
      removed.push(name);
    },
  };
  middleware({} as Request, recorder as unknown as Response, (err?: unknown) => {
    if (err) throw err;
    done = true;
  });
  if (!done) throw new Error('helmet did not finish synchronously');
  return { headers, removed };
}

/**
 * The operations a partner's web page may call from the browser (CORS), for the origins in
 * CORS_ORIGINS only: those that take the user's OAuth access token (points, subscriptions, token
 * info) and the authorization server metadata. Not the credential endpoints (token, revoke,
 * introspect: they need the client secret, which never belongs in a browser), not the partner API
 * (the API key is a server's secret; the legacy flow's X-API-Key is not an allowed header either),
 * not the authorization endpoint (navigated to, never fetched: RFC 9700 §2.6), not the pages.
 * No credentials mode: the access token is a header, never a cookie.
 */
export function corsAllowed(op: SpecOperation): boolean {
  if (op.operationId === 'getAuthorizationServerMetadata') return true;
  return op.security.some((r) => 'oauth2' in r || 'bearerToken' in r);
}

export type CorsPolicy = {
  /** The CORS step of one operation's chain (empty when it has none). */
  forOperation(op: SpecOperation): RequestHandler[];
  /** Answers preflight OPTIONS requests on the paths that have CORS operations (before the validator). */
  routePreflights(app: express.Express): void;
};

export function corsPolicy(config: Config, operations: readonly SpecOperation[]): CorsPolicy {
  const origins = new Set(config.corsOrigins);
  if (origins.size === 0) return { forOperation: () => [], routePreflights: () => {} };
  const methodsByPath = new Map<string, string[]>();
  for (const op of operations) {
    if (!corsAllowed(op)) continue;
    const methods = methodsByPath.get(op.expressPath) ?? [];
    methods.push(op.method.toUpperCase());
    methodsByPath.set(op.expressPath, methods);
  }
  const options = (methods: string[]) =>
    cors({
      // An origin not listed gets no Access-Control-Allow-Origin at all.
      origin: (origin, done) => done(null, origin !== undefined && origins.has(origin) ? origin : false),
      methods,
      allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'X-Request-Id'],
      // X-Request-Id: a browser app can quote it in a support ticket (the request's log lines carry it).
      exposedHeaders: ['Retry-After', 'Idempotent-Replayed', 'X-Request-Id'],
      credentials: false,
      maxAge: 600,
      optionsSuccessStatus: 204,
    });
  const byPath = new Map([...methodsByPath].map(([path, methods]) => [path, options(methods)]));
  return {
    forOperation: (op) => {
      const handler = corsAllowed(op) ? byPath.get(op.expressPath) : undefined;
      return handler ? [handler] : [];
    },
    routePreflights(app) {
      for (const [path, handler] of byPath) app.options(path, handler);
    },
  };
}

/**
 * A form the pages' body parsers refuse (too large, too many fields, not parseable) is answered as
 * a page, in the pages' own format: 413 for a body over the 16 KiB limit or over 50 fields.
 */
export function pageBodyErrors(err: unknown, _req: Request, res: Response, next: NextFunction): void {
  const type = (err as { type?: unknown } | null)?.type;
  const refused = typeof type === 'string' ? PAGE_BODY_ERRORS[type] : undefined;
  if (!refused || res.headersSent) return next(err);
  sendPage(res, refused.status, errorPage(refused.title, refused.message));
}

const PAGE_BODY_ERRORS: Record<string, { status: number; title: string; message: string }> = {
  'entity.too.large': { status: 413, title: 'Form too large', message: 'Forms are limited to 16 KiB.' },
  'parameters.too.many': { status: 413, title: 'Form too large', message: 'Forms are limited to 50 fields.' },
  'entity.parse.failed': { status: 400, title: 'Bad form', message: 'The form could not be read.' },
  'charset.unsupported': { status: 415, title: 'Bad form', message: 'Send the form as UTF-8.' },
  'encoding.unsupported': {
    status: 415,
    title: 'Bad form',
    message: 'Send the form without a content encoding.',
  },
};
