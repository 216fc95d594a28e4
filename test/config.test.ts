import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { startTestServer } from './support/harness.js';
import { startMain } from './support/main-process.js';

/** A valid WEBHOOK_SECRET_KEY (32 bytes, base64), which production requires. */
const WEBHOOK_KEY = Buffer.alloc(32, 7).toString('base64');
const PRIVY_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  .publicKey.export({ type: 'spki', format: 'pem' })
  .toString();

/** Everything production asks for; each test takes one thing away. */
const PROD = {
  NODE_ENV: 'production',
  PUBLIC_URL: 'https://wallet.example',
  DATABASE_URL: 'postgresql://tian@db.internal:5432/tian',
  WEBHOOK_SECRET_KEY: WEBHOOK_KEY,
  SESSION_SECRET: 's'.repeat(40),
  PRIVY_APP_ID: 'privy-app-123',
  PRIVY_VERIFICATION_KEY: PRIVY_KEY,
};

const without = (name: keyof typeof PROD) => {
  const { [name]: _, ...rest } = PROD;
  return rest;
};

/** The one line loadConfig refuses with. */
const refusal = (env: NodeJS.ProcessEnv): string => {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).not.toContain('\n');
    return message;
  }
  throw new Error('loadConfig accepted it');
};

describe('configuration', () => {
  it('accepts a complete production configuration, with secure defaults', () => {
    const ok = loadConfig(PROD);
    expect(ok).toMatchObject({
      production: true,
      publicUrl: 'https://wallet.example',
      validateResponses: false,
      logLevel: 'info',
      metricsToken: undefined,
    });
    expect(ok.webhooks.allowHttpLocalhost).toBe(false);
    expect(ok.webhooks.secretKey).toEqual(Buffer.alloc(32, 7));
  });

  it('refuses production without an https PUBLIC_URL, naming the setting', () => {
    expect(refusal(without('PUBLIC_URL'))).toMatch(/^invalid configuration: PUBLIC_URL: production .*https/);
    expect(refusal({ ...PROD, PUBLIC_URL: 'http://wallet.example' })).toMatch(/PUBLIC_URL.*https/);
  });

  it('refuses production on the embedded database (no DATABASE_URL)', () => {
    expect(refusal(without('DATABASE_URL'))).toMatch(/DATABASE_URL: production .* PostgreSQL server/);
  });

  it('refuses production without a WEBHOOK_SECRET_KEY, and any key that is not 32 bytes', () => {
    expect(refusal(without('WEBHOOK_SECRET_KEY'))).toMatch(
      /WEBHOOK_SECRET_KEY: production .* 32-byte base64 key/,
    );
    expect(refusal({ ...PROD, WEBHOOK_SECRET_KEY: 'c2hvcnQ=' })).toMatch(/WEBHOOK_SECRET_KEY: must be/);
  });

  it('refuses production without a SESSION_SECRET (a random key per process is a development default)', () => {
    expect(refusal(without('SESSION_SECRET'))).toMatch(/SESSION_SECRET: production .*same on every instance/);
  });

  it("refuses production with the development Privy app or without the app's verification key", () => {
    expect(refusal(without('PRIVY_APP_ID'))).toMatch(/PRIVY_APP_ID: production/);
    expect(refusal(without('PRIVY_VERIFICATION_KEY'))).toMatch(/PRIVY_VERIFICATION_KEY: production/);
  });

  it('refuses a Privy verification key that is not an EC public key, in any mode', () => {
    expect(refusal({ PRIVY_VERIFICATION_KEY: 'not a key' })).toMatch(/PRIVY_VERIFICATION_KEY: must be an EC/);
  });

  it('production never lets webhooks go to loopback over http', () => {
    expect(refusal({ ...PROD, WEBHOOK_ALLOW_HTTP_LOCALHOST: 'true' })).toMatch(
      /WEBHOOK_ALLOW_HTTP_LOCALHOST: cannot be true in production/,
    );
  });

  it('production does not believe every X-Forwarded-For (TRUST_PROXY=true), but a hop count is fine', () => {
    expect(refusal({ ...PROD, TRUST_PROXY: 'true' })).toMatch(/TRUST_PROXY: cannot be true in production/);
    expect(loadConfig({ ...PROD, TRUST_PROXY: '1' }).trustProxy).toBe(1);
  });

  it('names every unsafe production setting at once, on one line', () => {
    const line = refusal({ NODE_ENV: 'production' });
    for (const name of ['PUBLIC_URL', 'DATABASE_URL', 'WEBHOOK_SECRET_KEY', 'SESSION_SECRET', 'PRIVY_APP_ID'])
      expect(line).toContain(`${name}: `);
  });

  it('a malformed value is one line naming the variable', () => {
    expect(refusal({ PORT: 'eighty' })).toMatch(/^invalid configuration: PORT: /);
    expect(refusal({ LOG_LEVEL: 'loud' })).toMatch(/^invalid configuration: LOG_LEVEL: /);
    expect(refusal({ METRICS_TOKEN: 'short' })).toMatch(/^invalid configuration: METRICS_TOKEN: /);
  });

  it('the webhook retry schedule, API-only processes and the pool size are settings with safe defaults', () => {
    const dev = loadConfig({ NODE_ENV: 'development' });
    expect(dev.webhooks.retryDelaysMs).toBeUndefined(); // the built-in 5 s ... 10 h schedule
    expect(dev.runJobs).toBe(true);
    expect(dev.databasePoolMax).toBe(20);
    const db = 'postgresql://tian@127.0.0.1:5432/tian';
    expect(
      loadConfig({
        WEBHOOK_RETRY_DELAYS_MS: '1000, 2000,60000',
        RUN_JOBS: 'false',
        DATABASE_URL: db,
        DATABASE_POOL_MAX: '8',
      }),
    ).toMatchObject({
      webhooks: { retryDelaysMs: [1000, 2000, 60_000] },
      runJobs: false,
      databasePoolMax: 8,
    });
    expect(refusal({ WEBHOOK_RETRY_DELAYS_MS: '1000,soon' })).toMatch(
      /^invalid configuration: WEBHOOK_RETRY_DELAYS_MS: /,
    );
    expect(refusal({ WEBHOOK_RETRY_DELAYS_MS: '10' })).toMatch(
      /^invalid configuration: WEBHOOK_RETRY_DELAYS_MS: /,
    );
    expect(refusal({ DATABASE_POOL_MAX: '0' })).toMatch(/^invalid configuration: DATABASE_POOL_MAX: /);
    // Nobody else could run the embedded database's jobs.
    expect(refusal({ RUN_JOBS: 'false' })).toMatch(
      /^invalid configuration: RUN_JOBS: false needs DATABASE_URL/,
    );
  });

  it('outside production an unset PUBLIC_URL falls back to the listening address', () => {
    expect(loadConfig({ NODE_ENV: 'development' }).publicUrl).toBeUndefined();
  });

  it('outside production webhooks use a fixed development key and may go to loopback over http', () => {
    const dev = loadConfig({ NODE_ENV: 'development' });
    expect(dev.webhooks.secretKey).toHaveLength(32);
    expect(loadConfig({ NODE_ENV: 'test' }).webhooks.secretKey).toEqual(dev.webhooks.secretKey);
    expect(dev.webhooks).toMatchObject({
      allowHttpLocalhost: true,
      timeoutMs: 15_000,
      deliveredWaitMs: 2_000,
    });
  });

  it('npm start in production with a development default exits 1 with one line naming the setting', async () => {
    const env = { PATH: process.env.PATH, ...without('SESSION_SECRET'), PORT: '0', HOST: '127.0.0.1' };
    const failure = await startMain(env, 60_000).then(
      () => undefined,
      (err: Error) => err.message,
    );
    // startMain rejects with "... exited <code>: <everything it printed>".
    const [, code, output] = /exited (\d+): ([\s\S]*)$/.exec(failure ?? '') ?? [];
    expect(code).toBe('1');
    expect(output?.trim().split('\n')).toEqual([
      expect.stringMatching(/^TIAN Points cannot start: invalid configuration: SESSION_SECRET: production/),
    ]);
  }, 70_000);

  it('npm run worker and the admin CLI refuse a bad setting the same way: one line naming it, exit 1', () => {
    const run = (script: string, ...args: string[]) =>
      spawnSync(process.execPath, ['--import', 'tsx', script, ...args], {
        env: { PATH: process.env.PATH, LOG_LEVEL: 'loud' },
        encoding: 'utf8',
        timeout: 60_000,
      });
    const worker = run('src/worker.ts');
    expect(worker.status).toBe(1);
    expect(worker.stdout).toBe('');
    expect(worker.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^TIAN Points worker cannot start: invalid configuration: LOG_LEVEL: /),
    ]);
    const cli = run('src/cli.ts', 'migrate');
    expect(cli.status).toBe(1);
    expect(cli.stderr).toBe('');
    expect(JSON.parse(cli.stdout)).toEqual({
      error: expect.stringMatching(/^invalid configuration: LOG_LEVEL: /),
    });
  }, 130_000);
});

