import express, { type ErrorRequestHandler, type NextFunction, type Request, type Response } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import { authenticate } from './auth.js';
import { OAuthError, Problem } from './errors.js';
import { inputGuard } from './input-guard.js';
import type { Handlers, OperationId, Reply } from './operations.js';
import type { Services } from './services.js';
import { listOperations, loadSpec } from './spec.js';

export type AppOptions = {
  services: Services;
  handlers: Handlers;
  /** Routers mounted before the API (server-rendered pages). */
  pages?: express.Router[];
};

const OAUTH_PATH = /^\/api\/oauth2\//;

export function createApp({ services, handlers, pages = [] }: AppOptions): express.Express {
  const { config } = services;
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.trustProxy);
  app.set('etag', false);
  app.use(baseHeaders);
  app.use(
    express.json({ limit: '16kb', strict: true, type: ['application/json', 'application/*+json'] }),
    express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 50 }),
  );
  for (const router of pages) app.use(router);

  const spec = loadSpec();
  const operations = listOperations(spec);

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
  app.use(errorHandler(config.production));
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

type HttpError = Error & {
  status?: number;
  statusCode?: number;
  type?: string;
  errors?: { path: string; message: string; errorCode?: string }[];
  path?: string;
};

/** Renders every error: problem+json on the API, the RFC 6749 body on OAuth endpoints. */
function errorHandler(production: boolean): ErrorRequestHandler {
  return (err: HttpError, req, res, _next) => {
    const oauth = OAUTH_PATH.test(req.path);
    const problem = toProblem(err, req, production);
    if (res.headersSent) return;
    if (oauth && !(err instanceof Problem && problem.status === 401 && req.path.endsWith('/token/info'))) {
      const o = err instanceof OAuthError ? err : problemToOAuth(problem);
      res.status(o.status).set(o.headers).type('application/json').json(o.toBody());
      return;
    }
    res.status(problem.status).set(problem.headers).type('application/problem+json').json(problem.toBody());
  };
}

function toProblem(err: HttpError, req: Request, production: boolean): Problem {
  if (err instanceof Problem) return err;
  if (err instanceof OAuthError) return new Problem(err.status, err.error, 'OAuth error', err.message);
  const status = err.status ?? err.statusCode ?? 500;
  // body-parser
  if (err.type === 'entity.parse.failed')
    return new Problem(400, 'invalid_json', 'Invalid request', 'The body is not valid JSON.');
  if (err.type === 'entity.too.large') {
    return new Problem(
      413,
      'payload_too_large',
      'Payload too large',
      'Request bodies are limited to 16 KiB.',
    );
  }
  if (err.type === 'charset.unsupported' || err.type === 'encoding.unsupported') {
    return new Problem(415, 'unsupported_media_type', 'Unsupported media type', err.message);
  }
  // express-openapi-validator
  if (status === 404)
    return new Problem(404, 'not_found', 'Not found', `No route ${req.method} ${req.path}.`);
  if (status === 405) {
    return new Problem(
      405,
      'method_not_allowed',
      'Method not allowed',
      `${req.method} is not allowed on ${req.path}.`,
    );
  }
  if (status === 415) {
    return new Problem(
      415,
      'unsupported_media_type',
      'Unsupported media type',
      'Send the body as application/json.',
    );
  }
  if (status === 400 && Array.isArray(err.errors)) {
    const errors = err.errors.map((e) => ({ path: e.path, message: e.message }));
    const first = errors[0];
    const param = first?.path.split('/').filter(Boolean).pop();
    return new Problem(
      400,
      'validation_failed',
      'Invalid request',
      first ? `${first.path} ${first.message}` : err.message,
      {
        ...(param ? { param } : {}),
        errors,
      },
    );
  }
  if (status >= 400 && status < 500)
    return new Problem(status, 'bad_request', 'Invalid request', err.message);
  // A 5xx: the cause is logged here only. Its text (a database error, an exception) never reaches the
  // client in any mode; in dev/test a response-validation failure still names the field at fault.
  console.error(`[error] ${req.method} ${req.path}:`, err);
  const responseInvalid = err instanceof OpenApiValidator.error.InternalServerError;
  return new Problem(
    500,
    'internal_error',
    'Internal server error',
    responseInvalid && !production ? err.message : 'Something went wrong on our side.',
  );
}

function problemToOAuth(p: Problem): OAuthError {
  if (p.status === 429) return new OAuthError('slow_down', p.message, 429, p.headers);
  if (p.status >= 500) return new OAuthError('server_error', 'Something went wrong on our side.', 500);
  if (p.status === 401) return new OAuthError('invalid_client', p.message, 401);
  return new OAuthError(
    'invalid_request',
    p.message,
    [404, 405, 413, 415].includes(p.status) ? p.status : 400,
  );
}
