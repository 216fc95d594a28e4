import type { components } from '../../generated/types.js';

/** The error codes openapi.yaml documents (components.schemas.ErrorCode): a new code starts there. */
export type ErrorCode = components['schemas']['ErrorCode'];

type Extra = { param?: string; balance?: number; errors?: { path: string; message: string }[] };

/**
 * An RFC 9457 problem: what handlers and services throw for a 4xx/5xx of the points and partner
 * API. The status is the class of failure, `code` the stable machine-readable reason. One error
 * renderer (src/http/error-renderer.ts) writes it, or the RFC 6749 body on OAuth operations.
 */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    readonly title: string,
    detail: string,
    readonly extra: Extra = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }

  /** The wire body; `type` is the page explaining the code on this server (`publicUrl`, no trailing /). */
  toBody(publicUrl: string) {
    return {
      type: errorTypeUrl(publicUrl, this.code),
      title: this.title,
      status: this.status,
      code: this.code,
      detail: this.message,
      ...this.extra,
    };
  }
}

/** The problem `type` of a code: its page under /docs/errors, served by this same server. */
export const errorTypeUrl = (publicUrl: string, code: ErrorCode): string =>
  `${publicUrl.replace(/\/+$/, '')}/docs/errors/${code}`;

const withParam = (param: string | undefined): Extra => (param ? { param } : {});

/** 400: the request is malformed (`param` names the field at fault). */
export class BadRequest extends Problem {
  constructor(code: ErrorCode, detail: string, param?: string) {
    super(400, code, 'Invalid request', detail, withParam(param));
  }
}

/** 401: who are you? The credentials are missing, wrong, or disagree. */
export class Unauthorized extends Problem {
  constructor(code: ErrorCode, detail: string) {
    super(401, code, 'Unauthorized', detail, {}, { 'WWW-Authenticate': 'Bearer realm="askTIAN"' });
  }
}

/** 402: the user's balance does not cover the amount. */
export class InsufficientPoints extends Problem {
  constructor(balance: number, needed: number) {
    super(
      402,
      'insufficient_points',
      'Insufficient points',
      `The user has ${balance} points; ${needed} are needed.`,
      {
        balance,
      },
    );
  }
}

/** 403: authenticated, but not allowed (a missing scope). */
export class Forbidden extends Problem {
  constructor(code: ErrorCode, detail: string) {
    super(403, code, 'Forbidden', detail);
  }
}

/** 404: nothing by that id for this caller (another partner's things are not found either). */
export class NotFound extends Problem {
  constructor(code: ErrorCode, detail: string) {
    super(404, code, 'Not found', detail);
  }
}

/** 409: conflicts with the current state (a key in flight, already canceled). */
export class Conflict extends Problem {
  constructor(code: ErrorCode, detail: string) {
    super(409, code, 'Conflict', detail);
  }
}

/** 422: understood but refused (a reused idempotency key, a refund past the deduction). */
export class Unprocessable extends Problem {
  constructor(code: ErrorCode, detail: string, param?: string) {
    super(422, code, 'Unprocessable request', detail, withParam(param));
  }
}

/** 429: slow down; `Retry-After` says for how long. */
export class RateLimited extends Problem {
  constructor(retryAfter: number) {
    super(
      429,
      'rate_limited',
      'Too many requests',
      `Too many requests; retry in ${retryAfter} seconds.`,
      {},
      {
        'Retry-After': String(retryAfter),
      },
    );
  }
}

/** 503: the database cannot be reached for a moment; retry (with the same idempotency key) after Retry-After. */
export class ServiceUnavailable extends Problem {
  constructor(retryAfter: number) {
    super(
      503,
      'service_unavailable',
      'Service unavailable',
      `The service is temporarily unavailable; retry in ${retryAfter} seconds.`,
      {},
      { 'Retry-After': String(retryAfter) },
    );
  }
}
