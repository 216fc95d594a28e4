/**
 * `npm run test:reliability`: the money guarantees under real faults, with real processes on a
 * fresh database of the real PostgreSQL server (127.0.0.1:5432, TEST_PG_URL), loopback only:
 *
 * 1. double spend across processes: 3 API processes + 1 worker, concurrent deducts over 20 users
 *    from retrying clients;
 * 2. crash: SIGKILL an API process and the worker mid-load, restart them;
 * 3. database outage mid-load: connections terminated and refused for a few seconds;
 * 4. webhook receiver down for a whole load, up afterwards: every event of 1-4 delivered;
 * 5. subscription renewals due during a worker crash: charged exactly once after the restart;
 * 6. embedded database: SIGKILL during writes, reopened with every acknowledged write;
 * 7. hostile input at scale against one API process: no 5xx, no state change on a 4xx.
 *
 * Ends with exactly one summary line (see Tally.line) and exits 1 when anything was lost,
 * duplicated, answered 5xx unexpectedly, or a scenario failed.
 */
import { hostileInputs } from '../test/support/hostile-inputs.js';
import { prepareOutage } from '../test/support/outage.js';
import { WebhookReceiver } from '../test/support/webhook-receiver.js';
import { partnerApi } from '../test/support/webhooks.js';
import { type Cluster, killEveryChild, saveOutputs, startCluster } from './cluster.js';
import { embeddedKillDuringWrites } from './embedded.js';
import {
  checkLedger,
  checkReplays,
  describeLoad,
  type LoadOptions,
  type LoadUser,
  loadProblems,
  runLoad,
} from './load.js';
import { log, scenario, sleep, tally } from './report.js';
import { renewalsDuringWorkerCrash } from './subscriptions.js';
import { Deliveries } from './webhooks.js';

/** The whole run is bounded: past this, everything is killed and the run fails. */
const DEADLINE_MS = 9 * 60_000;
const USERS = 20;

let cluster: Cluster | undefined;
let receiver: WebhookReceiver | undefined;

async function main(): Promise<void> {
  const started = performance.now();
  log('starting the control server, 3 API processes (RUN_JOBS=false) and 1 worker on a fresh database');
  cluster = await startCluster();
  const c = cluster;
  const { t } = c;
  log(`  up in ${((performance.now() - started) / 1000).toFixed(1)} s: ${c.urls().join(' ')}`);

  receiver = await WebhookReceiver.start();
  const partner = await t.partner({ name: 'Reliability Load' });
  const endpoint = await partnerApi(t, partner.clientSecret).createEndpoint(receiver.url('/hook'), [
    'points.deducted',
  ]);
  tally.requests++;
  const deliveries = new Deliveries(receiver, endpoint.secret);
  // Four users can afford only part of what is asked of them: their deducts end in 402s, never below 0.
  const users: LoadUser[] = [];
  for (let i = 0; i < USERS; i++) {
    const user = await t.user({ points: i < 4 ? 300 : 1_000_000 });
    const { accessToken } = await t.tokens(partner.id, user.id, 'deduct balance');
    users.push({ id: user.id, headers: { authorization: `Bearer ${accessToken}` } });
  }
  const acked: string[] = [];
  const base = (prefix: string): LoadOptions => ({
    prefix,
    deducts: 0,
    concurrency: 24,
    users,
    urls: c.urls,
  });
  /** Runs a load, checks it against the ledger and replays, and reports into `problems`. */
  const loadAndCheck = async (opts: LoadOptions, problems: string[], settle?: () => Promise<void>) => {
    const load = await runLoad(opts);
    log(`  ${describeLoad(load)}`);
    // The fault's own driver (a restart, the end of an outage) finishes before anything is checked.
    await settle?.();
    const ledger = await checkLedger(t.db, opts.prefix, load.outcomes);
    problems.push(...loadProblems(load, ledger), ...(await checkReplays(load.outcomes, users, c.urls())));
    for (const o of load.outcomes) if (o.kind === 'acked') acked.push(o.transactionId);
    return load;
  };

  await scenario('1 double spend across 3 API processes + 1 worker', async (problems) => {
    await loadAndCheck({ ...base('s1'), deducts: 1000 }, problems);
  });

  await scenario('2 SIGKILL an API process and the worker mid-load', async (problems) => {
    let restarted: Promise<void> | undefined;
    await loadAndCheck(
      {
        ...base('s2'),
        deducts: 600,
        onAck: (n) => {
          if (n !== 100) return;
          restarted = (async () => {
            await Promise.all([c.killApi(1), c.killWorker()]);
            tally.faults += 2;
            log('  SIGKILLed API process 2 and the worker after 100 acknowledged deducts; restarting them');
            await Promise.all([c.restartApi(1), c.startWorker()]);
            log('  API process 2 and the worker are back');
          })().catch((err: Error) => {
            problems.push(`restart failed: ${err.message}`);
          });
        },
      },
      problems,
      async () => {
        await restarted;
      },
    );
  });

  await scenario('3 database outage mid-load (connections terminated, then refused)', async (problems) => {
    // The administrator connection is opened before the load (the server may be short of them later).
    const outageSwitch = await prepareOutage(t);
    let outage = false;
    let outageOver: Promise<void> | undefined;
    const probes: string[] = [];
    const load = await loadAndCheck(
      {
        ...base('s3'),
        deducts: 500,
        outage: () => outage,
        onAck: (n) => {
          if (n !== 150) return;
          outage = true;
          outageOver = (async () => {
            const o = await outageSwitch.start();
            tally.faults += 2;
            log('  outage: ALLOW_CONNECTIONS false on the test database and every connection terminated');
            await sleep(1_000);
            probes.push(...(await probe(c.urls()[0] ?? '')));
            await sleep(2_000);
            await o.terminateConnections();
            await o.end();
            log('  outage over after 3 s: connections allowed again');
            // The pools reconnect on their next checkout; answers already under way may still be 503s.
            await sleep(5_000);
            outage = false;
          })().catch((err: Error) => {
            problems.push(`outage driver: ${err.message}`);
          });
        },
      },
      problems,
      async () => {
        await outageOver;
      },
    );
    problems.push(...probes);
    if (load.outage503 === 0) problems.push('no request saw the outage (no 503 at all)');
    if (c.worker?.child.exitCode !== null && c.worker?.child.exitCode !== undefined)
      problems.push(
        `the worker exited during the outage (${c.worker.child.exitCode}): ${c.worker.output().slice(-500)}`,
      );
    for (const [i, api] of c.apis.entries())
      if (api.child.exitCode !== null)
        problems.push(`API process ${i + 1} exited during the outage: ${api.output().slice(-500)}`);
    const ready = await fetch(`${c.urls()[0]}/readyz`);
    tally.requests++;
    if (ready.status !== 200) problems.push(`/readyz after the outage: ${ready.status}`);
  });

  await scenario('4 webhook receiver down for a whole load, up afterwards', async (problems) => {
    const r = receiver as WebhookReceiver;
    await r.down();
    tally.faults++;
    log('  receiver down');
    await loadAndCheck({ ...base('s4'), deducts: 300 }, problems);
    await r.up();
    log(
      `  receiver up again; waiting for the events of scenarios 1-4 (${acked.length} acknowledged deducts)`,
    );
    const waitStarted = performance.now();
    const result = await deliveries.expectDelivered(t, acked, 150_000, () => c.tick());
    problems.push(...result.problems);
    const missing = result.problems.length;
    log(
      `  ${result.events} events of acknowledged deducts checked (${result.requests} requests received, signatures verified, ${missing} problems) ${((performance.now() - waitStarted) / 1000).toFixed(1)} s after the receiver came back`,
    );
  });

  await scenario('5 subscription renewals due during a worker crash', async (problems) => {
    await renewalsDuringWorkerCrash(c, problems);
  });

  await scenario('6 embedded database: SIGKILL during writes', async (problems) => {
    await embeddedKillDuringWrites(c, problems);
  });

  await scenario('7 hostile input at scale against API process 1', async (problems) => {
    const hostile = await hostileInputs(t, { target: c.urls()[0] ?? '' });
    for (const op of hostile.operations) await hostile.runOperation(op);
    await hostile.runRaw();
    tally.requests += hostile.requests();
    const fivexx = hostile.failures.filter((f) => /^5\d\d /.test(f));
    tally.unexpected5xx += fivexx.length;
    problems.push(...hostile.failures);
    problems.push(
      ...(await hostile.ledgerMismatches()).map((m) => `user ${m.id}: balance ${m.balance}, ledger ${m.sum}`),
    );
    log(
      `  ${hostile.requests()} requests over ${hostile.operations.length} operations (${hostile.runs} generated each + hand-picked + raw), seed ${hostile.seed}, ${hostile.failures.length} failures`,
    );
  });
}

