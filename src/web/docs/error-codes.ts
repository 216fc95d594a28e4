import type { ErrorCode } from '../../errors/index.js';
import type { OpenApiDocument } from '../../http/spec.js';

/** When a code is answered and what the caller should do about it; keyed by every ErrorCode, so tsc lists a new one. */
const GUIDE: Record<ErrorCode, { when: string; fix: string }> = {
  validation_failed: {
    when: 'A path or query parameter, a header or a body field breaks the schema in openapi.yaml: a wrong type, a number out of range, a field the operation does not take, a string that is too long, or text with a NUL byte or an unpaired UTF-16 surrogate.',
    fix: 'Read `param` (the field at fault) and `errors` (each with the JSON path and what is wrong), fix the request and send it again. Sending it unchanged gives the same answer; nothing was changed.',
  },
  invalid_json: {
    when: 'The body was sent as JSON but does not parse: a trailing comma, single quotes, a truncated body.',
    fix: 'Serialise the body with a JSON library (not by string concatenation) and send it with `Content-Type: application/json`.',
  },
  invalid_cursor: {
    when: 'A list was asked for with a `cursor` this API did not hand out: edited, made up, or taken from another list.',
    fix: 'Pass `nextCursor` exactly as a previous page returned it, or leave `cursor` out to start from the first page.',
  },
  idempotency_key_mismatch: {
    when: 'The `Idempotency-Key` header and the body field `idempotencyKey` were both sent, with different values.',
    fix: 'Send the key once (the header is preferred), or the same value in both places.',
  },
  bad_request: {
    when: 'The request is malformed in a way no more specific code covers; `detail` says how.',
    fix: 'Read `detail`, correct the request and send it again.',
  },
  missing_api_key: {
    when: 'A partner operation, or a legacy-flow call, came without an `X-API-Key` header.',
    fix: 'Send your client secret (`tcsk_...`) in `X-API-Key`. For calls on behalf of a user you can send an OAuth access token (`Authorization: Bearer tcat_...`) instead.',
  },
  invalid_api_key: {
    when: 'The `X-API-Key` is not a live client secret: mistyped, replaced by a rotation, or from another environment.',
    fix: 'Use your current client secret. After rotating it (dashboard or `POST /api/v1/partner/client-secret/rotate`) every server of yours needs the new one.',
  },
  missing_session_token: {
    when: "A call on behalf of a user carried neither an access token nor the user's Privy id and session token.",
    fix: 'Send `Authorization: Bearer tcat_...`, or (legacy flow) `X-API-Key` together with `X-Privy-Id` and `X-Privy-Session-Token` (or the body fields `privyId` and `sessionToken`).',
  },
  invalid_session_token: {
    when: 'The Privy session token is expired or malformed, was issued for another Privy app, or belongs to a different user than `privyId`.',
    fix: "Get a fresh session token from the Privy SDK in the user's browser and send it with that same user's Privy id.",
  },
  privy_not_configured: {
    when: 'This server has no Privy verification key, so it cannot verify legacy-flow (Privy session) calls.',
    fix: 'Use OAuth 2.0 access tokens instead, or ask the operator to configure the Privy app id and verification key (README "Settings").',
  },
  missing_token: {
    when: 'The operation needs a bearer access token (for example the token info endpoint) and none was sent.',
    fix: 'Send `Authorization: Bearer tcat_...`, the access token from the token endpoint.',
  },
  invalid_token: {
    when: 'The access token is unknown, expired (30 days after it was issued) or revoked: the user revoked your app in the wallet, you revoked it, or a refresh replaced it.',
    fix: 'Refresh the pair with your refresh token at `POST /api/oauth2/token`. If that fails with `invalid_grant`, send the user through the authorization flow again.',
  },
  credentials_mismatch: {
    when: 'An access token and an `X-API-Key` were sent together and they belong to different partners (or the key is made up).',
    fix: 'Send only the access token, or your own API key with it.',
  },
  insufficient_points: {
    when: "A deduct or a subscription charge asks for more points than the user has; `balance` is the user's balance. Nothing was deducted.",
    fix: 'Tell the user they need more points (they can top up in the askTIAN wallet), or ask for a smaller amount. Do not retry the same amount until the balance has grown.',
  },
  insufficient_scope: {
    when: 'The access token was not granted the scope the operation needs (`balance` to read, `deduct` to deduct and refund, `subscriptions` for subscriptions); in the legacy flow, your partner account is not allowed that scope.',
    fix: 'Ask for the scope in the authorization request (it must be one of your allowed scopes) and have the user approve it; the current token cannot gain scopes.',
  },
  not_found: {
    when: 'No operation has this path: a typo, a missing `/api/v1` prefix, or an id in the wrong place.',
    fix: 'Check the path against the API reference at /docs.',
  },
  user_not_found: {
    when: 'There is no askTIAN wallet for this user (the Privy account never opened one, or the wallet was closed).',
    fix: 'Ask the user to open their askTIAN wallet first.',
  },
  transaction_not_found: {
    when: "No transaction with this id exists for this user and your app (another partner's transactions are not found either).",
    fix: 'Use a `transactionId` that a deduct or the transaction list returned for this same user.',
  },
  subscription_not_found: {
    when: 'No subscription with this id exists for this user and your app.',
    fix: 'Use a `subscriptionId` that creating or listing subscriptions returned for this same user.',
  },
  method_not_allowed: {
    when: 'The path exists, but not with this HTTP method (for example `GET` on the deduct endpoint).',
    fix: 'Use the method the API reference gives for the path.',
  },
  idempotency_key_in_flight: {
    when: 'A request with the same idempotency key for this user is still being processed.',
    fix: "Wait a moment and retry with the same key: you get the first request's response once it has finished.",
  },
  subscription_already_canceled: {
    when: 'The subscription has already ended, so it cannot be canceled again.',
    fix: 'Nothing to undo. Read the subscription to show its state; create a new one to start charging again.',
  },
  payload_too_large: {
    when: 'The request body is over 16 KiB.',
    fix: 'Send a smaller body (descriptions are at most 500 characters).',
  },
  unsupported_media_type: {
    when: 'The body is not sent as a documented content type, or in an unsupported charset or encoding.',
    fix: 'Send `Content-Type: application/json` with a UTF-8 body (the OAuth token endpoints also take `application/x-www-form-urlencoded`).',
  },
  idempotency_key_reused: {
    when: 'This idempotency key was used before, for this user, with different parameters (amount, description...).',
    fix: 'Use a new unique key (a UUID) for every distinct operation; reuse a key only to retry exactly the same request.',
  },
  not_refundable: {
    when: 'The transaction is not a deduction (a credit or a refund), so it cannot be refunded.',
    fix: "Refund the original deduction's `transactionId`.",
  },
  refund_exceeds_deduction: {
    when: 'The refund is more than what is left of the deduction (earlier partial refunds count).',
    fix: 'Read the transaction to see how much was already refunded, and refund at most the rest.',
  },
  webhook_endpoint_not_found: {
    when: "No webhook endpoint with this id among yours (deleted endpoints and other partners' endpoints are not found).",
    fix: 'List your endpoints (`GET /api/v1/partner/webhook-endpoints`) and use one of their ids.',
  },
  webhook_delivery_not_found: {
    when: 'No webhook delivery with this id to one of your endpoints.',
    fix: 'List the delivery log (`GET /api/v1/partner/webhook-deliveries`) and use one of its ids.',
  },
  webhook_endpoint_disabled: {
    when: 'The endpoint is disabled (by you, by a `410 Gone` answer, or after 5 days of failed deliveries), so nothing is sent to it.',
    fix: 'Enable the endpoint again (update it with `enabled: true`, or in the partner dashboard), then resend or recover the missed events.',
  },
  invalid_webhook_url: {
    when: 'The webhook URL is not allowed: not https (plain http only to loopback, on development servers), carries a user name or password, or names a private, loopback, link-local or cloud metadata address.',
    fix: 'Register a public https URL of your receiver.',
  },
  too_many_webhook_endpoints: {
    when: 'You already have 20 webhook endpoints, the most a partner may have.',
    fix: 'Delete an endpoint you no longer use, or subscribe one endpoint to more event types.',
  },
  invalid_time_range: {
    when: 'The time window of a recovery or a filter is empty (its end before its start) or starts in the future.',
    fix: 'Send a `since` in the past (and an `until` after it).',
  },
  rate_limited: {
    when: 'Too many requests in the current one-minute window: per partner (and user) once authenticated, per client address before that or after a failed authentication.',
    fix: 'Wait the number of seconds in the `Retry-After` header, then retry. Spread bursts out; retries of failed authentications use the same budget.',
  },
  internal_error: {
    when: 'Something failed on our side. Nothing you were told about was changed.',
    fix: 'Retry later with the same idempotency key (a mutating call is then applied at most once). If it persists, contact partner support with the time of the request.',
  },
  service_unavailable: {
    when: 'The database is unreachable for a moment (a failover, a restart).',
    fix: 'Retry after the `Retry-After` seconds, with the same idempotency key for mutating calls.',
  },
};

