/**
 * `npm run bench`: the project against a naive node:http + pg reference doing the same work, in one
 * run, each in its own process, with the load generator (autocannon) in a third, on the real
 * PostgreSQL, loopback only. Figures are reported as ratios to the reference because these machines
 * are shared and noisy. See README.md "Performance" for how to read the table.
 *
 *   npm run bench -- [--duration 10] [--warmup 3] [--connections 50] [--runs 2]
 *                    [--scenarios balance,deduct-spread,...] [--json file] [--rss60] [--quick]
 *                    [--profile dir]
 *
 * --profile dir: both servers run under `node --cpu-prof`, writing their .cpuprofile files into
 * dir/project and dir/reference (read them with `npx tsx scripts/bench/profile-summary.ts
 * dir/project/*.0.001.cpuprofile`).
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { Database } from '../../src/db/database.js';
import { privyApp } from '../../test/support/privy.js';
import { type Child, killAllNow, startNode, startServerProcess, stopAll } from './children.js';
import { checkDeducts, snapshotBalances } from './consistency.js';
import type { LoadJob, LoadResult } from './load.js';
import { cpuMicros, PgBackendCpu, rssBytes } from './proc-stats.js';
import { FastReceiver } from './receiver.js';
import { type RunRecord, type ServerKind, summarize, table } from './report.js';
import { SCENARIO_NAMES, SCENARIOS, type ScenarioName, type Seed, usersOf } from './scenarios.js';
import { refreshPool, seedBench } from './seed.js';

// ---------------------------------------------------------------- options
const { values: argv } = parseArgs({
  options: {
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    runs: { type: 'string' },
    scenarios: { type: 'string' },
    json: { type: 'string' },
    rss60: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    profile: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (argv.help) {
  console.log(readFileSync(new URL(import.meta.url), 'utf8').split('*/')[0]);
  process.exit(0);
}
const positive = (name: string, v: string | undefined, fallback: number) => {
  const x = v === undefined ? fallback : Number(v);
  if (!Number.isInteger(x) || x < 1) throw new Error(`--${name} must be a whole number >= 1`);
  return x;
};
const opts = {
  durationSec: positive('duration', argv.duration, argv.quick ? 2 : 10),
  warmupSec: positive('warmup', argv.warmup, argv.quick ? 1 : 3),
  connections: positive('connections', argv.connections, 50),
  runs: positive('runs', argv.runs, argv.quick ? 1 : 2),
  scenarios: (argv.scenarios?.split(',').map((s) => s.trim()) ?? SCENARIO_NAMES) as ScenarioName[],
  json: argv.json ?? '.data/bench/results.json',
  rss60: argv.rss60,
  quick: argv.quick,
  profile: argv.profile,
};
for (const s of opts.scenarios) {
  if (!(s in SCENARIOS)) throw new Error(`unknown scenario ${s}; choose from ${SCENARIO_NAMES.join(', ')}`);
}
const RSS_SECONDS = 60;
const REPLAY_SAMPLE = 100;

const ADMIN_URL =
  process.env.BENCH_PG_URL ?? process.env.TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(ADMIN_URL).hostname)) {
  throw new Error(`the bench runs on a loopback PostgreSQL only, not ${new URL(ADMIN_URL).host}`);
}

// ---------------------------------------------------------------- bounded, and cleans up after itself
const perRun = opts.durationSec + 8;
const budgetSec =
  120 +
  opts.scenarios.length * 2 * (opts.warmupSec + 8 + opts.runs * (perRun + 15)) +
  (opts.rss60 ? RSS_SECONDS + 60 : 0);
const state: {
  admin?: pg.Pool;
  benchDb?: pg.Pool;
  seedDb?: Database;
  dbName?: string;
  tmp?: string;
  receiver?: FastReceiver;
} = {};
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    await stopAll(5000).catch(() => {});
    await state.receiver?.close().catch(() => {});
    await state.seedDb?.close().catch(() => {});
    await state.benchDb?.end().catch(() => {});
    if (state.admin && state.dbName) {
      await state.admin.query(`drop database if exists ${state.dbName} with (force)`).catch(() => {});
    }
    await state.admin?.end().catch(() => {});
    if (state.tmp) rmSync(state.tmp, { recursive: true, force: true });
  })();
  return cleaning;
}
const deadline = setTimeout(() => {
  console.error(`\nbench: over its ${budgetSec} s budget; stopping.`);
  void cleanup().finally(() => process.exit(1));
}, budgetSec * 1000);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  // `on`, not `once`: Ctrl-C reaches this process twice (from the terminal and relayed by tsx), and
  // the second must not kill it before the database is dropped. The deadline still bounds cleanup.
  process.on(signal, () => {
    if (cleaning) return;
    console.error(`\nbench: ${signal}; stopping the servers and dropping the database.`);
    void cleanup().finally(() => process.exit(130));
  });
}
process.on('exit', killAllNow);

