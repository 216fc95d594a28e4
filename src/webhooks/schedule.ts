/**
 * When to try again (Svix's schedule): the first attempt is immediate, then 5 s, 5 min, 30 min, 2 h,
 * 5 h, 10 h and 10 h after each failure, each ±20 % jitter so a receiver's outage does not come back
 * as one burst. After the 8th failed attempt the delivery is given up (`failed`).
 */
export const RETRY_DELAYS_MS = [
  5_000,
  5 * 60_000,
  30 * 60_000,
  2 * 3_600_000,
  5 * 3_600_000,
  10 * 3_600_000,
  10 * 3_600_000,
] as const;
export const MAX_ATTEMPTS = RETRY_DELAYS_MS.length + 1;

/** `Retry-After` is honoured on 429 and 503, never sooner than this, never later than a day. */
export const RETRY_AFTER_FLOOR_MS = 60_000;
const RETRY_AFTER_CAP_MS = 24 * 3_600_000;

/** An endpoint with no success since a failure this long ago is disabled. */
export const DISABLE_AFTER_FAILING_MS = 5 * 24 * 3_600_000;

/**
 * Milliseconds until the next attempt after `attempts` failed ones, or undefined when that was the
 * last. `random` is in [0, 1) (injected so tests are exact). `delays` is the schedule
 * (WEBHOOK_RETRY_DELAYS_MS; the reliability suite shortens it).
 */
export function retryDelayMs(
  attempts: number,
  random: () => number,
  retryAfterMs?: number | undefined,
  delays: readonly number[] = RETRY_DELAYS_MS,
): number | undefined {
  const base = delays[attempts - 1];
  if (base === undefined) return undefined;
  const jittered = Math.round(base * (0.8 + 0.4 * random()));
  if (retryAfterMs === undefined) return jittered;
  const asked = Math.min(Math.max(retryAfterMs, RETRY_AFTER_FLOOR_MS), RETRY_AFTER_CAP_MS);
  return Math.max(jittered, asked);
}

/** `Retry-After` as milliseconds from `now`: delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | undefined, now: Date): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d{1,10}$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now.getTime());
}