export type ErrorCodeDoc = {
  code: ErrorCode;
  status: number | undefined;
  meaning: string;
  when: string;
  fix: string;
  /** A problem body with this code from the spec's own examples, when it has one. */
  example: Record<string, unknown> | undefined;
};

/** Every example problem body in the spec (an object with `type`, `status` and `code`), by code. */
function problemExamples(spec: OpenApiDocument): Map<string, Record<string, unknown>> {
  const found = new Map<string, Record<string, unknown>>();
  const walk = (o: unknown): void => {
    if (Array.isArray(o)) return o.forEach(walk);
    if (typeof o !== 'object' || o === null) return;
    const r = o as Record<string, unknown>;
    if (typeof r.type === 'string' && typeof r.code === 'string' && typeof r.status === 'number') {
      if (!found.has(r.code)) found.set(r.code, r);
      return;
    }
    Object.values(r).forEach(walk);
  };
  walk(spec.paths);
  walk(spec.components);
  return found;
}

/**
 * Every value of the ErrorCode enum in openapi.yaml, in its order, with the status and one-line meaning
 * its description lists (`- \`code\` (status): meaning`) and the guide above.
 */
export function errorCodeDocs(spec: OpenApiDocument): ErrorCodeDoc[] {
  const schema = spec.components.schemas.ErrorCode;
  const lines = new Map<string, { status: number; meaning: string }>();
  for (const m of String(schema.description ?? '').matchAll(/^\s*- `([a-z_]+)` \((\d{3})\): (.+)$/gm)) {
    lines.set(m[1] ?? '', { status: Number(m[2]), meaning: m[3] ?? '' });
  }
  const examples = problemExamples(spec);
  return (schema.enum as ErrorCode[]).map((code) => ({
    code,
    status: lines.get(code)?.status,
    meaning: lines.get(code)?.meaning ?? '',
    ...GUIDE[code],
    example: examples.get(code),
  }));
}

