import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import proxyaddr from 'proxy-addr';
import type { Services } from '../container.js';
import { authenticationOf, bearerShortcut } from './auth.js';
import type { DirectChecks, RequestCheck, ResponseCheck } from './direct-checks.js';
import { securityHeaderSetter } from './hardening.js';
import { inputCheck } from './input-guard.js';
import {
  type BearerCheckedHandlers,
  DIRECT_OPERATIONS,
  type DirectHandler,
  type DirectOperationId,
  type Handlers,
} from './operations.js';
import { requestTracker } from './request-log.js';
import type { SpecOperation } from './spec.js';

/**
 * The direct routes: the hot operations (DIRECT_OPERATIONS: balance, deduct, token info) answered
 * on node's own request and response, without express's router, its response helpers and
 * express-openapi-validator's per-request middleware chain (together about as much CPU as the rest
 * of a balance read).
 *
 * They run the very steps of the operation's express route, in its order, as functions: the request
 * id and log line, the security headers, CORS, express.json (the same parser), the input guard,
 * authentication with its rate limits, request validation, the handler, response validation
 * (VALIDATE_RESPONSES). Two steps differ in how, not in what:
 * - validation is a check compiled from openapi.yaml at start-up (direct-checks.ts); a request it
 *   does not pass goes through express-openapi-validator itself, which words the 400 exactly as on
 *   the express route (or lets the request on, should the compiled check be the stricter one);
 * - every error is rendered by the one error renderer (error-renderer.ts), inside a bare express app.
 *
 * A direct route takes only a request in the plain shape clients send (plainShape): exactly the
 * operation's path, no query string, no body on a GET, a JSON body on a POST, not conditional.
 * Anything else (HEAD, a trailing slash, a query, a form body, If-None-Match, ...) goes to express,
 * so each oddity keeps the one answer the express route gives it. `DIRECT_ROUTES=false` turns them off.
 */
export type DirectRouteDeps = {
  services: Services;
  handlers: Handlers;
  operations: readonly SpecOperation[];
  checks: DirectChecks;
  /** express.json as the express routes use it. */
  parseJson: RequestHandler;
  /** The CORS step of an operation (CorsPolicy.forOperation). */
  cors: (op: SpecOperation) => RequestHandler[];
  /** express-openapi-validator's request chain for an operation (validator.ts forOperation). */
  validatorSteps: (op: SpecOperation) => RequestHandler[];
  errorRenderer: ErrorRequestHandler;
  /** Handlers that check the bearer token in their own statement (the deduct's one round trip). */
  bearerChecked?: BearerCheckedHandlers;
  inflight: Set<Promise<unknown>>;
  /** Applies the API app's express settings (trust proxy, no ETag, no X-Powered-By) to a helper app. */
  configure: (app: express.Express) => void;
};

type Route = {
  readsBody: boolean;
  run(req: IncomingMessage, res: ServerResponse): Promise<void>;
};

/** The server's request listener: a direct route when one takes the request, else the express app. */
export function withDirectRoutes(app: express.Express, deps: DirectRouteDeps): RequestListener {
  const routes = new Map<string, Route>();
  for (const id of DIRECT_OPERATIONS) {
    const op = deps.operations.find((o) => o.operationId === id);
    if (!op) throw new Error(`openapi.yaml has no operation ${id}`);
    routes.set(
      `${op.method.toUpperCase()} ${op.path}`,
      directRoute(op, { ...deps, trustProxyFn: app.get('trust proxy fn') }),
    );
  }
  return (req, res) => {
    const route = routes.get(`${req.method} ${req.url}`);
    if (route && plainShape(req, route.readsBody)) {
      void route.run(req, res);
      return;
    }
    app(req, res);
  };
}

/** A JSON media type as express.json reads it (type-is `application/json`, any parameters). */
const JSON_TYPE = /^application\/json\s*(?:;|$)/i;

function plainShape(req: IncomingMessage, readsBody: boolean): boolean {
  const h = req.headers;
  // A conditional request: express's res.json may answer it 304 (req.fresh); that stays express's.
  if (h['if-none-match'] !== undefined || h['if-modified-since'] !== undefined) return false;
  if (!readsBody) return h['content-length'] === undefined && h['transfer-encoding'] === undefined;
  return JSON_TYPE.test(h['content-type'] ?? '');
}

type TrustFn = (addr: string, i: number) => boolean;

