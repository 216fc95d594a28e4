import { ipKeyGenerator } from 'express-rate-limit';
import type { Sql } from '../db/database.js';
import { RateLimited } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';

/**
 * Rate limits shared by every instance on one database: fixed windows on the injected clock (so tests
 * move time instead of sleeping), aligned to the window length so every instance agrees on which
 * window a moment belongs to without asking. The counts live in `rate_limit_counters`
 * (Migration20261124000010, an UNLOGGED table: see there), one row per (counter, window, key).
 *
 * Two kinds of counter:
 * - `ExactCounter` (failed authentications, sign-in pages: small budgets) counts every event with one
 *   upsert that returns the cluster-wide count, so the budget holds exactly across instances;
 * - `SyncedCounter` (the request budget of a verified identity, 6000/min by default: the hot path)
 *   counts in memory and adds its counts to the table every `syncMs`, learning the others' counts in
 *   the same statement. No round trip per request; the cluster may admit at most what the instances
 *   admit for that key within one sync interval, plus under 1 % of the budget each, over the budget.
 */
export class CounterTable {
  constructor(private readonly db: Sql) {}

  /**
   * Adds `n` to each (counter, window, key) and returns the new counts, in one statement. Rows are
   * upserted in key order, so two instances flushing overlapping keys lock them in the same order.
   */
  async add(counter: string, rows: readonly CountRow[]): Promise<Map<string, number>> {
    const sorted = [...rows].sort((a, b) => a.windowStart - b.windowStart || cmp(a.key, b.key));
    const result = await this.db.query<{ key: string; window_start: string; hits: number }>(
      `insert into rate_limit_counters as c (counter, window_start, key, expires_at, hits)
       select $1, w, k, to_timestamp(e / 1000.0), n
         from unnest($2::bigint[], $3::text[], $4::bigint[], $5::int[]) with ordinality as u(w, k, e, n, i)
        order by i
       on conflict (counter, window_start, key) do update set hits = c.hits + excluded.hits
       returning key, window_start, hits`,
      [
        counter,
        sorted.map((r) => r.windowStart),
        sorted.map((r) => r.key),
        sorted.map((r) => r.expiresAt),
        sorted.map((r) => r.n),
      ],
    );
    return new Map(result.map((r) => [rowId(Number(r.window_start), r.key), r.hits]));
  }

  /** The counts of these keys in one window (absent: 0). */
  async read(counter: string, windowStart: number, keys: readonly string[]): Promise<Map<string, number>> {
    const result = await this.db.query<{ key: string; hits: number }>(
      `select key, hits from rate_limit_counters
        where counter = $1 and window_start = $2 and key = any($3::text[])`,
      [counter, windowStart, keys],
    );
    return new Map(result.map((r) => [r.key, r.hits]));
  }

  /** The keys that have used their whole budget in this window. */
  async exhausted(counter: string, windowStart: number, limit: number): Promise<string[]> {
    const result = await this.db.query<{ key: string }>(
      `select key from rate_limit_counters
        where counter = $1 and window_start = $2 and hits >= $3`,
      [counter, windowStart, limit],
    );
    return result.map((r) => r.key);
  }
}

/** Deletes the windows that have ended (the housekeeping purge). */
export async function purgeExpiredCounters(db: Sql, now: Date): Promise<void> {
  await db.query('delete from rate_limit_counters where expires_at <= $1', [now]);
}

type CountRow = { windowStart: number; key: string; expiresAt: number; n: number };

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const rowId = (windowStart: number, key: string) => `${windowStart} ${key}`;
const secondsUntil = (resetAt: number, now: number) => Math.max(1, Math.ceil((resetAt - now) / 1000));

/** The window a moment falls in: its start and end (ms since the epoch). */
function windowOf(now: number, windowMs: number) {
  const start = Math.floor(now / windowMs) * windowMs;
  return { start, end: start + windowMs };
}

/**
 * Exact across instances: every counted event is one upsert returning the cluster-wide count.
 * Keys known to be over budget are remembered until their window ends, so a refused caller costs no
 * query; `sync()` learns the keys other instances exhausted.
 */
