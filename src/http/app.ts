import type { RequestListener } from 'node:http';
import express, { type NextFunction, type Request, type Response } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import type { Services } from '../container.js';
import { Problem } from '../errors/index.js';
import { authenticate } from './auth.js';
import { DirectChecks } from './direct-checks.js';
import { withDirectRoutes } from './direct-routes.js';
import { errorRenderer } from './error-renderer.js';
import { corsPolicy, pageBodyErrors, securityHeaders } from './hardening.js';
import { inputGuard } from './input-guard.js';
import type { BearerCheckedHandlers, Handlers, OperationId, Reply } from './operations.js';
import { requestLog } from './request-log.js';
import { listOperations, loadSpec } from './spec.js';
import { forOperation } from './validator.js';

export type AppOptions = {
  services: Services;
  handlers: Handlers;
  /**
   * Handlers still running. Shutdown waits for them before closing the database: a client that
   * hung up does not stop its handler, which must still finish (or roll back) cleanly.
   */
  inflight?: Set<Promise<unknown>>;
  /** Routers mounted before the API (server-rendered pages). */
  pages?: express.Router[];
  /** The direct routes' one-round-trip handlers (routes.ts bearerCheckedRoutes). */
  bearerChecked?: BearerCheckedHandlers;
};

/** The API's express app alone (tests of the express routes). */
export function createApp(opts: AppOptions): express.Express {
  return createApi(opts).app;
}

/**
 * The API: the express app (every operation, the pages) and the server's request listener, which
 * hands the hot operations' plain requests to the direct routes (direct-routes.ts) unless
 * DIRECT_ROUTES=false, and everything else to the app.
 */
export function createApi({
  services,
  handlers,
  pages = [],
  inflight = new Set(),
  bearerChecked,
}: AppOptions): {
  app: express.Express;
  listener: RequestListener;
} {
  const { config } = services;
  const configure = (a: express.Express) => {
    a.disable('x-powered-by');
    a.set('trust proxy', config.trustProxy);
    a.set('etag', false);
  };
  const app = express();
  configure(app);
  // The request id, then the security headers and `Cache-Control: no-store` (one fixed list).
  app.use(requestLog(services), securityHeaders(config));
  const spec = loadSpec();
  const operations = listOperations(spec);
  const parsers = [
    express.json({ limit: '16kb', strict: true, type: ['application/json', 'application/*+json'] }),
    express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 50 }),
  ];
  const parseBody = bodyParsers(parsers);
  // Server-rendered pages (wallet, dashboard) come first; they parse their own forms. No page lives
  // under /api/: API requests skip the pages' parsers and routes (one lookup per request).
  const pageRoutes = express.Router();
  pageRoutes.use(['/wallet', '/dashboard'], ...parsers, pageBodyErrors);
  for (const router of pages) pageRoutes.use(router);
  app.use((req: Request, res: Response, next: NextFunction) =>
    req.path.startsWith('/api/') ? next() : pageRoutes(req, res, next),
  );

  const validator = OpenApiValidator.middleware({
    apiSpec: spec,
    validateRequests: { allowUnknownQueryParameters: false, coerceTypes: false },
    validateResponses: config.validateResponses ? { removeAdditional: false } : false,
    validateSecurity: false,
    validateFormats: true,
    ignoreUndocumented: false,
  });

  // One route per operation, so a request is matched once and then runs its operation's chain:
  // - the operation is noted first, so every error (even a body the parsers refuse) is rendered in
  //   the format its documented responses use (see error-renderer);
  // - strings PostgreSQL cannot hold (NUL, lone surrogates) and non-finite numbers are a 400 before
  //   anything reads them;
  // - authentication runs before validation, so a caller without credentials learns nothing about inputs;
  // - then openapi.yaml validates the request (and, outside production, the response), and the handler runs.
  // CORS (CORS_ORIGINS): preflights answered here, since no operation documents OPTIONS.
  const cors = corsPolicy(config, operations);
  cors.routePreflights(app);
  for (const op of operations) {
    app[op.method](
      op.expressPath,
      (_req: Request, res: Response, next: NextFunction) => {
        res.locals.operation = op;
        next();
      },
      ...cors.forOperation(op),
      parseBody,
      inputGuard(op),
      authenticate(op, services),
      ...forOperation(validator, op, { validateSecurity: false }),
      handle(handlers, op.operationId, inflight),
    );
  }
  // What no operation matched: the validator names it (404 unknown path, 405 wrong method).
  app.use(validator);

  app.use((req, _res, next) =>
    next(new Problem(404, 'not_found', 'Not found', `No route ${req.method} ${req.path}.`)),
  );
  const renderer = errorRenderer(spec, config);
  app.use(renderer);
  if (!config.directRoutes) return { app, listener: app };
  const listener = withDirectRoutes(app, {
    services,
    handlers,
    operations,
    checks: new DirectChecks(spec),
    parseJson: parsers[0] as express.RequestHandler,
    cors: (op) => cors.forOperation(op),
    validatorSteps: (op) => forOperation(validator, op, { validateSecurity: false }),
    errorRenderer: renderer,
    ...(bearerChecked ? { bearerChecked } : {}),
    inflight,
    configure,
  });
  return { app, listener };
}

function handle(handlers: Handlers, operationId: OperationId, inflight: Set<Promise<unknown>>) {
  const handler = handlers[operationId] as unknown as (input: unknown) => Promise<Reply<OperationId>>;
  return async (req: Request, res: Response, next: NextFunction) => {
    try {
      const running = handler({
        path: req.params,
        query: req.query,
        body: req.body,
        auth: req.principal ?? { kind: 'none' },
        headers: req.headers,
        ip: req.ip ?? '',
        req,
        res,
      });
      inflight.add(running);
      const reply = await running.finally(() => inflight.delete(running));
      if (reply.status === 'handled') return;
      const { status, body, headers } = reply as unknown as {
        status: number;
        body?: unknown;
        headers?: Record<string, string>;
      };
      res.set(headers ?? {});
      if (body === undefined) res.status(status).end();
      else res.status(status).json(body);
    } catch (err) {
      next(err);
    }
  };
}

/**
 * The body parsers as one step. A request without a body (no Content-Length, no Transfer-Encoding:
 * every GET the clients send) skips them exactly as they would skip themselves, without walking
 * two more layers; one with a body, on any operation (a GET's included), goes through both as before.
 */
function bodyParsers(parsers: express.RequestHandler[]): express.RequestHandler {
  const [json, urlencoded] = parsers as [express.RequestHandler, express.RequestHandler];
  return (req, res, next) => {
    // type-is's hasBody, the parsers' own test.
    if (
      req.headers['transfer-encoding'] === undefined &&
      Number.isNaN(Number(req.headers['content-length']))
    ) {
      if (!Reflect.has(req, 'body')) req.body = undefined;
      return next();
    }
    json(req, res, (err?: unknown) => {
      if (err) return next(err);
      try {
        urlencoded(req, res, next);
      } catch (thrown) {
        next(thrown);
      }
    });
  };
}