/** During an outage: /healthz stays 200, /readyz and a deduct answer 503 problem+json with Retry-After. */
async function probe(url: string): Promise<string[]> {
  const problems: string[] = [];
  const timed = async (path: string) => {
    tally.requests++;
    const sent = performance.now();
    const res = await fetch(`${url}${path}`, { signal: AbortSignal.timeout(10_000) });
    await res.text();
    return { res, ms: performance.now() - sent };
  };
  const health = await timed('/healthz');
  if (health.res.status !== 200) problems.push(`/healthz during the outage: ${health.res.status}`);
  const ready = await timed('/readyz');
  if (ready.res.status !== 503 || !ready.res.headers.get('retry-after'))
    problems.push(
      `/readyz during the outage: ${ready.res.status}, Retry-After ${ready.res.headers.get('retry-after')}`,
    );
  log(
    `  during the outage: /healthz ${health.res.status} in ${Math.round(health.ms)} ms, /readyz ${ready.res.status} in ${Math.round(ready.ms)} ms`,
  );
  return problems;
}

async function shutdown(): Promise<void> {
  await receiver?.close();
  await cluster?.stopAll();
}

const timer = setTimeout(() => {
  log(`the run took longer than ${DEADLINE_MS / 60_000} minutes: killing everything`);
  tally.scenarios.set('deadline', ['the run did not finish in time']);
  killEveryChild();
  log(`the processes' output: ${saveOutputs()}/`);
  console.log(tally.line());
  process.exit(1);
}, DEADLINE_MS);

for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => {
    killEveryChild();
    process.exit(130);
  });

const started = performance.now();
try {
  await main();
} catch (err) {
  tally.scenarios.set('setup', [(err as Error).stack ?? String(err)]);
  log(`setup failed: ${(err as Error).stack ?? String(err)}`);
}
try {
  await shutdown();
} catch (err) {
  log(`shutdown: ${(err as Error).message}`);
}
killEveryChild();
clearTimeout(timer);
log(`the processes' output: ${saveOutputs()}/`);
log(`total ${((performance.now() - started) / 1000).toFixed(1)} s`);
console.log(tally.line());
process.exit(tally.failed ? 1 : 0);
