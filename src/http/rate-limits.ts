import { ipKeyGenerator } from 'express-rate-limit';
import { RateLimited } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';

/**
 * A fixed-window counter per key on the injected clock (so tests move time instead of sleeping).
 * In-process for now: one instance's budget. A shared store (PostgreSQL) replaces `windows` when
 * several instances run; the callers only see `hit` and `retryAfter`.
 */
export class WindowCounter {
  private windows = new Map<string, { count: number; resetAt: number }>();
  private nextSweep = 0;

  constructor(
    readonly limit: number,
    readonly windowMs: number,
    private readonly clock: Clock,
  ) {}

  /** Counts one event for each key; returns the seconds to wait if any key is now over its limit. */
  hit(keys: readonly string[]): number | undefined {
    const now = this.clock.now().getTime();
    this.sweep(now);
    let wait: number | undefined;
    for (const key of keys) {
      const w = this.window(key, now);
      w.count++;
      if (w.count > this.limit) wait = Math.max(wait ?? 0, secondsUntil(w.resetAt, now));
    }
    return wait;
  }

  /** The seconds to wait if any key has already used its whole budget, without counting. */
  retryAfter(keys: readonly string[]): number | undefined {
    const now = this.clock.now().getTime();
    let wait: number | undefined;
    for (const key of keys) {
      const w = this.windows.get(key);
      if (w && w.resetAt > now && w.count >= this.limit) {
        wait = Math.max(wait ?? 0, secondsUntil(w.resetAt, now));
      }
    }
    return wait;
  }

  private window(key: string, now: number) {
    let w = this.windows.get(key);
    if (!w || w.resetAt <= now) {
      w = { count: 0, resetAt: now + this.windowMs };
      this.windows.set(key, w);
    }
    return w;
  }

  /** Forget finished windows once per window length, so memory follows the live keys only. */
  private sweep(now: number): void {
    if (now < this.nextSweep) return;
    this.nextSweep = now + this.windowMs;
    for (const [key, w] of this.windows) if (w.resetAt <= now) this.windows.delete(key);
  }
}

const secondsUntil = (resetAt: number, now: number) => Math.max(1, Math.ceil((resetAt - now) / 1000));

/** The client address as a limiter key; IPv6 addresses count per /56, as express-rate-limit does. */
export const addressKey = (ip: string | undefined) => `ip:${ipKeyGenerator(ip ?? '')}`;

/**
 * The limits of the API, keyed per DESIGN.md: on a verified identity only after verifying it;
 * before that, and for every failed authentication, per client address (and per client_id for a
 * failed client authentication).
 */
export class RateLimits {
  /** Requests of a verified identity (partner, or partner + user), or of an address on public endpoints. */
  readonly requests: WindowCounter;
  /** Failed authentications (API keys, sessions, bearer tokens, client secrets). */
  readonly failures: WindowCounter;

  constructor(opts: { perMinute: number; authFailuresPerMinute: number; clock: Clock }) {
    this.requests = new WindowCounter(opts.perMinute, 60_000, opts.clock);
    this.failures = new WindowCounter(opts.authFailuresPerMinute, 60_000, opts.clock);
  }
}

/** 429 with Retry-After when a counter said to wait. */
export function throwIfLimited(retryAfter: number | undefined): void {
  if (retryAfter !== undefined) throw new RateLimited(retryAfter);
}

/**
 * Runs a credential check; a failed one (an error `isFailure` accepts) counts against every key.
 * Refused at once with 429 while any key has used up its failure budget.
 */
export async function countingFailures<T>(
  counter: WindowCounter,
  keys: readonly string[],
  isFailure: (err: unknown) => boolean,
  check: () => Promise<T>,
): Promise<T> {
  throwIfLimited(counter.retryAfter(keys));
  try {
    return await check();
  } catch (err) {
    if (isFailure(err)) counter.hit(keys);
    throw err;
  }
}
