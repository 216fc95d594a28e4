/** What the suite counts across scenarios, for the one summary line at the end. */
export class Tally {
  /** HTTP requests the suite sent (load clients, checks, hostile inputs). */
  requests = 0;
  /** Faults injected (SIGKILLs, connection cuts, refused-connection windows, a receiver down). */
  faults = 0;
  /** Deducts answered 200 (first answers and replays of one key count once). */
  acknowledged = 0;
  /** Acknowledged deducts missing from the ledger. */
  lost = 0;
  /** Ledger rows beyond one per idempotency key, or for a key never acknowledged. */
  duplicated = 0;
  /** 5xx other than the 503s of a database outage. */
  unexpected5xx = 0;
  /** Scenario name -> what went wrong (empty: passed). */
  readonly scenarios = new Map<string, string[]>();

  line(): string {
    return `reliability: ${this.requests} requests, ${this.faults} faults injected, ${this.acknowledged} acknowledged deducts, ${this.lost} lost, ${this.duplicated} duplicated, ${this.unexpected5xx} unexpected 5xx`;
  }

  get failed(): boolean {
    return (
      this.lost > 0 ||
      this.duplicated > 0 ||
      this.unexpected5xx > 0 ||
      [...this.scenarios.values()].some((problems) => problems.length > 0)
    );
  }
}

export const tally = new Tally();

/** Progress on stderr-free stdout, one line each, before the summary line. */
export function log(message: string): void {
  console.log(`[reliability] ${message}`);
}

/** Runs one scenario: its problems are recorded (a thrown error is one), never thrown on. */
export async function scenario(name: string, run: (problems: string[]) => Promise<void>): Promise<void> {
  // RELIABILITY_ONLY=1,3: run only those scenarios (while working on one).
  const only = process.env.RELIABILITY_ONLY?.split(',').map((s) => s.trim());
  if (only && !only.includes(name.split(' ')[0] ?? '')) return;
  const problems: string[] = [];
  tally.scenarios.set(name, problems);
  const started = performance.now();
  log(`${name}: start`);
  try {
    await run(problems);
  } catch (err) {
    problems.push(`aborted: ${(err as Error).stack ?? String(err)}`);
  }
  const secs = ((performance.now() - started) / 1000).toFixed(1);
  if (problems.length === 0) log(`${name}: passed in ${secs} s`);
  else {
    log(`${name}: FAILED in ${secs} s`);
    for (const p of problems.slice(0, 20)) log(`  - ${p}`);
    if (problems.length > 20) log(`  ... and ${problems.length - 20} more`);
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true (real time: processes and the network are real). */
export async function until(
  check: () => Promise<boolean>,
  timeoutMs: number,
  everyMs = 100,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(everyMs);
  }
}
