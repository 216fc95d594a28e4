/**
 * The load generator, in its own process so that its CPU never counts as the server's: autocannon
 * against one server for one scenario, bounded by `duration`. Reads a job file (argv[2]), prints
 * one progress line per second on stdout, writes its result to the job's `resultFile`, and exits
 * when done or when the orchestrator goes away (stdin closes).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { type DriverReport, makeDriver, type Req, type ScenarioName, type Seed } from './scenarios.js';

export type LoadJob = {
  url: string;
  scenario: ScenarioName;
  durationSec: number;
  connections: number;
  runTag: string;
  seedFile: string;
  resultFile: string;
  refreshTokens?: string[];
};

export type LoadResult = {
  rps: number;
  p50: number;
  p99: number;
  /** Transport errors, timeouts and non-2xx answers. */
  errors: number;
  responses: number;
  durationSec: number;
  driver: DriverReport;
  /** CPU the load generator itself used (µs), to see whether it was the bottleneck. */
  loadCpuMicros: number;
};

const job = JSON.parse(readFileSync(process.argv[2] ?? '', 'utf8')) as LoadJob;
const target = new URL(job.url);
if (!['127.0.0.1', 'localhost', '[::1]'].includes(target.hostname)) {
  throw new Error(`the load generator talks to loopback only, not ${target.host}`);
}
const seed = JSON.parse(readFileSync(job.seedFile, 'utf8')) as Seed;
const driver = makeDriver(job.scenario, seed, job.runTag, job.refreshTokens);
process.stdin.on('end', () => process.exit(2));
process.stdin.resume();

type Context = { req?: Req };
const cpuStart = process.cpuUsage();
const result = await new Promise<autocannon.Result>((resolve, reject) => {
  const instance = autocannon(
    {
      url: job.url,
      connections: job.connections,
      duration: job.durationSec,
      timeout: 10,
      requests: [
        {
          setupRequest: (req, context: Context) => {
            const r = driver.next();
            context.req = r;
            return {
              ...req,
              method: r.method,
              path: r.path,
              headers: { ...req.headers, ...r.headers },
              ...(r.body === undefined ? {} : { body: r.body }),
            };
          },
          onResponse: (status: number, body: string, context: Context) => {
            if (context.req) driver.done(context.req, status, body);
          },
        } as autocannon.Request,
      ],
    },
    (err, res) => (err ? reject(err) : resolve(res)),
  );
  let second = 0;
  let answered = 0;
  let shown = 0;
  instance.on('response', () => answered++);
  instance.on('tick', () => {
    process.stdout.write(`${JSON.stringify({ second: ++second, requests: answered - shown })}\n`);
    shown = answered;
  });
});
const cpu = process.cpuUsage(cpuStart);

const report = driver.report();
const out: LoadResult = {
  rps: result.requests.average,
  p50: result.latency.p50,
  p99: result.latency.p99,
  errors: result.errors + result.timeouts + result.non2xx + report.malformed,
  responses: Object.values(report.statuses).reduce((a, b) => a + b, 0),
  durationSec: result.duration,
  driver: report,
  loadCpuMicros: cpu.user + cpu.system,
};
writeFileSync(job.resultFile, JSON.stringify(out));
process.exit(0);