// ---------------------------------------------------------------- progress
const tty = process.stderr.isTTY;
function progress(text: string, final = false) {
  if (tty) process.stderr.write(`\r\x1b[K${text}${final ? '\n' : ''}`);
  else if (final) process.stderr.write(`${text}\n`);
}

// ---------------------------------------------------------------- servers
type Server = Child & { url: string; kind: ServerKind; note: string };

async function main() {
  state.admin = new pg.Pool({ connectionString: ADMIN_URL, max: 2 });
  const [{ version }] = (await state.admin.query<{ version: string }>('select version()')).rows as [
    { version: string },
  ];
  state.dbName = `tian_bench_${process.pid}_${randomBytes(3).toString('hex')}`;
  await state.admin.query(`create database ${state.dbName}`);
  const dbUrl = new URL(ADMIN_URL);
  dbUrl.pathname = `/${state.dbName}`;
  state.benchDb = new pg.Pool({ connectionString: dbUrl.toString(), max: 4 });
  // Dropping the database at the end terminates whatever connection is still open on it: an idle
  // client's error must not take the bench down after the table is printed.
  state.benchDb.on('error', () => {});
  state.admin.on('error', () => {});
  state.tmp = mkdtempSync(join(os.tmpdir(), 'tian-bench-'));

  const cpu = os.cpus();
  const environment = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpu.length,
    cpuModel: cpu[0]?.model ?? 'unknown',
    loadAverage: os.loadavg().map((l) => Number(l.toFixed(2))),
    database: `${version.split(' on ')[0]} at ${dbUrl.host} (database ${state.dbName}, dropped after the run)`,
  };
  console.log('TIAN Points bench: project vs a naive node:http + pg reference, same requests, same database');
  console.log(
    `  Node ${environment.node}; ${environment.cpus} CPUs (${environment.cpuModel}); load average ${environment.loadAverage.join(' ')}`,
  );
  console.log(`  ${environment.database}`);
  console.log(
    `  ${opts.connections} connections; ${opts.warmupSec} s warm-up then ${opts.runs} x ${opts.durationSec} s per scenario and server; budget ${budgetSec} s`,
  );

  const privy = await privyApp('tian-bench');
  const common = {
    DATABASE_URL: dbUrl.toString(),
    ...privy.env,
    PORT: '0',
    HOST: '127.0.0.1',
    PUBLIC_URL: 'https://bench.invalid',
    WEBHOOK_SECRET_KEY: randomBytes(32).toString('base64'),
    SESSION_SECRET: randomBytes(32).toString('base64url'),
    // The bench is one client hammering a few identities: limits would only measure the limiter.
    RATE_LIMIT_PER_MINUTE: '1000000000',
    AUTH_RATE_LIMIT_PER_MINUTE: '1000000',
    SHUTDOWN_TIMEOUT_MS: '5000',
    // A delivery's first attempt is made in-process; its job waits this + 5 s before it may retry.
    WEBHOOK_TIMEOUT_MS: '2000',
    VALIDATE_RESPONSES: 'false',
    LOG_REQUESTS: 'false',
  };
  const production = { ...common, NODE_ENV: 'production', WEBHOOK_ALLOW_HTTP_LOCALHOST: 'false' };
  // One directory per server, so each one's profiles can be summarised on their own.
  const profiling = (kind: ServerKind) => {
    if (!opts.profile) return [];
    mkdirSync(join(opts.profile, kind), { recursive: true });
    return ['--cpu-prof', '--cpu-prof-dir', join(opts.profile, kind)];
  };
  const startProject = async (env: Record<string, string>, note: string): Promise<Server> => ({
    ...(await startServerProcess(
      'project',
      'src/main.ts',
      env,
      /listening on (http:\/\/\S+)/,
      60_000,
      profiling('project'),
    )),
    kind: 'project',
    note,
  });
  const startReference = async (env: Record<string, string>): Promise<Server> => ({
    ...(await startServerProcess(
      'reference',
      'scripts/bench/reference-server.ts',
      env,
      /listening on (http:\/\/\S+)/,
      60_000,
      profiling('reference'),
    )),
    kind: 'reference',
    note: 'node:http + pg, pool of 20',
  });

  progress('starting the project (migrates the database)...');
  let project = await startProject(
    production,
    'NODE_ENV=production (request validation on, response validation off)',
  );
  const { seed, db: seedDb } = await seedBench(dbUrl.toString(), privy, (n) =>
    progress(`seeding: ${n} users with balances, bearer tokens and Privy sessions`),
  );
  state.seedDb = seedDb;
  progress(`seeded ${seed.users.length} users + 1 hot user`, true);
  const seedFile = join(state.tmp, 'seed.json');
  writeFileSync(seedFile, JSON.stringify(seed));
  let reference = await startReference(common);

  const records: RunRecord[] = [];
  const notes: string[] = [];
  let rss: Record<string, unknown> | undefined;

  const measure = async (server: Server, scenario: ScenarioName, run: number, seconds: number) => {
    const label = run === 0 ? 'warm-up' : `run ${run}/${opts.runs}`;
    const runTag = `b-${scenario}-${server.kind === 'project' ? 'prj' : 'ref'}-${run === 0 ? 'w' : run}-${randomBytes(2).toString('hex')}`;
    const result = await loadRun(server, scenario, {
      run,
      runTag,
      seconds,
      seed,
      seedFile,
      label: `${SCENARIOS[scenario].title}, ${server.kind}, ${label}`,
    });
    if (run > 0) records.push(result);
    return result;
  };

  const bench = async (servers: () => Server[], scenario: ScenarioName) => {
    for (const s of servers()) await measure(s, scenario, 0, opts.warmupSec);
    for (let run = 1; run <= opts.runs; run++) {
      // Alternate who goes first, so a drift in the machine's load does not favour one side.
      const order = run % 2 ? servers() : [...servers()].reverse();
      for (const s of order) await measure(s, scenario, run, opts.durationSec);
    }
  };

  const plain = opts.scenarios.filter((s) => s !== 'deduct-webhook');
  for (const scenario of plain) await bench(() => [reference, project], scenario);

  if (opts.rss60) {
    await quietlyStop(project);
    project = await startProject(production, project.note);
    rss = await rssRun(project, seed, seedFile);
  }

  if (opts.scenarios.includes('deduct-webhook')) {
    // Production refuses plain-http loopback webhook URLs (SSRF rules), and the receiver must be on
    // 127.0.0.1: this one scenario runs the project outside production, with response validation
    // still off as in production. Everything else about the request path is the same.
    await quietlyStop(project);
    state.receiver = await FastReceiver.start();
    const note =
      'NODE_ENV=development, VALIDATE_RESPONSES=false, WEBHOOK_ALLOW_HTTP_LOCALHOST=true (production refuses a loopback receiver)';
    notes.push(`deduct + webhook: the project ran with ${note}.`);
    project = await startProject(
      { ...common, NODE_ENV: 'development', WEBHOOK_ALLOW_HTTP_LOCALHOST: 'true' },
      note,
    );
    const created = await fetch(new URL('/api/v1/partner/webhook-endpoints', project.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-api-key': seed.webhookPartner.apiKey },
      body: JSON.stringify({ url: state.receiver.url, events: ['points.deducted'] }),
    });
    const endpoint = (await created.json()) as { endpointId?: string; secret?: string };
    if (created.status !== 201 || !endpoint.endpointId || !endpoint.secret) {
      throw new Error(`creating the webhook endpoint: HTTP ${created.status} ${JSON.stringify(endpoint)}`);
    }
    await quietlyStop(reference);
    reference = await startReference({
      ...common,
      BENCH_WEBHOOK_SECRETS: JSON.stringify({ [endpoint.endpointId]: endpoint.secret }),
    });
    await bench(() => [reference, project], 'deduct-webhook');
  }

  // ------------------------------------------------------------ report
  const summaries = summarize(records, opts.scenarios);
  const text = table(summaries);
  console.log(`\n${text}\n`);
  for (const s of summaries) {
    if (s.ratio !== undefined) console.log(`  ${s.title}: ${s.ratio.toFixed(2)}x the reference's req/s`);
  }
  for (const r of records.filter((r) => r.consistency && !r.consistency.ok)) {
    console.log(
      `  INCONSISTENT ${r.scenario} ${r.server} run ${r.run}: ${r.consistency?.problems.join('; ')}`,
    );
  }
  const checked = records.filter((r) => r.consistency);
  if (checked.length > 0) {
    const ok = checked.filter((r) => r.consistency?.ok).length;
    console.log(
      `  consistency: ${ok}/${checked.length} deduct runs consistent (balances, ledger rows, idempotency records, ${REPLAY_SAMPLE} replays each)`,
    );
  }
  for (const note of notes) console.log(`  note: ${note}`);
  if (rss) console.log(`  RSS: ${rss.summary}`);
  const output = { environment, options: opts, project: project.note, summaries, runs: records, rss, notes };
  mkdirSync(dirname(opts.json), { recursive: true });
  writeFileSync(opts.json, `${JSON.stringify(output, null, 2)}\n`);
  console.log(`  JSON: ${opts.json}`);
  await Promise.all([quietlyStop(project), quietlyStop(reference)]);
  return checked.every((r) => r.consistency?.ok);
}