export class ExactCounter {
  /** key -> end of the window in which it used up its budget. */
  private exhaustedUntil = new Map<string, number>();
  private nextSweep = 0;

  constructor(
    readonly name: string,
    readonly limit: number,
    readonly windowMs: number,
    private readonly table: CounterTable,
    private readonly clock: Clock,
  ) {}

  /** Counts one event for each key; returns the seconds to wait if any key is now over its limit. */
  async hit(keys: readonly string[]): Promise<number | undefined> {
    const now = this.clock.now().getTime();
    this.forgetEnded(now);
    const w = windowOf(now, this.windowMs);
    const counts = await this.table.add(
      this.name,
      keys.map((key) => ({ windowStart: w.start, key, expiresAt: w.end, n: 1 })),
    );
    let wait: number | undefined;
    for (const key of keys) {
      const hits = counts.get(rowId(w.start, key)) ?? 0;
      if (hits >= this.limit) this.exhaustedUntil.set(key, w.end);
      if (hits > this.limit) wait = secondsUntil(w.end, now);
    }
    return wait;
  }

  /** The seconds to wait if any key has already used its whole budget (one query, exact). */
  async retryAfter(keys: readonly string[]): Promise<number | undefined> {
    const known = this.knownRetryAfter(keys);
    if (known !== undefined) return known;
    const now = this.clock.now().getTime();
    const w = windowOf(now, this.windowMs);
    const counts = await this.table.read(this.name, w.start, keys);
    let wait: number | undefined;
    for (const key of keys) {
      if ((counts.get(key) ?? 0) < this.limit) continue;
      this.exhaustedUntil.set(key, w.end);
      wait = secondsUntil(w.end, now);
    }
    return wait;
  }

  /**
   * The same from what this instance knows (its own counts, and what the last sync saw), without a
   * query: behind the others by at most one sync interval.
   */
  knownRetryAfter(keys: readonly string[]): number | undefined {
    if (this.exhaustedUntil.size === 0) return undefined;
    const now = this.clock.now().getTime();
    let wait: number | undefined;
    for (const key of keys) {
      const until = this.exhaustedUntil.get(key);
      if (until !== undefined && until > now) wait = Math.max(wait ?? 0, secondsUntil(until, now));
    }
    return wait;
  }

  /** Learns which keys are over budget in the current window on any instance; forgets ended windows. */
  async sync(): Promise<void> {
    const now = this.clock.now().getTime();
    const w = windowOf(now, this.windowMs);
    const keys = await this.table.exhausted(this.name, w.start, this.limit);
    this.forgetEnded(now);
    for (const key of keys) this.exhaustedUntil.set(key, w.end);
  }

  /** Once per window length: forget keys whose window has ended, so memory follows the live ones. */
  private forgetEnded(now: number): void {
    if (now < this.nextSweep) return;
    this.nextSweep = now + this.windowMs;
    for (const [key, until] of this.exhaustedUntil) if (until <= now) this.exhaustedUntil.delete(key);
  }
}

/**
 * Counted in memory, added to the shared table every sync. A key's estimate is the cluster count as
 * of this instance's last sync plus what it counted since, a lower bound of the true count: a refusal
 * is always right. A key's counts are written once they reach 1 % of the budget (or the key is past
 * half of it), so identities far below their budget cost no writes at all. The cluster over-admits a
 * key by at most what the other instances counted for it since their last sync, plus under 1 % of
 * the budget per instance.
 */
/** Where a tryHit was counted (opaque to callers). */
export type Counted = { readonly key: string };

export class SyncedCounter {
  /** key -> its current window's counts as this instance knows them (no string built per request). */
  private windows = new Map<string, CountWindow>();
  /** Windows replaced by a newer one before their counts were flushed. */
  private retired: CountWindow[] = [];
  private flushing: Promise<void> | undefined;
  /** A key's counts are written once they reach this many (1 % of the budget): see due(). */
  private readonly threshold: number;

  constructor(
    readonly name: string,
    readonly limit: number,
    readonly windowMs: number,
    private readonly table: CounterTable,
    private readonly clock: Clock,
  ) {
    this.threshold = Math.max(1, Math.ceil(limit / 100));
  }

