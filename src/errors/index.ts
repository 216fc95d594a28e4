import type { components } from '../../generated/types.js';

/** The error codes openapi.yaml documents (components.schemas.ErrorCode): a new code starts there. */
export type ErrorCode = components['schemas']['ErrorCode'];

/**
 * Wire errors. Handlers and services throw these; one error handler renders them:
 * application/problem+json (RFC 9457) on the API, the RFC 6749 §5.2 body on OAuth endpoints.
 */
export class Problem extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    readonly title: string,
    detail: string,
    readonly extra: { param?: string; balance?: number; errors?: { path: string; message: string }[] } = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }

  toBody() {
    return {
      type: `https://docs.asktian.com/errors/${this.code}`,
      title: this.title,
      status: this.status,
      code: this.code,
      detail: this.message,
      ...this.extra,
    };
  }
}

export const badRequest = (code: ErrorCode, detail: string, param?: string) =>
  new Problem(400, code, 'Invalid request', detail, param ? { param } : {});
export const unauthorized = (code: ErrorCode, detail: string) =>
  new Problem(401, code, 'Unauthorized', detail, {}, { 'WWW-Authenticate': 'Bearer realm="askTIAN"' });
export const forbidden = (code: ErrorCode, detail: string) => new Problem(403, code, 'Forbidden', detail);
export const notFound = (code: ErrorCode, detail: string) => new Problem(404, code, 'Not found', detail);
export const conflict = (code: ErrorCode, detail: string) => new Problem(409, code, 'Conflict', detail);
export const unprocessable = (code: ErrorCode, detail: string, param?: string) =>
  new Problem(422, code, 'Unprocessable request', detail, param ? { param } : {});
export const insufficientPoints = (balance: number, needed: number) =>
  new Problem(
    402,
    'insufficient_points',
    'Insufficient points',
    `The user has ${balance} points; ${needed} are needed.`,
    { balance },
  );
export const rateLimited = (retryAfter: number) =>
  new Problem(
    429,
    'rate_limited',
    'Too many requests',
    `Too many requests; retry in ${retryAfter} seconds.`,
    {},
    { 'Retry-After': String(retryAfter) },
  );

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'slow_down'
  | 'server_error';

/** RFC 6749 §5.2 error: rendered as `{error, error_description}` on OAuth endpoints. */
export class OAuthError extends Error {
  constructor(
    readonly error: OAuthErrorCode,
    description: string,
    readonly status = error === 'invalid_client' ? 401 : 400,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
  }
  toBody() {
    return { error: this.error, error_description: this.message };
  }
}
export const invalidRequest = (d: string) => new OAuthError('invalid_request', d);
export const invalidGrant = (d: string) => new OAuthError('invalid_grant', d);
export const invalidScope = (d: string) => new OAuthError('invalid_scope', d);
export const invalidClient = (d: string, basic = false) =>
  new OAuthError('invalid_client', d, 401, basic ? { 'WWW-Authenticate': 'Basic realm="askTIAN"' } : {});