/** RFC 6749 error codes the OAuth endpoints answer with (`error` in the body, or on the redirect). */
export const OAUTH_ERRORS: { code: string; where: string; meaning: string }[] = [
  {
    code: 'invalid_request',
    where: 'authorize redirect, token, revoke, introspect',
    meaning:
      'A parameter is missing, malformed or sent twice (for example no `redirect_uri` with the code, or a bad PKCE challenge). Fix the request.',
  },
  {
    code: 'invalid_client',
    where: 'token, revoke, introspect (401)',
    meaning:
      'Client authentication failed: unknown `client_id` or wrong `client_secret`. Check both (HTTP Basic or body, not both).',
  },
  {
    code: 'invalid_grant',
    where: 'token',
    meaning:
      "The code or refresh token is invalid, expired, already used, another client's, or the `redirect_uri` or `code_verifier` does not match. Start the authorization again.",
  },
  {
    code: 'unauthorized_client',
    where: 'token',
    meaning: 'Your client may not use this grant type.',
  },
  {
    code: 'unsupported_grant_type',
    where: 'token',
    meaning: 'Only `authorization_code` and `refresh_token` are supported.',
  },
  {
    code: 'invalid_scope',
    where: 'authorize redirect, token (refresh)',
    meaning: 'A scope is unknown or not allowed for your app, or a refresh asked for more than was granted.',
  },
  {
    code: 'access_denied',
    where: 'authorize redirect',
    meaning: 'The user declined on the consent screen. Let them try again when they want to.',
  },
  {
    code: 'unsupported_response_type',
    where: 'authorize redirect',
    meaning: 'Only `response_type=code` is supported.',
  },
  {
    code: 'slow_down',
    where: 'token, revoke, introspect (429)',
    meaning: 'Too many requests; wait `Retry-After` seconds.',
  },
  {
    code: 'server_error',
    where: 'any (500)',
    meaning: 'Something failed on our side; retry later.',
  },
  {
    code: 'temporarily_unavailable',
    where: 'any (503)',
    meaning: 'The database is unreachable for a moment; retry after `Retry-After` seconds.',
  },
];
