import type { Consistency } from './consistency.js';
import { SCENARIOS, type ScenarioName } from './scenarios.js';

export type ServerKind = 'reference' | 'project';

/** One measured run of one scenario against one server. */
export type RunRecord = {
  scenario: ScenarioName;
  server: ServerKind;
  run: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  responses: number;
  statuses: Record<string, number>;
  /** Server process CPU per answered request (µs). */
  serverCpuUs: number;
  /** CPU of the bench database's PostgreSQL backends per answered request (µs). */
  pgCpuUs: number;
  /** Share of one core the load generator used. */
  loadCpuShare: number;
  consistency?: Consistency;
  webhook?: { delivered: number; receiverGot: number; drainMs: number; leftQueued: number };
};

export type Summary = {
  scenario: ScenarioName;
  title: string;
  reference: ServerSummary | undefined;
  project: ServerSummary | undefined;
  /** project req/s / reference req/s (medians). */
  ratio: number | undefined;
  /** project CPU per request / reference CPU per request, for the server process and for PostgreSQL. */
  cpuRatio: number | undefined;
  pgCpuRatio: number | undefined;
};

export type ServerSummary = {
  runs: number[];
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  serverCpuUs: number;
  pgCpuUs: number;
  /** Every deduct run of this server passed the consistency check (undefined: not a deduct scenario). */
  consistent: boolean | undefined;
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};

function summarise(runs: RunRecord[]): ServerSummary | undefined {
  if (runs.length === 0) return undefined;
  return {
    runs: runs.map((r) => Math.round(r.rps)),
    rps: median(runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    errors: runs.reduce((a, r) => a + r.errors, 0),
    serverCpuUs: median(runs.map((r) => r.serverCpuUs)),
    pgCpuUs: median(runs.map((r) => r.pgCpuUs)),
    consistent: runs.some((r) => r.consistency) ? runs.every((r) => r.consistency?.ok) : undefined,
  };
}

export function summarize(records: RunRecord[], scenarios: ScenarioName[]): Summary[] {
  return scenarios.map((scenario) => {
    const of = (server: ServerKind) => records.filter((r) => r.scenario === scenario && r.server === server);
    const reference = summarise(of('reference'));
    const project = summarise(of('project'));
    return {
      scenario,
      title: SCENARIOS[scenario].title,
      reference,
      project,
      ratio: reference && project ? project.rps / reference.rps : undefined,
      cpuRatio: reference && project ? project.serverCpuUs / reference.serverCpuUs : undefined,
      pgCpuRatio: reference && project ? project.pgCpuUs / reference.pgCpuUs : undefined,
    };
  });
}

const n = (x: number) => Math.round(x).toLocaleString('en-US');
const x2 = (v: number | undefined) => (v === undefined ? '' : `${v.toFixed(2)}x`);

/** The table, as Markdown (readable in a terminal and pasteable into the README). */
export function table(summaries: Summary[]): string {
  const head =
    '| scenario | server | req/s (runs) | p50 ms | p99 ms | errors | server CPU µs/req | PG CPU µs/req | req/s vs ref | CPU vs ref | consistent |';
  const rule = '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|:--:|';
  const lines = [head, rule];
  for (const s of summaries) {
    for (const kind of ['reference', 'project'] as const) {
      const v = s[kind];
      if (!v) continue;
      const project = kind === 'project';
      lines.push(
        `| ${kind === 'reference' ? s.title : ''} | ${kind} | ${n(v.rps)} (${v.runs.map(n).join(', ')}) | ${v.p50} | ${v.p99} | ${v.errors} | ${n(v.serverCpuUs)} | ${n(v.pgCpuUs)} | ${project ? x2(s.ratio) : ''} | ${project ? `${x2(s.cpuRatio)} / PG ${x2(s.pgCpuRatio)}` : ''} | ${v.consistent === undefined ? '' : v.consistent ? 'yes' : 'NO'} |`,
      );
    }
  }
  return lines.join('\n');
}
