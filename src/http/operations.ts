import type { Request, Response } from 'express';
import type { operations } from '../../generated/types.js';
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

export type Input<K extends OperationId> = {
  path: PathOf<K>;
  query: QueryOf<K>;
  body: BodyOf<K>;
  auth: Principal;
  req: Request;
  res: Response;
};

export type Handler<K extends OperationId> = (input: Input<K>) => Promise<Reply<K>>;

/** One handler per operationId: a spec operation without a handler is a type error. */
export type Handlers = { [K in OperationId]: Handler<K> };
