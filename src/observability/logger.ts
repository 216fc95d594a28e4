import { type DestinationStream, type Logger, pino } from 'pino';
import type { Config } from '../config.js';

export type { DestinationStream, Logger };

/**
 * Fields that may carry a credential, wherever a log call puts them. We never log request bodies,
 * query strings or headers in the first place; this is the second line of defence for an `err`
 * or a context object that happens to hold one. Paths are exact (no leading wildcard), so pino's
 * redaction stays cheap on lines that do not have them.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["x-privy-session-token"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'headers["x-api-key"]',
  'headers["webhook-signature"]',
  'body',
  'query',
  'password',
  'secret',
  'client_secret',
  'clientSecret',
  'access_token',
  'refresh_token',
  'code',
  'code_verifier',
  'token',
  'sessionToken',
  'err.config',
];

/**
 * The process's one logger (built in the container and passed down): JSON lines on stdout, or on
 * `destination` (tests capture them in memory).
 */
export function createLogger(config: Pick<Config, 'logLevel'>, destination?: DestinationStream): Logger {
  return pino(
    {
      level: config.logLevel,
      base: { service: 'tian-points' },
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      // An error's message, type and stack; never the driver-specific fields (queries, parameters).
      serializers: { err: serializeError },
    },
    destination ?? stdout(),
  );
}

function serializeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { message: scrubSecrets(String(err)) };
  const code = (err as { code?: unknown }).code;
  return {
    type: err.constructor.name,
    message: scrubSecrets(err.message),
    ...(typeof code === 'string' ? { code } : {}),
    stack: err.stack === undefined ? undefined : scrubSecrets(err.stack),
  };
}

/**
 * Our secrets are prefixed (`tcat_` access, `tcrt_` refresh, `tcac_` code, `tcsk_` client secret,
 * `tcws_` wallet session, `whsec_` webhook secret) and Privy's are JWTs: an error message that
 * quotes one (a driver echoing a bad parameter, say) keeps only the prefix.
 */
const SECRET_TEXT = /\b(tcat|tcrt|tcac|tcsk|tcws|whsec)_[A-Za-z0-9_\-+/=]+|\beyJ[\w-]+\.[\w-]+\.[\w-]*/g;

export function scrubSecrets(text: string): string {
  return text.replace(SECRET_TEXT, (_, prefix: string | undefined) =>
    prefix ? `${prefix}_[redacted]` : '[redacted JWT]',
  );
}

let stdoutStream: DestinationStream | undefined;

/**
 * Standard output, shared by every logger of the process (tests build many containers). Writes are
 * asynchronous, which keeps the event loop free; pino flushes what is pending when the process exits.
 */
function stdout(): DestinationStream {
  stdoutStream ??= pino.destination({ dest: 1, sync: false });
  return stdoutStream;
}
