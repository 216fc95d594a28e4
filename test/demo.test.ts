import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumAvailable, launchChromium, signInOnPage } from './support/browser.js';
import { type MainProcess, startMain } from './support/main-process.js';
import { expectAccessible, saveScreenshot } from './support/page-checks.js';

// `npm run demo` as a newcomer runs it: `npm start` on the embedded database (a real child process
// owning a temporary DATA_DIR), the demo as a second process on the same DATA_DIR, and a real
// browser following the link it prints.

const run = chromiumAvailable();
const root = mkdtempSync(join(tmpdir(), 'tian-demo-'));
const env: NodeJS.ProcessEnv = {
  ...process.env,
  PORT: '0',
  HOST: '127.0.0.1',
  DATA_DIR: join(root, 'pglite'),
  DATABASE_URL: '',
  NODE_ENV: 'test',
};
let server: MainProcess | undefined;
let browser: Browser | undefined;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  if (!run) return;
  // A cold start (tsx compiling, PGlite opening) on a busy CI machine can take a while.
  server = await startMain(env, 150_000);
  browser = await launchChromium();
}, 180_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await browser?.close();
  if (server) {
    server.child.kill('SIGTERM');
    await server.exited;
  }
  rmSync(root, { recursive: true, force: true });
}, 60_000);

/** `npm run demo -- --server <url> ...`: its output as it comes, and its exit code. */
function startDemo(...args: string[]) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'scripts/demo.ts', '--server', server?.url ?? '', ...args],
    {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.add(child);
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
    for (const w of waiters) w();
  });
  child.stderr.on('data', (b: Buffer) => {
    err += b.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      for (const w of waiters) w();
      resolve(code);
    }),
  );
  const killer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  void exited.then(() => clearTimeout(killer));
  return {
    exited,
    output: () => out,
    errors: () => err,
    /** Resolves with the match once the output has it; rejects if the demo exits first. */
    printed: (pattern: RegExp) =>
      new Promise<RegExpExecArray>((resolve, reject) => {
        const check = () => {
          const m = pattern.exec(out);
          if (m) {
            waiters.delete(check);
            resolve(m);
          } else if (child.exitCode !== null) {
            waiters.delete(check);
            reject(new Error(`demo exited ${child.exitCode} before printing ${pattern}: ${out}${err}`));
          }
        };
        waiters.add(check);
        check();
      }),
  };
}

const execFileP = promisify(execFile);

/** Runs one of the printed curl lines exactly as printed, through a shell, as a user pasting it would. */
async function paste(output: string, after: string): Promise<unknown> {
  const block = output.slice(output.indexOf(after));
  const line = /^curl .+$/m.exec(block)?.[0];
  if (!line) throw new Error(`no curl command after "${after}" in:\n${output}`);
  const { stdout } = await execFileP('bash', ['-c', line], { timeout: 20_000 });
  return JSON.parse(stdout);
}

/** Runs the demo to its exit (one that gives up before any browser step): its exit code and stderr. */
async function demoUntilExit(args: string[], extraEnv: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', ...args], {
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (b: Buffer) => {
    err += b.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, err };
}

describe.runIf(run)('npm run demo', () => {
  it('prints an authorize URL and, once the user approves in the browser, tokens and curl commands that work', async () => {
    const demo = startDemo('--timeout-seconds', '60');
    const [, password] = await demo.printed(/password: +(\S+)/);
    const [, url] = await demo.printed(/^ +(http:\/\/\S+\/api\/oauth2\/authorize\?\S+)$/m);
    expect(url).toContain('code_challenge_method=S256');
    expect(url).toMatch(/[?&]state=[\w-]{16,}/);

    const page = await (browser as Browser).newPage();
    await page.goto(url ?? '');
    await signInOnPage(page, { email: 'demo@example.com', password: password ?? '' });
    await saveScreenshot(page, 'demo-consent');
    await page.getByRole('button', { name: 'Allow', exact: true }).click();
    await page.getByText('The tokens are in your terminal').waitFor();
    await saveScreenshot(page, 'demo-callback');
    await expectAccessible(page);
    await page.close();

    expect(await demo.exited, demo.errors()).toBe(0);
    const output = demo.output();
    expect(output).toMatch(/"access_token": "tcat_/);
    expect(output).toMatch(/"refresh_token": "tcrt_/);

    const deducted = (await paste(output, 'Deduct 10 points')) as { success: boolean; newBalance: number };
    expect(deducted).toMatchObject({ success: true, newBalance: 990 });
    // Pasted twice: the Idempotency-Key replays the first answer; nothing is deducted twice.
    expect(await paste(output, 'Deduct 10 points')).toEqual(deducted);
    expect(await paste(output, 'Token info')).toMatchObject({ active: true, scope: 'balance deduct' });
    expect(await paste(output, 'Balance:')).toMatchObject({ balance: 990 });
  }, 120_000);

  it('reuses the demo partner and user on the next run, with a fresh secret and password, topped up', async () => {
    const demo = startDemo('--timeout-seconds', '1');
    const [, balance] = await demo.printed(/balance: +(\d+) points/);
    expect(balance).toBe('1000');
    expect(await demo.exited).toBe(1);
    expect(demo.errors()).toContain('No browser came back');
  }, 60_000);

  it('says how to start the server when none answers at --server', async () => {
    const { code, err } = await demoUntilExit(['--server', 'http://127.0.0.1:9']);
    expect(code).toBe(1);
    expect(err).toContain('npm start');
  }, 60_000);

  it('refuses to write demo accounts to a database that is not on this machine', async () => {
    const { code, err } = await demoUntilExit([], {
      DATABASE_URL: 'postgres://app@db.example.com:5432/wallet',
    });
    expect(code).toBe(1);
    expect(err).toContain('--allow-remote-database');
  }, 60_000);
});
