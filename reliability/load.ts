import type { Database } from '../src/db/database.js';
import { sleep, tally } from './report.js';

/** One user of the load, with the headers that authenticate its partner's deducts for it. */
export type LoadUser = { id: number; headers: Record<string, string> };

/** What happened to one idempotency key in the end. */
export type KeyOutcome =
  | { kind: 'acked'; key: string; userId: number; amount: number; transactionId: string; replayed: boolean }
  | { kind: 'refused'; key: string; userId: number; status: number; code: string }
  | { kind: 'gave_up'; key: string; userId: number; reason: string };

export type LoadResult = {
  outcomes: KeyOutcome[];
  /** Clients whose request got no answer within CLIENT_TIMEOUT_MS (a hang: always a problem). */
  timeouts: number;
  /** Connections refused or dropped (a killed process): retried elsewhere. */
  networkErrors: number;
  /** 503 problem+json with Retry-After (expected during a database outage only). */
  outage503: number;
  /** The slowest 503 (ms): an outage must be answered fast, not after a hang. */
  slowest503Ms: number;
  /** Requests sent again with the same key after a timeout, a dropped connection, a 409 or a 5xx. */
  retries: number;
  /** 503s without a problem+json body or a Retry-After header. */
  bad503: string[];
  /** 409 "still in progress" answers (the key held by a request that has not finished). */
  inProgress409: number;
  unexpected: string[];
};

export type LoadOptions = {
  /** Idempotency keys are `${prefix}-${i}`; the deduct's description is `rel:${key}`. */
  prefix: string;
  deducts: number;
  concurrency: number;
  users: LoadUser[];
  urls: () => string[];
  /** Whether a 503 is expected now (a database outage under way or just ended). */
  outage?: () => boolean;
  /** Called after every acknowledged deduct with the count so far (fault injection hooks). */
  onAck?: (acked: number) => void;
};

export const CLIENT_TIMEOUT_MS = 10_000;
/** A key is retried for this long at most (a fault lasts seconds; this is a hung cluster). */
const GIVE_UP_MS = 90_000;

/**
 * Deducts from `concurrency` clients at once, each key over the API processes in turn: a timeout,
 * a dropped connection, a 409 (in progress) or a 5xx is retried with the same key on the next
 * process, until the answer is final (200, or a 4xx such as 402 insufficient_points).
 */
export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const result: LoadResult = {
    outcomes: [],
    timeouts: 0,
    networkErrors: 0,
    outage503: 0,
    slowest503Ms: 0,
    retries: 0,
    bad503: [],
    inProgress409: 0,
    unexpected: [],
  };
  let next = 0;
  let acked = 0;
  const one = async (i: number): Promise<KeyOutcome> => {
    const key = `${opts.prefix}-${i}`;
    const user = opts.users[i % opts.users.length];
    if (!user) throw new Error('no users');
    const amount = 1 + (i % 5);
    const body = JSON.stringify({ amount, idempotencyKey: key, description: `rel:${key}` });
    const started = Date.now();
    for (let attempt = 0; ; attempt++) {
      if (attempt > 0) result.retries++;
      if (Date.now() - started > GIVE_UP_MS)
        return { kind: 'gave_up', key, userId: user.id, reason: `no final answer in ${GIVE_UP_MS / 1000} s` };
      const urls = opts.urls();
      const url = urls[(i + attempt) % urls.length];
      let res: Response;
      let text: string;
      const sent = performance.now();
      try {
        tally.requests++;
        res = await fetch(`${url}/api/v1/points/deduct`, {
          method: 'POST',
          headers: { ...user.headers, 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
        });
        text = await res.text();
      } catch (err) {
        if ((err as Error).name === 'TimeoutError') result.timeouts++;
        else result.networkErrors++;
        await sleep(200);
        continue;
      }
      if (res.status === 200) {
        const parsed = JSON.parse(text) as { transactionId: string };
        opts.onAck?.(++acked);
        return {
          kind: 'acked',
          key,
          userId: user.id,
          amount,
          transactionId: parsed.transactionId,
          replayed: res.headers.get('idempotent-replayed') === 'true',
        };
      }
      if (res.status === 409) {
        result.inProgress409++;
        await sleep(50);
        continue;
      }
      if (res.status === 503) {
        result.slowest503Ms = Math.max(result.slowest503Ms, Math.round(performance.now() - sent));
        const retryAfter = Number(res.headers.get('retry-after'));
        const problem = res.headers.get('content-type')?.startsWith('application/problem+json');
        if (!problem || !(retryAfter > 0))
          result.bad503.push(`${res.headers.get('content-type')} ${text.slice(0, 200)}`);
        if (opts.outage?.()) result.outage503++;
        else {
          tally.unexpected5xx++;
          result.unexpected.push(`503 outside an outage: ${text.slice(0, 200)}`);
        }
        // A polite client waits Retry-After; this one caps it at 1 s to keep the suite short.
        await sleep(Math.min(retryAfter > 0 ? retryAfter * 1000 : 1000, 1000));
        continue;
      }
      if (res.status >= 500) {
        tally.unexpected5xx++;
        result.unexpected.push(`${res.status} from ${url}: ${text.slice(0, 300)}`);
        await sleep(100);
        continue;
      }
      const code = String((JSON.parse(text) as { code?: unknown }).code ?? '');
      return { kind: 'refused', key, userId: user.id, status: res.status, code };
    }
  };
  const client = async () => {
    for (;;) {
      const i = next++;
      if (i >= opts.deducts) return;
      result.outcomes.push(await one(i));
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency }, client));
  const acks = result.outcomes.filter((o) => o.kind === 'acked').length;
  tally.acknowledged += acks;
  for (const o of result.outcomes) {
    if (o.kind === 'gave_up') result.unexpected.push(`${o.key}: ${o.reason}`);
    if (o.kind === 'refused' && o.status !== 402) result.unexpected.push(`${o.key}: ${o.status} ${o.code}`);
  }
  return result;
}