describe('production mode, what needs no setting', () => {
  it('wallet cookies are Secure, HttpOnly, SameSite=Lax and __Host- prefixed', async (ctx) => {
    const t = await startTestServer({
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://wallet.example',
      WEBHOOK_SECRET_KEY: WEBHOOK_KEY,
      SESSION_SECRET: 's'.repeat(40),
    }).catch((err: Error) => err);
    if (t instanceof Error) {
      // Production refuses the embedded database: this check needs the real PostgreSQL.
      if (/DATABASE_URL/.test(t.message)) {
        console.warn(
          '[tests] production cookie flags SKIPPED: production mode refuses the embedded database (no PostgreSQL server here).',
        );
        return ctx.skip();
      }
      throw t;
    }
    try {
      const res = await fetch(new URL('/wallet/login', t.url));
      expect(res.status).toBe(200);
      const cookies = res.headers.getSetCookie();
      expect(cookies.length).toBeGreaterThan(0);
      for (const c of cookies) {
        expect(c).toMatch(/^__Host-/);
        expect(c).toMatch(/; Secure/i);
        expect(c).toMatch(/; HttpOnly/i);
        expect(c).toMatch(/; SameSite=Lax/i);
        expect(c).toMatch(/; Path=\//i);
        expect(c).not.toMatch(/; Domain=/i);
      }
    } finally {
      await t.stop();
    }
  }, 60_000);
});
