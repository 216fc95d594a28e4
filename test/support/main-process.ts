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
 * `entry` runs another server the same way (e.g. the example partner app), which must also print
 * `listening on <url>`.
 */
export function startMain(
  env: NodeJS.ProcessEnv,
  startTimeoutMs = 80_000,
  entry = 'src/main.ts',
): Promise<MainProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
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
  return new Promise<MainProcess>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no start within ${startTimeoutMs / 1000} s: ${out}`)),
      startTimeoutMs,
    );
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`exited ${code}: ${out}`));
    });
    void printed(/listening on (http:\/\/\S+)/).then(() => {
      clearTimeout(timer);
      const url = /listening on (http:\/\/\S+)/.exec(out)?.[1] ?? '';
      resolve({ child, pid: child.pid ?? 0, url, exited, output: () => out, printed });
    });
  });
}
