/**
 * Whether an error means "the database cannot be reached right now" (a transient outage) rather than
 * a bug or a bad query: the server refused or dropped the connection, is shutting down, or did not
 * hand out a connection in time. Such failures become a 503 with Retry-After, never a 500.
 */
export function isConnectionFailure(err: unknown): boolean {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const { code, message, errors } = e as { code?: unknown; message?: unknown; errors?: unknown };
    if (typeof code === 'string' && (NETWORK_CODES.has(code) || isUnavailableSqlState(code, message)))
      return true;
    if (typeof message === 'string' && PG_MESSAGES.some((re) => re.test(message))) return true;
    // Node reports a refused dual-stack connect as an AggregateError of the per-address failures.
    if (Array.isArray(errors) && errors.some(isConnectionFailure)) return true;
    e = (e as { cause?: unknown }).cause;
  }
  return false;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENOTFOUND',
]);

/**
 * SQLSTATE class 08 (connection exception), 57P01-57P03 (admin/crash shutdown, cannot connect now)
 * and 53300 (too many connections: the server's max_connections is used up, by us or others).
 */
function isUnavailableSqlState(code: string, message: unknown): boolean {
  if (code.startsWith('08') || ['57P01', '57P02', '57P03', '53300'].includes(code)) return true;
  // ALTER DATABASE ... ALLOW_CONNECTIONS false answers new connections with 55000.
  return (
    code === '55000' && typeof message === 'string' && /not currently accepting connections/.test(message)
  );
}

/** What `pg` and its pool say when a connection dies or cannot be had in time (they carry no code). */
const PG_MESSAGES = [
  /^Connection terminated/,
  /timeout exceeded when trying to connect/,
  /Client has encountered a connection error and is not queryable/,
  /terminating connection due to administrator command/,
];