/** What the ledger says of one load: lost and duplicated deducts, and the books of every user. */
export type LedgerCheck = { lost: string[]; duplicated: string[]; books: string[] };

/**
 * Compares the outcomes with the ledger: every acknowledged deduct is there exactly once, under the
 * transaction id it was acknowledged with; no key that was not acknowledged left a row; every
 * balance equals the sum of its user's ledger and none is below zero.
 */
export async function checkLedger(
  db: Database,
  prefix: string,
  outcomes: KeyOutcome[],
): Promise<LedgerCheck> {
  const rows = await db.query<{ description: string; n: string; ids: string[] }>(
    `select description, count(*)::text as n, array_agg(public_id) as ids from ledger_entries
     where type = 'deduct' and description like $1 group by description`,
    [`rel:${prefix}-%`],
  );
  const byKey = new Map(rows.map((r) => [r.description.slice(4), r]));
  const lost: string[] = [];
  const duplicated: string[] = [];
  for (const o of outcomes) {
    const row = byKey.get(o.key);
    byKey.delete(o.key);
    if (o.kind === 'acked') {
      if (!row || !row.ids.includes(o.transactionId)) lost.push(`${o.key} (${o.transactionId})`);
      if (row && Number(row.n) > 1) duplicated.push(`${o.key}: ${row.n} rows`);
    } else if (row) duplicated.push(`${o.key}: ${row.n} rows for a key answered ${o.kind}`);
  }
  for (const [key, row] of byKey) duplicated.push(`${key}: ${row.n} rows for a key never sent`);
  tally.lost += lost.length;
  tally.duplicated += duplicated.length;
  return { lost, duplicated, books: await checkBooks(db) };
}

/** Users whose balance is not their ledger's sum, or below zero. */
export async function checkBooks(db: Database): Promise<string[]> {
  const rows = await db.query<{ id: string; balance: number; sum: string }>(
    `select u.id::text, u.balance, coalesce(sum(l.amount), 0)::text as sum
     from users u left join ledger_entries l on l.user_id = u.id group by u.id, u.balance`,
  );
  return rows
    .filter((r) => String(r.balance) !== r.sum || r.balance < 0)
    .map((r) => `user ${r.id}: balance ${r.balance}, ledger ${r.sum}`);
}

/** A few acknowledged keys sent again: each must replay as itself (200, Idempotent-Replayed). */
export async function checkReplays(
  outcomes: KeyOutcome[],
  users: LoadUser[],
  urls: string[],
): Promise<string[]> {
  const problems: string[] = [];
  const acked = outcomes.filter((o) => o.kind === 'acked');
  for (let n = 0; n < Math.min(20, acked.length); n++) {
    const o = acked[Math.floor((n * acked.length) / 20)];
    const user = users.find((u) => u.id === o?.userId);
    if (!o || o.kind !== 'acked' || !user) continue;
    tally.requests++;
    const url = urls[n % urls.length];
    let res: Response;
    let body: { transactionId?: string };
    try {
      res = await fetch(`${url}/api/v1/points/deduct`, {
        method: 'POST',
        headers: { ...user.headers, 'content-type': 'application/json' },
        body: JSON.stringify({ amount: o.amount, idempotencyKey: o.key, description: `rel:${o.key}` }),
        signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
      });
      body = (await res.json()) as { transactionId?: string };
    } catch (err) {
      problems.push(`replay of ${o.key} on ${url}: ${(err as Error).message}`);
      continue;
    }
    if (
      res.status !== 200 ||
      res.headers.get('idempotent-replayed') !== 'true' ||
      body.transactionId !== o.transactionId
    )
      problems.push(`replay of ${o.key}: ${res.status} ${JSON.stringify(body)}`);
  }
  return problems;
}

/** One line on how a load went. */
export function describeLoad(r: LoadResult): string {
  const count = (k: KeyOutcome['kind']) => r.outcomes.filter((o) => o.kind === k).length;
  const replays = r.outcomes.filter((o) => o.kind === 'acked' && o.replayed).length;
  return `${r.outcomes.length} keys: ${count('acked')} acknowledged (${replays} by a replay), ${count('refused')} refused (402), ${count('gave_up')} given up; ${r.networkErrors} dropped connections, ${r.inProgress409} 409 in progress, ${r.outage503} outage 503s (slowest ${r.slowest503Ms} ms), ${r.retries} retries, ${r.timeouts} client timeouts`;
}

/** The problems of a load and its ledger check, as the scenario reports them. */
export function loadProblems(r: LoadResult, ledger: LedgerCheck): string[] {
  return [
    ...r.unexpected,
    ...(r.timeouts > 0
      ? [`${r.timeouts} requests got no answer within ${CLIENT_TIMEOUT_MS / 1000} s (a hang)`]
      : []),
    ...r.bad503.map((b) => `a 503 without problem+json and Retry-After: ${b}`),
    ...ledger.lost.map((l) => `lost: ${l}`),
    ...ledger.duplicated.map((d) => `duplicated: ${d}`),
    ...ledger.books,
  ];
}