/**
 * Stops a server once the requests the load generator abandoned at the end of its last run have
 * finished (it stops waiting for answers, the server does not), so shutdown does not cut them off.
 */
async function quietlyStop(server: Server): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 2000));
  await server.stop();
}

/** One load run: CPU of the server and of PostgreSQL around it; the consistency check after a deduct run. */
async function loadRun(
  server: Server,
  scenario: ScenarioName,
  how: {
    run: number;
    runTag: string;
    seconds: number;
    seed: Seed;
    seedFile: string;
    label: string;
    onSecond?: (second: number) => void;
  },
): Promise<RunRecord> {
  const { runTag, seconds, seed, seedFile, label, onSecond } = how;
  const tmp = state.tmp ?? '';
  const benchDb = state.benchDb as pg.Pool;
  const deduct = SCENARIOS[scenario].deduct;
  const ids = usersOf(seed, scenario).map((u) => u.id);
  const before = deduct ? await snapshotBalances(benchDb, ids) : new Map<number, number>();
  const job: LoadJob = {
    url: server.url,
    scenario,
    durationSec: seconds,
    connections: opts.connections,
    runTag,
    seedFile,
    resultFile: join(tmp, `${runTag}.result.json`),
    ...(scenario === 'refresh' && state.seedDb
      ? { refreshTokens: await refreshPool(state.seedDb, seed, opts.connections * 4) }
      : {}),
  };
  const jobFile = join(tmp, `${runTag}.job.json`);
  writeFileSync(jobFile, JSON.stringify(job));

  const pgCpu = new PgBackendCpu(state.admin as pg.Pool, state.dbName ?? '');
  await pgCpu.start();
  const cpuBefore = cpuMicros(server.pid) ?? 0;
  const wall = Date.now();
  const load = startNode('load', 'scripts/bench/load.ts', {
    args: [jobFile],
    onLine: (line) => {
      const tick = JSON.parse(line) as { second: number; requests: number };
      onSecond?.(tick.second);
      progress(`  ${label}: ${tick.second}/${seconds} s, ${tick.requests.toLocaleString('en-US')} req/s`);
    },
  });
  const timer = setTimeout(() => void load.stop(1000), (seconds + 60) * 1000);
  const [code] = await once(load.process, 'exit');
  clearTimeout(timer);
  if (code !== 0) throw new Error(`${label}: the load generator exited with ${code}`);
  // Deliveries the project left to its job queue are work these requests caused: wait for them
  // (bounded) and count their CPU in the run.
  const drained =
    scenario === 'deduct-webhook' && server.kind === 'project'
      ? await drainWebhookJobs(benchDb)
      : { drainMs: 0, leftQueued: 0 };
  const serverCpu = (cpuMicros(server.pid) ?? cpuBefore) - cpuBefore;
  const pgMicros = await pgCpu.stop();
  const elapsed = (Date.now() - wall) / 1000;
  const result = JSON.parse(readFileSync(job.resultFile, 'utf8')) as LoadResult;
  const record: RunRecord = {
    scenario,
    server: server.kind,
    run: how.run,
    rps: result.rps,
    p50: result.p50,
    p99: result.p99,
    errors: result.errors,
    responses: result.responses,
    statuses: result.driver.statuses,
    serverCpuUs: 0,
    pgCpuUs: 0,
    loadCpuShare: result.loadCpuMicros / 1e6 / elapsed,
  };
  if (scenario === 'deduct-webhook') {
    const got = state.receiver?.received ?? 0;
    record.webhook = { ...drained, delivered: result.driver.webhookDelivered, receiverGot: got };
    if (state.receiver) state.receiver.received = 0;
  }
  if (deduct) {
    record.consistency = await checkDeducts({
      db: benchDb,
      baseUrl: server.url,
      seed,
      scenario,
      runTag,
      before,
      report: result.driver,
      replaySample: REPLAY_SAMPLE,
    });
  }
  // Per request the server did in the window: the answered ones, and deducts it finished but the
  // load generator stopped waiting for (found by the consistency check's retries). Other requests
  // unanswered at the end (at most one per connection) are not counted.
  const done = Math.max(1, result.responses + (record.consistency?.unansweredAlreadyDone ?? 0));
  record.serverCpuUs = serverCpu / done;
  record.pgCpuUs = pgMicros / done;
  const c = record.consistency;
  progress(
    `  ${label}: ${Math.round(record.rps).toLocaleString('en-US')} req/s, p99 ${record.p99} ms, ${record.errors} errors, server ${Math.round(record.serverCpuUs)} µs/req, PG ${Math.round(record.pgCpuUs)} µs/req${c ? `, consistent: ${c.ok ? 'yes' : `NO (${c.problems.join('; ')})`}` : ''}${record.webhook ? `, webhookDelivered ${record.webhook.delivered}, receiver got ${record.webhook.receiverGot}${record.webhook.drainMs ? `, job queue drained in ${(record.webhook.drainMs / 1000).toFixed(1)} s` : ''}` : ''}`,
    true,
  );
  return record;
}

