import type { ErrorRequestHandler, Request, Response } from 'express';
import * as OpenApiValidator from 'express-openapi-validator';
import type { Config } from '../config.js';
import { isConnectionFailure } from '../db/connection-failure.js';
import { OAuthError, Problem, ServiceUnavailable } from '../errors/index.js';
import { sendPage } from '../web/shared/html.js';
import { errorPage } from '../web/shared/layout.js';
import { logRequestError } from './request-log.js';
import { derefIn, type OpenApiDocument, type SpecOperation } from './spec.js';

/**
 * The one error renderer. Which format an error takes is read from openapi.yaml per operation and
 * status, not guessed from the URL: the documented response's media type decides (problem+json,
 * the RFC 6749 error body, or an HTML page for the browser-facing authorize endpoint); a status the
 * operation does not document takes the operation's `x-error-format` (default problem+json).
 */
export type ErrorFormat = 'problem' | 'oauth' | 'html';

declare module 'express-serve-static-core' {
  interface Locals {
    /** Set by the route of each spec operation, so its errors are rendered its way. */
    operation?: SpecOperation;
  }
}

export function errorFormatsOf(spec: OpenApiDocument, op: SpecOperation): (status: number) => ErrorFormat {
  const operation = spec.paths[op.path][op.method];
  const fallback: ErrorFormat = operation['x-error-format'] ?? 'problem';
  const byStatus = new Map<number, ErrorFormat>();
  for (const [status, response] of Object.entries<OpenApiDocument>(operation.responses ?? {})) {
    const format = formatOfResponse(spec, response);
    if (format && /^[45]\d\d$/.test(status)) byStatus.set(Number(status), format);
  }
  return (status) => byStatus.get(status) ?? fallback;
}

function formatOfResponse(spec: OpenApiDocument, response: OpenApiDocument): ErrorFormat | undefined {
  const r = derefIn(spec, response);
  const content = Object.keys(r?.content ?? {});
  if (content.includes('application/problem+json')) return 'problem';
  if (content.includes('text/html')) return 'html';
  if (content.includes('application/json')) return 'oauth';
  return undefined;
}

/** What the renderer reads of the configuration, at render time: the public URL is known only once listening. */
type RendererConfig = Pick<Config, 'production' | 'publicUrl' | 'host' | 'port'>;

export function errorRenderer(spec: OpenApiDocument, config: RendererConfig): ErrorRequestHandler {
  const { production } = config;
  const formats = new Map<string, (status: number) => ErrorFormat>();
  const formatFor = (op: SpecOperation | undefined, status: number): ErrorFormat => {
    if (!op) return 'problem';
    let f = formats.get(op.operationId);
    if (!f) {
      f = errorFormatsOf(spec, op);
      formats.set(op.operationId, f);
    }
    return f(status);
  };
  return (err: HttpError, req, res: Response, _next) => {
    if (res.headersSent) return;
    const problem = toProblem(err, req, production);
    const format = formatFor(res.locals.operation, err instanceof OAuthError ? err.status : problem.status);
    if (format === 'oauth') {
      const o = err instanceof OAuthError ? err : problemToOAuth(problem);
      res.status(o.status).set(o.headers).type('application/json').json(o.toBody());
    } else if (format === 'html') {
      res.set(problem.headers);
      sendPage(res, problem.status, errorPage('This sign-in link is not valid', problem.message));
    } else {
      res
        .status(problem.status)
        .set(problem.headers)
        .type('application/problem+json')
        .json(problem.toBody(config.publicUrl ?? `http://${config.host}:${config.port}`));
    }
  };
}

type HttpError = Error & {
  status?: number;
  statusCode?: number;
  type?: string;
  errors?: { path: string; message: string; errorCode?: string }[];
  path?: string;
};

/** Seconds a client should wait after a database outage answer (the pool's connect timeout is 3 s). */
const OUTAGE_RETRY_AFTER_S = 5;

function toProblem(err: HttpError, req: Request, production: boolean): Problem {
  if (err instanceof Problem) return err;
  // The database is down or dropped us: a transient 503 the client may retry, not a 500 bug.
  if (isConnectionFailure(err)) {
    logRequestError(req, err, 'database unavailable: answered 503', 'warn');
    return new ServiceUnavailable(OUTAGE_RETRY_AFTER_S);
  }
  // Only OAuth operations throw OAuthError; should one reach a problem+json operation, keep its class.
  if (err instanceof OAuthError) {
    return err.status >= 500
      ? new Problem(500, 'internal_error', 'Internal server error', 'Something went wrong on our side.')
      : new Problem(err.status, 'bad_request', 'Invalid request', err.message);
  }
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
  logRequestError(req, err, 'unexpected error: answered 500');
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
  // RFC 6749 §4.1.2.1 names this code for a server that is temporarily unable to handle the request.
  if (p.status === 503) return new OAuthError('temporarily_unavailable', p.message, 503, p.headers);
  if (p.status >= 500) return new OAuthError('server_error', 'Something went wrong on our side.', 500);
  if (p.status === 401) return new OAuthError('invalid_client', p.message, 401);
  return new OAuthError(
    'invalid_request',
    p.message,
    [404, 405, 413, 415].includes(p.status) ? p.status : 400,
  );
}