  /** Counts one event for each key (no I/O); returns the seconds to wait if any key is now over its limit. */
  hit(keys: readonly string[]): number | undefined {
    const now = this.clock.now().getTime();
    let wait: number | undefined;
    for (const key of keys) {
      const w = this.windowOf(key, now);
      w.pending++;
      if (w.shared + w.sending + w.pending > this.limit) wait = Math.max(wait ?? 0, secondsUntil(w.end, now));
    }
    return wait;
  }

  /**
   * hit() for one key when it is admitted: counts it and returns the window it was counted in (for
   * unhit); a key it would put over its limit is not counted (undefined), so its caller can go the
   * way that counts and refuses it.
   */
  tryHit(key: string): Counted | undefined {
    const w = this.windowOf(key, this.clock.now().getTime());
    if (w.shared + w.sending + w.pending + 1 > this.limit) return undefined;
    w.pending++;
    return w;
  }

  /**
   * Takes back a tryHit (the event turned out not to be this key's), in the window it was counted
   * in, even if that window has ended or its count is being flushed: its pending count may then go
   * below zero, which the next flush of a live window nets out, and an ended one forgets.
   */
  unhit(counted: Counted): void {
    (counted as CountWindow).pending--;
  }

  /** The key's window at `now`, started afresh (the old one kept for its flush) when a new window began. */
  private windowOf(key: string, now: number): CountWindow {
    const start = now - (now % this.windowMs);
    let w = this.windows.get(key);
    if (w?.start !== start) {
      if (w && w.pending > 0) this.retired.push(w);
      w = { key, start, end: start + this.windowMs, shared: 0, sending: 0, pending: 0 };
      this.windows.set(key, w);
    }
    return w;
  }

  /**
   * Adds what this instance counted since the last flush to the table and learns the cluster counts
   * of those keys (one statement); forgets ended windows. A failed flush keeps its counts for the next.
   */
  flush(): Promise<void> {
    // One flush at a time: a second caller waits for the running one, then flushes what came since.
    const run = (this.flushing ?? Promise.resolve()).catch(() => {}).then(() => this.flushOnce());
    this.flushing = run;
    return run;
  }

  /**
   * Whether a window's counts are worth a row now: once they reach 1 % of the budget, or once the
   * key is past half of it (there, every instance must hear of the others within one sync).
   */
  private due(w: CountWindow): boolean {
    return w.pending >= this.threshold || w.shared + w.sending + w.pending >= this.limit / 2;
  }

  private async flushOnce(): Promise<void> {
    const now = this.clock.now().getTime();
    // Ended windows that never reached the threshold are dropped: they cannot matter any more.
    const batch: { w: CountWindow; n: number }[] = this.retired
      .filter((w) => this.due(w))
      .map((w) => ({ w, n: w.pending }));
    this.retired = [];
    for (const [key, w] of this.windows) {
      if (w.pending > 0 && this.due(w)) batch.push({ w, n: w.pending });
      else if (w.end <= now) this.windows.delete(key);
    }
    if (batch.length === 0) return;
    // Moved to `sending` before the await: hits counted meanwhile stay pending for the next flush.
    for (const b of batch) {
      b.w.pending -= b.n;
      b.w.sending = b.n;
    }
    let counts: Map<string, number>;
    try {
      counts = await this.table.add(
        this.name,
        batch.map(({ w, n }) => ({ windowStart: w.start, key: w.key, expiresAt: w.end, n })),
      );
    } catch (err) {
      for (const b of batch) {
        b.w.sending = 0;
        b.w.pending += b.n;
        // A retired window no longer in the map keeps its counts for the next flush.
        if (this.windows.get(b.w.key) !== b.w) this.retired.push(b.w);
      }
      throw err;
    }
    for (const { w, n } of batch) {
      w.shared = counts.get(rowId(w.start, w.key)) ?? w.shared + n;
      w.sending = 0;
    }
  }
}

/**
 * One key's window on this instance: `shared` is the cluster count its last sync returned, `sending`
 * what a sync under way is adding, `pending` what was counted since. The estimate is their sum.
 */
type CountWindow = {
  key: string;
  start: number;
  end: number;
  shared: number;
  sending: number;
  pending: number;
};

