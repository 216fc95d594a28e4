/** RFC 6749 §5.2 error codes (plus RFC 6749 §4.1.2.1's on the authorization endpoint's redirects). */
export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'slow_down'
  | 'server_error'
  | 'temporarily_unavailable';

/** An RFC 6749 §5.2 error: rendered as `{error, error_description}` on the OAuth operations. */
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

/** A required parameter is missing or malformed, or sent twice. */
export class InvalidRequest extends OAuthError {
  constructor(description: string) {
    super('invalid_request', description);
  }
}

/** The code or refresh token is invalid, expired, revoked, replayed, or another client's. */
export class InvalidGrant extends OAuthError {
  constructor(description: string) {
    super('invalid_grant', description);
  }
}

/** The scope is unknown, empty, or wider than granted. */
export class InvalidScope extends OAuthError {
  constructor(description: string) {
    super('invalid_scope', description);
  }
}

/** Client authentication failed; with HTTP Basic the answer names the scheme (RFC 6749 §5.2). */
export class InvalidClient extends OAuthError {
  constructor(description: string, basic = false) {
    super('invalid_client', description, 401, basic ? { 'WWW-Authenticate': 'Basic realm="askTIAN"' } : {});
  }
}

export class UnsupportedGrantType extends OAuthError {
  constructor(description: string) {
    super('unsupported_grant_type', description);
  }
}
