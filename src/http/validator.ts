import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { SpecOperation } from './spec.js';

/** What express-openapi-validator's metadata step puts on `req.openapi` (plus the response schema). */
type Metadata = {
  expressRoute: string;
  openApiRoute: string;
  pathParams: Record<string, string>;
  schema: unknown;
  serial: number;
  _responseSchema?: unknown;
};
type WithOpenApi = Request & { openapi?: Metadata };

/**
 * express-openapi-validator's middleware chain for ONE operation's express route, with its route
 * lookup done once instead of on every request.
 *
 * The validator's metadata step finds a request's operation by compiling every path of the spec
 * with path-to-regexp and trying each in turn, per request (a sixth of a balance read's CPU). Here
 * the express route has already chosen the operation, so the first request of the operation runs
 * the validator's own lookup, and the metadata it found (the operation's schema object, as the
 * validator preprocessed it) is kept and set on every later request, with express's decoded path
 * parameters (the same values: both decode the same route's captures). It is kept only when the
 * lookup found this very operation; otherwise every request keeps using the lookup. The request
 * validation itself (ajv, per operation and content type, compiled once by the validator) is
 * unchanged and as strict.
 */
export function forOperation(
  chain: RequestHandler[],
  op: SpecOperation,
  opts: { validateSecurity: boolean },
): RequestHandler[] {
  return (
    chain
      // With validateSecurity off the validator's security step only waits for its spec promise.
      .filter((step) => opts.validateSecurity || step.name !== 'securityMiddleware')
      .map((step) => {
        if (step.name === 'metadataMiddleware') return matchedOnce(step, op);
        if (step.name === 'pathParamsMiddleware') return untilDone(step);
        return step;
      })
  );
}

/**
 * The validator's first step installs its path-parameter handlers on the app on the first request
 * (and rethrows a spec that failed to load); once it has passed, it only costs a promise per request.
 */
function untilDone(step: RequestHandler): RequestHandler {
  let done = false;
  return function pathParamsOnce(req: Request, res: Response, next: NextFunction) {
    if (done) return next();
    return step(req, res, (err?: unknown) => {
      if (err === undefined) done = true;
      next(err);
    });
  };
}

function matchedOnce(lookup: RequestHandler, op: SpecOperation): RequestHandler {
  let known: Omit<Metadata, 'pathParams'> | undefined;
  return function preMatchedMetadata(req: WithOpenApi, res: Response, next: NextFunction) {
    if (known) {
      req.openapi = { ...known, pathParams: req.params as Record<string, string> };
      return next();
    }
    return lookup(req, res, (err?: unknown) => {
      const found = req.openapi;
      if (
        err === undefined &&
        found &&
        found.openApiRoute === op.path &&
        found.expressRoute === op.expressPath
      ) {
        const { pathParams: _, ...rest } = found;
        known = rest;
      }
      next(err);
    });
  };
}
