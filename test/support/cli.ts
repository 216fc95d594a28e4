import { type ChildProcess, spawn } from 'node:child_process';

export type CliResult = { code: number | null; out: Record<string, unknown>; err: string };

/**
 * `npm run cli -- ...args` as a child process with `env`: its exit code, its JSON stdout parsed, and
 * its stderr. Killed after `timeoutMs`; while it runs it is in `track` (for a suite's afterAll).
 */
export function runCli(
  env: NodeJS.ProcessEnv,
  args: string[],
  opts: { timeoutMs?: number; track?: Set<ChildProcess> } = {},
): Promise<CliResult> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  opts.track?.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => {
    stdout += b.toString();
  });
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 45_000);
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      clearTimeout(timer);
      opts.track?.delete(child);
      let out: Record<string, unknown>;
      try {
        out = JSON.parse(stdout) as Record<string, unknown>;
      } catch {
        out = { unparsed: stdout };
      }
      resolve({ code, out, err: stderr });
    }),
  );
}