function directRoute(op: SpecOperation, deps: DirectRouteDeps & { trustProxyFn: TrustFn }): Route {
  const { services, checks, inflight } = deps;
  const id = op.operationId as DirectOperationId;
  const handler = deps.handlers[id] as DirectHandler<DirectOperationId>;
  const track = requestTracker(services);
  const setSecurityHeaders = securityHeaderSetter(services.config);
  const cors = deps.cors(op);
  const guard = inputCheck(op);
  const authenticate = authenticationOf(op, services);
  const requestValid: RequestCheck = checks.request(op);
  const responseValid: ResponseCheck | undefined = services.config.validateResponses
    ? checks.response(op)
    : undefined;
  // The validator's request steps only: responses are checked by the compiled check (responseValid).
  const validateAsExpress = inExpress(
    deps.configure,
    deps.validatorSteps(op).filter((step) => step.name !== 'responseMiddleware'),
  );
  const renderError = errorsInExpress(deps.configure, deps.errorRenderer, responseValid);
  const readsBody = op.method !== 'get';
  const EMPTY = Object.freeze({});
  // express compiled 'trust proxy' into this function when the API app was configured.
  const trustProxy = deps.trustProxyFn;

  const bearerChecked = deps.bearerChecked?.[id as keyof BearerCheckedHandlers];
  const shortcut = bearerChecked ? bearerShortcut(op, services) : undefined;
  /** A handler's run, known to shutdown until it settles (see AppOptions.inflight). */
  const tracked = <T>(running: Promise<T>): Promise<T> => {
    inflight.add(running);
    return running.finally(() => inflight.delete(running));
  };
  const respond = (
    res: ServerResponse,
    reply: { status: number; body: unknown; headers?: Record<string, string> },
  ) => {
    responseValid?.(reply.status, reply.body);
    send(res, reply.status, reply.body, reply.headers);
  };

  const run = async (node: IncomingMessage, out: ServerResponse) => {
    const start = performance.now();
    // Typed as express's: the steps below read only what node's objects have (see requestTracker).
    const req = node as Request;
    const res = out as Response;
    res.locals = { operation: op } as Response['locals'];
    track(req, res, start);
    setSecurityHeaders(res);
    try {
      for (const step of cors) await runStep(step, req, res);
      if (readsBody) await runStep(deps.parseJson, req, res);
      else req.body = undefined;
      const { headers } = req;
      const body: unknown = req.body;
      const bad = guard({ params: EMPTY, query: EMPTY, body, authorization: headers.authorization });
      if (bad) throw bad;
      // The client address as express's req.ip reads it ('trust proxy').
      const ip = proxyaddr(node, trustProxy);
      const valid = requestValid(headers, body);
      // The deduct: with a token that authenticated here before, one statement checks it and deducts.
      const admitted = valid && shortcut ? shortcut.admit({ headers, ip }) : undefined;
      if (admitted && bearerChecked) {
        req.principal = admitted.principal;
        const input = { path: EMPTY, query: EMPTY, body, auth: admitted.principal, headers, ip };
        const reply = await tracked(
          bearerChecked(input as Parameters<typeof bearerChecked>[0], admitted.bearer),
        );
        if (reply) return respond(res, reply);
        // Not granted: the usual way decides, and its log line names whom it authenticated, if anyone.
        shortcut?.refused(admitted);
        delete req.principal;
      }
      const auth = await authenticate({ headers, ip, body });
      req.principal = auth;
      shortcut?.learn(headers, auth);
      if (!valid) await validateAsExpress(req, res);
      const input = { path: EMPTY, query: EMPTY, body, auth, headers, ip } as Parameters<typeof handler>[0];
      respond(res, await tracked(handler(input)));
    } catch (err) {
      renderError(req, res, err);
    }
  };
  return { readsBody, run };
}

/** What express's res.status(status).json(body) writes (with the API app's settings: no ETag). */
function send(res: ServerResponse, status: number, body: unknown, headers?: Record<string, string>): void {
  if (headers) for (const name in headers) res.setHeader(name, headers[name] as string);
  const json = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(json));
  res.end(json);
}

/** Runs one express middleware; resolves when it calls next(), rejects with what it passes next. */
function runStep(step: RequestHandler, req: Request, res: Response): Promise<void> {
  return new Promise((resolve, reject) => {
    try {
      // As express's router reads next(err): a falsy err (cors passes null) means go on.
      step(req, res, (err?: unknown) => (err ? reject(err) : resolve()));
    } catch (err) {
      reject(asError(err));
    }
  });
}

/** Whatever was thrown, as something express's error chain takes for an error (`next(null)` is not one). */
const asError = (err: unknown): unknown => err || new Error(`non-error thrown: ${String(err)}`);

const SETTLE = Symbol('direct route continuation');
type Pending = Request & { [SETTLE]?: (err?: unknown) => void };

/** A chain of express middleware run inside a bare express app (for the express request and response methods it uses). */
function inExpress(configure: DirectRouteDeps['configure'], steps: RequestHandler[]) {
  const app = express();
  configure(app);
  app.use(...steps, (req: Pending) => req[SETTLE]?.());
  app.use(((err, req: Pending, _res, _next) =>
    req[SETTLE]?.(err ?? new Error('failed'))) as ErrorRequestHandler);
  return (req: Request, res: Response) =>
    new Promise<void>((resolve, reject) => {
      (req as Pending)[SETTLE] = (err?: unknown) => (err === undefined ? resolve() : reject(err));
      app(req, res);
    });
}

/**
 * The error renderer inside a bare express app: a direct route's error answered as the express route
 * answers it. With VALIDATE_RESPONSES, a rendered 4xx is checked against openapi.yaml as the
 * validator checks it on the express route: one that breaks its schema becomes the 500 naming it.
 */
function errorsInExpress(
  configure: DirectRouteDeps['configure'],
  renderer: ErrorRequestHandler,
  responseValid: ResponseCheck | undefined,
) {
  const ERROR = Symbol('direct route error');
  type Failed = Request & { [ERROR]?: unknown };
  const app = express();
  configure(app);
  app.use((req: Failed, res, next) => {
    if (responseValid) {
      const json = res.json.bind(res);
      res.json = (body: unknown) => {
        res.json = json;
        if (res.statusCode < 500) {
          try {
            responseValid(res.statusCode, body);
          } catch (invalid) {
            renderer(invalid, req, res, () => {});
            return res;
          }
        }
        return json(body);
      };
    }
    next(asError(req[ERROR]));
  });
  app.use(renderer);
  return (req: Request, res: Response, err: unknown) => {
    (req as Failed)[ERROR] = err;
    app(req, res);
  };
}
