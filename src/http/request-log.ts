import { randomUUID } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { Config } from '../config.js';
import { type Logger, scrubSecrets } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

declare module 'express-serve-static-core' {
  interface Locals {
    /** This request's id: the caller's `X-Request-Id` when it is a sane one, else a fresh UUID. */
    requestId?: string;
    /** The process's logger (lines about this request carry `reqId`: see logRequestError). */
    log?: Logger;
    /** The partner a handler authenticated itself (the OAuth client on the token endpoints). */
    partnerId?: number;
  }
}

/** What we accept as a caller's request id: short, printable, nothing a log line could be forged with. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

export type RequestLogDeps = { config: Pick<Config, 'logRequests'>; log: Logger; metrics: Metrics };

/**
 * First middleware of the app: a request id (echoed in `X-Request-Id`), then, once the response is
 * sent, the latency histogram per operationId and status and (LOG_REQUESTS) one log line. Nothing
 * of the request's query string, headers or body is logged: credential endpoints carry secrets in
 * all three.
 */
export function requestLog(deps: RequestLogDeps) {
  const track = requestTracker(deps);
  return (req: Request, res: Response, next: NextFunction) => {
    track(req, res, performance.now());
    next();
  };
}

/**
 * requestLog's work for one request that started at `start` (performance.now()). The direct routes
 * call it on node's own request and response: it reads only headers, `res.locals` (set beforehand)
 * and `req.principal`, and `req.path` only for a request that matched no operation.
 */
export function requestTracker({ config, log, metrics }: RequestLogDeps) {
  const logRequests = config.logRequests;
  return (req: Request, res: Response, start: number): void => {
    const incoming = req.headers['x-request-id'];
    const reqId = typeof incoming === 'string' && SANE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    res.locals.requestId = reqId;
    res.locals.log = log;
    res.setHeader('X-Request-Id', reqId);
    // A response emits 'close' once: `on` spares the per-request once-wrapper.
    res.on('close', () => {
      const ms = performance.now() - start;
      const operation = res.locals.operation?.operationId;
      const status = res.statusCode;
      metrics.requestDuration.observe({ operation: operation ?? 'other', status }, ms / 1000);
      if (!logRequests) return;
      const principal = req.principal;
      const partnerId = principal && principal.kind !== 'none' ? principal.partner.id : res.locals.partnerId;
      log.info(
        {
          reqId,
          method: req.method,
          // The operation names the route; only what matched no operation (pages, 404s) logs its path.
          ...(operation ? { operationId: operation } : { path: req.path.slice(0, 200) }),
          ...(partnerId === undefined ? {} : { partnerId }),
          status,
          ms: Math.round(ms * 10) / 10,
          ...(res.writableFinished ? {} : { aborted: true }),
        },
        'request',
      );
    });
  };
}

/**
 * Logs a failure while handling a request with its request id and operationId: a 5xx's cause at
 * error with its stack; an expected one (`warn`: the database is unreachable, every request of an
 * outage says so) with its message only. Never the request itself.
 */
export function logRequestError(
  req: Request,
  err: unknown,
  msg: string,
  level: 'error' | 'warn' = 'error',
): void {
  const locals = req.res?.locals;
  const log = locals?.log;
  if (!log) return;
  const fields = {
    reqId: locals?.requestId,
    method: req.method,
    operationId: locals?.operation?.operationId,
  };
  if (level === 'error') log.error({ ...fields, err }, msg);
  else log.warn({ ...fields, error: scrubSecrets(err instanceof Error ? err.message : String(err)) }, msg);
}