/** The client address as a limiter key; IPv6 addresses count per /56, as express-rate-limit does. */
export const addressKey = (ip: string | undefined) => `ip:${ipKeyGenerator(ip ?? '')}`;

export type RateLimitsOptions = {
  perMinute: number;
  authFailuresPerMinute: number;
  clock: Clock;
  db: Sql;
  /** How often the request budgets are added to the shared table (ms); 0: no timer (call sync()). */
  syncMs: number;
  /** Where a failed sync is reported (default: stderr). */
  log?: { error(obj: object, msg: string): void };
};

/**
 * The limits of the API, keyed per DESIGN.md: on a verified identity only after verifying it;
 * before that, and for every failed authentication, per client address (and per client_id for a
 * failed client authentication).
 */
export class RateLimits {
  /** Requests of a verified identity (partner, or partner + user), or of an address on public endpoints. */
  readonly requests: SyncedCounter;
  /** Failed authentications (API keys, sessions, bearer tokens, client secrets). */
  readonly failures: ExactCounter;
  private readonly table: CounterTable;
  private readonly timer: NodeJS.Timeout | undefined;
  private syncing: Promise<void> | undefined;

  constructor(private readonly opts: RateLimitsOptions) {
    this.table = new CounterTable(opts.db);
    this.requests = new SyncedCounter('requests', opts.perMinute, 60_000, this.table, opts.clock);
    this.failures = this.counter('failures', opts.authFailuresPerMinute);
    if (opts.syncMs > 0) {
      this.timer = setInterval(() => {
        // A sync still running (a slow database) is not stacked up on.
        if (this.syncing) return;
        this.syncing = this.sync()
          .catch((err: Error) => {
            if (opts.log) opts.log.error({ err, component: 'rate-limits' }, 'rate-limit sync failed');
            else console.error('[rate-limits] sync failed:', err.message);
          })
          .finally(() => {
            this.syncing = undefined;
          });
      }, opts.syncMs).unref();
    }
  }

  /**
   * Another exact per-minute counter on the same table (e.g. the sign-in pages' budgets). Not synced:
   * its callers count every event, so each learns the cluster count from its own upsert.
   */
  counter(name: string, perMinute: number): ExactCounter {
    return new ExactCounter(name, perMinute, 60_000, this.table, this.opts.clock);
  }

  /**
   * Adds this instance's request counts to the table and learns which addresses the other instances
   * locked out with failures (the API's hot path checks those without a query): two statements.
   */
  async sync(): Promise<void> {
    await Promise.all([this.requests.flush(), this.failures.sync()]);
  }

  /** Stops the timer and adds the last counts (a failure here is not worth failing a shutdown for). */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.syncing;
    await this.requests.flush().catch(() => {});
  }
}

/** 429 with Retry-After when a counter said to wait. */
export function throwIfLimited(retryAfter: number | undefined): void {
  if (retryAfter !== undefined) throw new RateLimited(retryAfter);
}

/**
 * Runs a credential check; a failed one (an error `isFailure` accepts) counts against every key
 * (one upsert), and a failure past the budget is answered 429. Refused at once with 429 while any key
 * has used up its failure budget: `exact` asks the table first (one query: the credential endpoints);
 * otherwise what this instance knows decides (no query: the API's hot path, where a key exhausted on
 * another instance is seen within one sync, and every failure there is still counted and refused).
 * `refuseFirst` narrows the keys refused before the check: a key anyone can name (a public
 * client_id) must only stop failures, or failing on purpose would lock its owner out.
 */
export async function countingFailures<T>(
  counter: ExactCounter,
  keys: readonly string[],
  isFailure: (err: unknown) => boolean,
  check: () => Promise<T>,
  { exact, refuseFirst = keys }: { exact: boolean; refuseFirst?: readonly string[] } = { exact: true },
): Promise<T> {
  throwIfLimited(exact ? await counter.retryAfter(refuseFirst) : counter.knownRetryAfter(refuseFirst));
  try {
    return await check();
  } catch (err) {
    if (isFailure(err)) throwIfLimited(await counter.hit(keys));
    throw err;
  }
}
