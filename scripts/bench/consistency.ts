/**
 * After every deduct run: did every acknowledged deduct take exactly one point, once, and nothing
 * else move? Deducts still unanswered when the load stopped are first retried with their own
 * idempotency key, as a partner would after a timeout, so every one ends acknowledged. Then, for
 * each user of the run: balance before - after == acknowledged deducts == -(sum of the run's ledger
 * rows), the ledger holds one row per acknowledged transaction, one idempotency record each, and
 * replaying a sample of keys returns the same transaction without moving anything again.
 */
import type pg from 'pg';
import {
  type DriverReport,
  deductRequest,
  type Req,
  type ScenarioName,
  type Seed,
  usersOf,
} from './scenarios.js';

export type Consistency = {
  ok: boolean;
  /** 2xx answers during the run. */
  acknowledged: number;
  /** Sent but unanswered when the run stopped, then retried with the same key. */
  unanswered: number;
  /** Of those, how many the server had already done (answered as a replay). */
  unansweredAlreadyDone: number;
  ledgerRows: number;
  idempotencyRecords: number;
  usersChecked: number;
  replaysChecked: number;
  problems: string[];
};

export async function snapshotBalances(db: pg.Pool, ids: number[]): Promise<Map<number, number>> {
  const { rows } = await db.query<{ id: string; balance: number }>(
    'select id, balance from users where id = any($1::bigint[])',
    [ids],
  );
  return new Map(rows.map((r) => [Number(r.id), r.balance]));
}

type Answer = { status: number; transactionId: string | undefined; replayed: boolean };

async function send(baseUrl: string, req: Req): Promise<Answer> {
  const res = await fetch(new URL(req.path, baseUrl), {
    method: req.method,
    headers: req.headers,
    ...(req.body === undefined ? {} : { body: req.body }),
  });
  const body = (await res.json().catch(() => ({}))) as { transactionId?: string };
  return {
    status: res.status,
    transactionId: body.transactionId,
    replayed: res.headers.get('idempotent-replayed') === 'true',
  };
}

