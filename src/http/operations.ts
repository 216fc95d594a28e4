import type { IncomingHttpHeaders } from 'node:http';
import type { Request, Response } from 'express';
import type { operations } from '../../generated/types.js';
import type { BearerCheck } from '../oauth2/bearer.js';
import type { Principal } from './auth.js';

/**
 * The vocabulary handlers are written in, derived from the generated types: inputs and outputs of
 * every operation come from openapi.yaml, so a spec change shows up here as a type error.
 */
export type OperationId = Exclude<keyof operations, WebhookOperationId>;
/** Webhook (outgoing) operations are named `on...` in openapi.yaml; they have no handler here. */
export type WebhookOperationId = Extract<keyof operations, `on${string}`>;
type Op<K extends OperationId> = operations[K];
type Responses<K extends OperationId> = Op<K>['responses'];
type SuccessStatus<K extends OperationId> = Extract<keyof Responses<K>, 200 | 201 | 202 | 204>;
type ContentOf<R> = R extends { content: { 'application/json': infer B } }
  ? B
  : R extends { content: { 'text/html': infer H } }
    ? H
    : undefined;

export type Reply<K extends OperationId> =
  | {
      [S in SuccessStatus<K>]: {
        status: S;
        body: ContentOf<Responses<K>[S]>;
        headers?: Record<string, string>;
      };
    }[SuccessStatus<K>]
  /** The handler wrote the response itself (redirects, HTML pages). */
  | { status: 'handled' };

type Params<K extends OperationId> = Op<K> extends { parameters: infer P } ? P : never;
export type PathOf<K extends OperationId> = Params<K> extends { path: infer X } ? NonNullable<X> : never;
export type QueryOf<K extends OperationId> = Params<K> extends { query?: infer X } ? NonNullable<X> : never;
export type BodyOf<K extends OperationId> =
  Op<K> extends { requestBody: { content: { 'application/json': infer B } } }
    ? B
    : Op<K> extends { requestBody?: { content: { 'application/json': infer B } } }
      ? B
      : undefined;

/** What a handler reads of a request besides its validated inputs: headers (lower-case names) and the client address. */
export type RequestFacts = {
  headers: IncomingHttpHeaders;
  /** The client's address as `trust proxy` reads it. */
  ip: string;
};

/** A header's value; a repeated one joined with ", " as node:http joins it (express's `req.get` gives the same). */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

export type Input<K extends OperationId> = {
  path: PathOf<K>;
  query: QueryOf<K>;
  body: BodyOf<K>;
  auth: Principal;
  req: Request;
  res: Response;
} & RequestFacts;

export type Handler<K extends OperationId> = (input: Input<K>) => Promise<Reply<K>>;

/**
 * A handler that needs nothing of express: typed inputs and headers in, a reply out. The direct
 * routes (direct-routes.ts) run these without express; the routes table takes them as they are.
 */
export type DirectHandler<K extends OperationId> = (
  input: Omit<Input<K>, 'req' | 'res'>,
) => Promise<Exclude<Reply<K>, { status: 'handled' }>>;

/**
 * A direct handler that checks the caller's bearer token itself, in the statement that does the
 * work (one round trip instead of two): `auth` is the principal the token named when it last
 * authenticated. Undefined when the token does not grant the operation to that principal now:
 * nothing was done, and the caller authenticates the usual way, which words the 401 or 403.
 */
export type BearerCheckedHandler<K extends OperationId> = (
  input: Omit<Input<K>, 'req' | 'res'>,
  bearer: BearerCheck,
) => Promise<Exclude<Reply<K>, { status: 'handled' }> | undefined>;
export type BearerCheckedHandlers = { deductPoints: BearerCheckedHandler<'deductPoints'> };

/**
 * The hot operations, answered by the direct routes (direct-routes.ts) when a request is in the
 * plain shape they take, and by their express route otherwise; so their handlers need no express.
 */
export const DIRECT_OPERATIONS = ['getBalance', 'deductPoints', 'getTokenInfo'] as const;
export type DirectOperationId = (typeof DIRECT_OPERATIONS)[number];

/** One handler per operationId: a spec operation without a handler is a type error. */
export type Handlers = {
  [K in OperationId]: K extends DirectOperationId ? DirectHandler<K> : Handler<K>;
};