/** Waits until no webhook delivery job is left to run (at most 60 s); returns how long it took. */
async function drainWebhookJobs(db: pg.Pool): Promise<{ drainMs: number; leftQueued: number }> {
  const started = Date.now();
  for (;;) {
    const [row] = (
      await db.query<{ n: string }>(
        `select count(*) as n from graphile_worker.jobs
         where task_identifier = 'deliverWebhook' and attempts < max_attempts`,
      )
    ).rows;
    const left = Number(row?.n);
    if (left === 0 || Date.now() - started > 60_000)
      return { drainMs: Date.now() - started, leftQueued: left };
    progress(`  waiting for the project's job queue: ${left} webhook delivery jobs left`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** A fresh project process under 60 s of deducts: RSS at start (after warm-up), end and peak. */
async function rssRun(project: Server, seed: Seed, seedFile: string): Promise<Record<string, unknown>> {
  const fresh = rssBytes(project.pid) ?? 0;
  const tag = (run: string) => `b-rss-prj-${run}-${randomBytes(2).toString('hex')}`;
  await loadRun(project, 'deduct-spread', {
    run: 0,
    runTag: tag('w'),
    seconds: 5,
    seed,
    seedFile,
    label: 'RSS warm-up (5 s of deducts)',
  });
  const samples: number[] = [];
  const record = await loadRun(project, 'deduct-spread', {
    run: 1,
    runTag: tag('1'),
    seconds: RSS_SECONDS,
    seed,
    seedFile,
    label: `RSS run (${RSS_SECONDS} s of deducts, 1,000 users)`,
    onSecond: () => {
      const r = rssBytes(project.pid);
      if (r !== undefined) samples.push(r);
    },
  });
  const mb = (b: number) => Math.round(b / 1024 / 1024);
  // RSS saw-tooths with garbage collection, so start and end are 10 s means, not single samples.
  const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / Math.max(1, xs.length);
  const start = mean(samples.slice(0, 10));
  const end = mean(samples.slice(-10));
  const peak = Math.max(...samples);
  const growth = start ? (end - start) / start : 0;
  return {
    freshMb: mb(fresh),
    startMb: mb(start),
    endMb: mb(end),
    peakMb: mb(peak),
    growth: Number(growth.toFixed(3)),
    flat: growth < 0.1,
    seconds: RSS_SECONDS,
    rps: Math.round(record.rps),
    consistent: record.consistency?.ok,
    samplesMb: samples.map(mb),
    summary: `fresh process ${mb(fresh)} MB; first 10 s after warm-up ${mb(start)} MB, last 10 s of ${RSS_SECONDS} ${mb(end)} MB (means), peak ${mb(peak)} MB: ${(growth * 100).toFixed(1)} % growth (${growth < 0.1 ? 'flat, < 10 %' : 'NOT flat'}) at ${Math.round(record.rps)} req/s`,
  };
}

let ok = false;
try {
  ok = await main();
} catch (err) {
  // After Ctrl-C the children die under the run; that is not a failure worth a stack trace.
  if (!cleaning) console.error(`\nbench failed: ${(err as Error).stack ?? err}`);
} finally {
  clearTimeout(deadline);
  await cleanup();
}
process.exit(ok ? 0 : 1);
