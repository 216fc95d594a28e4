import express, { type NextFunction, type Request, type Response } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import type { Services } from '../container.js';
import { Problem } from '../errors/index.js';
import { authenticate } from './auth.js';
import { errorRenderer } from './error-renderer.js';
import { inputGuard } from './input-guard.js';
import type { Handlers, OperationId, Reply } from './operations.js';
import { listOperations, loadSpec } from './spec.js';

export type AppOptions = {
  services: Services;
  handlers: Handlers;
  /** Routers mounted before the API (server-rendered pages). */
  pages?: express.Router[];
};

export function createApp({ services, handlers, pages = [] }: AppOptions): express.Express {
  const { config } = services;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  app.set('etag', false);
  app.use(baseHeaders);
  const spec = loadSpec();
  const operations = listOperations(spec);
  // Each operation's errors are rendered in the format its responses document (see error-renderer),
  // set first so that even a body the parsers refuse is answered that way.
  for (const op of operations) {
    app[op.method](op.expressPath, (_req: Request, res: Response, next: NextFunction) => {
      res.locals.operation = op;
      next();
    });
  }
  app.use(
    express.json({ limit: '16kb', strict: true, type: ['application/json', 'application/*+json'] }),
    express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 50 }),
  );
  for (const router of pages) app.use(router);

  // Strings PostgreSQL cannot hold (NUL, lone surrogates) and non-finite numbers: a 400, before anything reads them.
  for (const op of operations) app[op.method](op.expressPath, inputGuard(op));
  // Authentication runs before validation, so a caller without credentials learns nothing about inputs.
  for (const op of operations) app[op.method](op.expressPath, authenticate(op, services));

  app.use(
    OpenApiValidator.middleware({
      apiSpec: spec,
      validateRequests: { allowUnknownQueryParameters: false, coerceTypes: false },
      validateResponses: config.validateResponses ? { removeAdditional: false } : false,
      validateSecurity: false,
      validateFormats: true,
      ignoreUndocumented: false,
    }),
  );

  for (const op of operations) {
    const handler = handlers[op.operationId] as unknown as (input: unknown) => Promise<Reply<OperationId>>;
    app[op.method](op.expressPath, async (req: Request, res: Response, next: NextFunction) => {
      try {
        const reply = await handler({
          path: req.params,
          query: req.query,
          body: req.body,
          auth: req.principal ?? { kind: 'none' },
          req,
          res,
        });
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
    });
  }

  app.use((req, _res, next) =>
    next(new Problem(404, 'not_found', 'Not found', `No route ${req.method} ${req.path}.`)),
  );
  app.use(errorRenderer(spec, config.production));
  return app;
}

function baseHeaders(_req: Request, res: Response, next: NextFunction) {
  res.set({
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
  });
  next();
}
