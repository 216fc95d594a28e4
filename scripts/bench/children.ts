import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

/** Every child still running, so one cleanup (normal end, Ctrl-C, deadline) can stop them all. */
const live = new Set<ChildProcess>();

export type Child = {
  label: string;
  pid: number;
  process: ChildProcess;
  /** Asks the child to stop (SIGTERM), then kills it after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
};

/**
 * Starts `node --import tsx <script>` in its own process (no wrapper, so `pid` is the process
 * doing the work and /proc figures are its own). stdin stays a pipe: our own children exit when it
 * closes, i.e. when this process dies however it dies. `onLine` sees every stdout line.
 */
export function startNode(
  label: string,
  script: string,
  opts: {
    args?: string[];
    /** Node's own flags (e.g. --cpu-prof), before the script. */
    nodeArgs?: string[];
    env?: Record<string, string>;
    onLine?: (line: string) => void;
  },
): Child {
  const argv = [...(opts.nodeArgs ?? []), '--import', 'tsx', script, ...(opts.args ?? [])];
  const child = spawn(process.execPath, argv, {
    cwd: process.cwd(),
    env: { ...process.env, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`${label}: could not start ${script}`);
  live.add(child);
  child.once('exit', () => live.delete(child));
  const stdout = child.stdout;
  const stderr = child.stderr;
  if (stdout) createInterface({ input: stdout }).on('line', (line) => opts.onLine?.(line));
  if (stderr) {
    createInterface({ input: stderr }).on('line', (line) => {
      if (line.trim()) process.stderr.write(`  [${label}] ${line}\n`);
    });
  }
  return {
    label,
    pid: child.pid,
    process: child,
    stop: (graceMs = 8000) => stopChild(child, graceMs),
  };
}

/** Starts a server and resolves with its URL once it prints `pattern` (bounded by `timeoutMs`). */
export async function startServerProcess(
  label: string,
  script: string,
  env: Record<string, string>,
  pattern: RegExp,
  timeoutMs = 60_000,
  nodeArgs: string[] = [],
): Promise<Child & { url: string }> {
  let resolveUrl: (url: string) => void = () => {};
  const url = new Promise<string>((resolve) => {
    resolveUrl = resolve;
  });
  const child = startNode(label, script, {
    nodeArgs,
    env,
    onLine: (line) => {
      const m = pattern.exec(line);
      if (m?.[1]) resolveUrl(m[1]);
    },
  });
  let timer: NodeJS.Timeout | undefined;
  const failed = Promise.race([
    once(child.process, 'exit').then(([code]) => {
      throw new Error(`${label} exited (code ${code}) before it was ready`);
    }),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${label} not ready after ${timeoutMs} ms`)), timeoutMs);
    }),
  ]);
  try {
    return { ...child, url: await Promise.race([url, failed]) };
  } catch (err) {
    await child.stop(1000);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Stops every child still running (each by its own pid). */
export async function stopAll(graceMs = 5000): Promise<void> {
  await Promise.all([...live].map((c) => stopChild(c, graceMs)));
}

/** Last resort on exit: no waiting possible, so SIGKILL whatever is left. */
export function killAllNow(): void {
  for (const c of live) c.kill('SIGKILL');
}
