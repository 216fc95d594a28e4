import { type ChildProcess, spawn } from 'node:child_process';

/** `npm start` (src/main.ts) as a real child process, once it has printed the URL it listens on. */
export type MainProcess = {
  child: ChildProcess;
  pid: number;
  url: string;
  exited: Promise<number | null>;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves when its output matches `pattern` (an event, not a fixed wait). */
  printed(pattern: RegExp): Promise<void>;
};

/**
 * Starts `node --import tsx src/main.ts` with `env` (no npx wrapper, so signals reach the server
 * itself). A cold start compiles with tsx and opens the database: `startTimeoutMs` is generous.
 */
export async function startMain(env: NodeJS.ProcessEnv, startTimeoutMs = 80_000): Promise<MainProcess> {
  const started = await startChild('src/main.ts', env, /listening on (http:\/\/\S+)/, startTimeoutMs);
  const url = /listening on (http:\/\/\S+)/.exec(started.output())?.[1] ?? '';
  return { ...started, url };
}

/** Another server run the same way (e.g. the example partner app), once it prints `listening on <url>`. */
export async function startListening(
  script: string,
  env: NodeJS.ProcessEnv,
  startTimeoutMs = 80_000,
): Promise<MainProcess> {
  const started = await startChild(script, env, /listening on (http:\/\/\S+)/, startTimeoutMs);
  const url = /listening on (http:\/\/\S+)/.exec(started.output())?.[1] ?? '';
  return { ...started, url };
}

/** `npm run worker` (src/worker.ts, the job runner alone) as a child, once it says it runs. */
export function startWorker(
  env: NodeJS.ProcessEnv,
  startTimeoutMs = 80_000,
): Promise<Omit<MainProcess, 'url'>> {
  return startChild('src/worker.ts', env, /worker running/i, startTimeoutMs);
}

function startChild(
  script: string,
  env: NodeJS.ProcessEnv,
  ready: RegExp,
  startTimeoutMs: number,
): Promise<Omit<MainProcess, 'url'>> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  let out = '';
  const waiters = new Set<() => void>();
  const onData = (b: Buffer) => {
    out += b.toString();
    for (const w of waiters) w();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const printed = (pattern: RegExp) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (!pattern.test(out)) return;
        waiters.delete(check);
        resolve();
      };
      waiters.add(check);
      check();
    });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${script}: no start within ${startTimeoutMs / 1000} s: ${out}`)),
      startTimeoutMs,
    );
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited ${code}: ${out}`));
    });
    void printed(ready).then(() => {
      clearTimeout(timer);
      resolve({ child, pid: child.pid ?? 0, exited, output: () => out, printed });
    });
  });
}
