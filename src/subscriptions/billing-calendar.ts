/**
 * Monthly billing dates, the way Stripe Billing anchors them: every period boundary is the anchor's
 * day of the month at the anchor's time of day (UTC), clamped to the month's last day when the month
 * is shorter. The anchor itself is remembered, so a January 31 subscription renews on February 28
 * (29 in leap years), then March 31 again, April 30, ... rather than drifting to the 28th for good.
 * Boundaries are computed from the anchor and a period number, never from the previous boundary.
 */

const DAY_MS = 86_400_000;

/** Days in a month (month 0-11, any year; Date.UTC handles the rollover). */
function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
}

/** The start of period `n` (0 = the anchor itself): `n` calendar months after it, clamped. */
export function periodStart(anchor: Date, n: number): Date {
  const months = anchor.getUTCMonth() + n;
  const year = anchor.getUTCFullYear() + Math.floor(months / 12);
  const month = ((months % 12) + 12) % 12;
  const day = Math.min(anchor.getUTCDate(), daysInMonth(year, month));
  return new Date(
    Date.UTC(
      year,
      month,
      day,
      anchor.getUTCHours(),
      anchor.getUTCMinutes(),
      anchor.getUTCSeconds(),
      anchor.getUTCMilliseconds(),
    ),
  );
}

/** Period `n` as [start, end): it ends where period `n + 1` starts. */
export function period(anchor: Date, n: number): { start: Date; end: Date } {
  return { start: periodStart(anchor, n), end: periodStart(anchor, n + 1) };
}

/** `days` whole days after `d` (retry dates are counted from the failed due date). */
export function daysAfter(d: Date, days: number): Date {
  return new Date(d.getTime() + days * DAY_MS);
}