/** Sends `req` until it is not refused as still in flight (409), for at most ~10 s. */
async function settle(baseUrl: string, req: Req): Promise<Answer> {
  for (let i = 0; ; i++) {
    const a = await send(baseUrl, req);
    if (a.status !== 409 || i >= 50) return a;
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function inBatches<T, R>(items: T[], size: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size)
    out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

export async function checkDeducts(opts: {
  db: pg.Pool;
  baseUrl: string;
  seed: Seed;
  scenario: ScenarioName;
  runTag: string;
  before: Map<number, number>;
  report: DriverReport;
  replaySample: number;
}): Promise<Consistency> {
  const { db, baseUrl, seed, scenario, runTag, before, report } = opts;
  const problems: string[] = [];
  const users = usersOf(seed, scenario);
  const request = (user: number, key: string) => deductRequest(seed, scenario, user, key, runTag);

  // key -> [user index, transactionId]
  const acks = new Map<string, [number, string]>();
  for (const [user, key, txn] of report.acknowledged) acks.set(key, [user, txn]);
  if (acks.size !== report.acknowledged.length) problems.push('the server acknowledged one key twice');

  let alreadyDone = 0;
  await inBatches(report.unanswered, 10, async ([user, key]) => {
    const a = await settle(baseUrl, request(user, key));
    if (a.status !== 200 || !a.transactionId) {
      problems.push(`retrying unanswered ${key}: HTTP ${a.status}`);
      return;
    }
    if (a.replayed) alreadyDone++;
    acks.set(key, [user, a.transactionId]);
  });

  const perUser = new Map<number, number>();
  for (const [user] of acks.values()) perUser.set(user, (perUser.get(user) ?? 0) + 1);
  const ids = users.map((u) => u.id);
  const after = await snapshotBalances(db, ids);
  const ledger = await ledgerOf(db, runTag);
  let usersOff = 0;
  users.forEach((u, i) => {
    const acked = perUser.get(i) ?? 0;
    const moved = (before.get(u.id) ?? 0) - (after.get(u.id) ?? 0);
    const rows = ledger.get(u.id) ?? { count: 0, sum: 0 };
    if (moved !== acked || rows.count !== acked || -rows.sum !== acked) {
      if (++usersOff <= 5) {
        problems.push(
          `user ${u.id}: balance moved ${moved}, acknowledged ${acked}, ledger rows ${rows.count} summing to ${rows.sum}`,
        );
      }
    }
  });
  if (usersOff > 5) problems.push(`... and ${usersOff - 5} more users`);

  const ledgerRows = [...ledger.values()].reduce((a, r) => a + r.count, 0);
  if (ledgerRows !== acks.size)
    problems.push(`ledger rows ${ledgerRows} != acknowledged deducts ${acks.size}`);
  const txns = [...acks.values()].map(([, t]) => t);
  if (new Set(txns).size !== txns.length) problems.push('two acknowledged deducts share a transactionId');
  const [found] = (
    await db.query<{ n: string }>(
      'select count(*) as n from ledger_entries where description = $1 and public_id = any($2::text[])',
      [runTag, txns],
    )
  ).rows;
  if (Number(found?.n) !== txns.length) {
    problems.push(`${txns.length - Number(found?.n)} acknowledged transactionIds are not in the ledger`);
  }
  const partnerId = scenario === 'deduct-webhook' ? seed.webhookPartner.id : seed.partner.id;
  const [idem] = (
    await db.query<{ n: string }>(
      'select count(*) as n from idempotency_keys where partner_id = $1 and starts_with(key, $2)',
      [partnerId, `${runTag}.`],
    )
  ).rows;
  const idempotencyRecords = Number(idem?.n);
  if (idempotencyRecords !== acks.size) {
    problems.push(`idempotency records ${idempotencyRecords} != acknowledged deducts ${acks.size}`);
  }

  // Replays: the same request again returns the same transaction, marked as a replay, and moves nothing.
  const sample = [...acks.entries()].sort(() => Math.random() - 0.5).slice(0, opts.replaySample);
  let replaysOff = 0;
  await inBatches(sample, 10, async ([key, [user, txn]]) => {
    const a = await send(baseUrl, request(user, key));
    if (a.status !== 200 || a.transactionId !== txn || !a.replayed) {
      if (++replaysOff <= 3) {
        problems.push(
          `replay of ${key}: HTTP ${a.status}, transaction ${a.transactionId} (first ${txn}), replayed=${a.replayed}`,
        );
      }
    }
  });
  const afterReplays = await snapshotBalances(db, ids);
  const moved = ids.filter((id) => afterReplays.get(id) !== after.get(id)).length;
  if (moved > 0) problems.push(`replays moved ${moved} balances`);
  const ledgerAfter = [...(await ledgerOf(db, runTag)).values()].reduce((a, r) => a + r.count, 0);
  if (ledgerAfter !== ledgerRows) problems.push(`replays added ${ledgerAfter - ledgerRows} ledger rows`);

  return {
    ok: problems.length === 0,
    acknowledged: report.acknowledged.length,
    unanswered: report.unanswered.length,
    unansweredAlreadyDone: alreadyDone,
    ledgerRows,
    idempotencyRecords,
    usersChecked: users.length,
    replaysChecked: sample.length,
    problems,
  };
}

async function ledgerOf(db: pg.Pool, runTag: string): Promise<Map<number, { count: number; sum: number }>> {
  const { rows } = await db.query<{ user_id: string; n: string; total: string }>(
    `select user_id, count(*) as n, sum(amount) as total from ledger_entries
     where description = $1 and type = 'deduct' group by user_id`,
    [runTag],
  );
  return new Map(rows.map((r) => [Number(r.user_id), { count: Number(r.n), sum: Number(r.total) }]));
}
