import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type pg from 'pg';

/**
 * CPU time and memory of processes, read from /proc (Linux). CPU is utime + stime in clock ticks
 * (usually 10 ms each), so a figure per request is only meaningful over thousands of requests.
 */

const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU of `pid` in microseconds, or undefined once the process is gone. */
export function cpuMicros(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return ((utime + stime) * 1_000_000) / CLK_TCK;
}

/** Resident set size of `pid` in bytes (VmRSS), or undefined once the process is gone. */
export function rssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * CPU spent by the PostgreSQL backends serving one database: the pids `pg_stat_activity` lists for
 * it, sampled every `intervalMs` while a run lasts, each counted from the run's start (or from its
 * birth, for a connection opened during the run). Shared server processes (WAL writer, checkpointer,
 * background writer) are not counted: they work for every database on the server, including other
 * people's tests. A backend that exits between two samples loses at most one interval of its CPU;
 * under load the pools keep their connections, so that is rare.
 */
export class PgBackendCpu {
  private readonly baseline = new Map<number, number>();
  private readonly last = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  private sampling: Promise<void> = Promise.resolve();

  constructor(
    private readonly admin: pg.Pool,
    private readonly database: string,
    private readonly intervalMs = 1000,
  ) {}

  async start(): Promise<void> {
    for (const pid of await this.pids()) {
      const cpu = cpuMicros(pid);
      if (cpu !== undefined) {
        this.baseline.set(pid, cpu);
        this.last.set(pid, cpu);
      }
    }
    this.timer = setInterval(() => {
      this.sampling = this.sampling.then(() => this.sample()).catch(() => {});
    }, this.intervalMs);
  }

  /** Stops sampling; returns the CPU (µs) the database's backends used since start. */
  async stop(): Promise<number> {
    clearInterval(this.timer);
    await this.sampling;
    await this.sample();
    let total = 0;
    for (const [pid, cpu] of this.last) total += cpu - (this.baseline.get(pid) ?? 0);
    return total;
  }

  private async sample(): Promise<void> {
    for (const pid of new Set([...(await this.pids()), ...this.last.keys()])) {
      const cpu = cpuMicros(pid);
      if (cpu === undefined) continue;
      // Seen for the first time: born during the run, so all of its CPU belongs to the run.
      if (!this.baseline.has(pid)) this.baseline.set(pid, 0);
      this.last.set(pid, cpu);
    }
  }

  private async pids(): Promise<number[]> {
    const { rows } = await this.admin.query<{ pid: number }>(
      'select pid from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()',
      [this.database],
    );
    return rows.map((r) => r.pid);
  }
}
