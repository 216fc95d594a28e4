import { createHash, createPublicKey } from 'node:crypto';
import { z } from 'zod';

/** Every setting the server reads, with its default. Env vars only; nothing else is read. */
const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default('127.0.0.1'),
  /** Unset: an embedded PostgreSQL (PGlite) in DATA_DIR. */
  DATABASE_URL: z.preprocess((v) => (v === '' ? undefined : v), z.string().url().optional()),
  DATA_DIR: z.string().default('.data/pglite'),
  /** Connections this process keeps to DATABASE_URL for requests (the job runner has its own). */
  DATABASE_POOL_MAX: z.coerce.number().int().min(1).max(500).default(20),
  /** Public base URL; the OAuth issuer and the base of every absolute URL we print. */
  PUBLIC_URL: z.string().url().optional(),
  /** The Privy app id (the audience of its session tokens). Required in production. */
  PRIVY_APP_ID: z.string().min(1).optional(),
  /**
   * The Privy app's ES256 verification key (SPKI PEM, `\n` escapes allowed); legacy-flow calls fail
   * with 401 without it. Required in production.
   */
  PRIVY_VERIFICATION_KEY: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z
      .string()
      .refine(isEcPublicKey, 'must be an EC public key in SPKI PEM form (-----BEGIN PUBLIC KEY-----)')
      .optional(),
  ),
  PRIVY_ISSUER: z.string().default('privy.io'),
  /** Response validation against openapi.yaml: on by default, off in production for speed. */
  VALIDATE_RESPONSES: z.enum(['true', 'false']).optional(),
  /** The hot operations' direct routes (src/http/direct-routes.ts); false: every request through express. */
  DIRECT_ROUTES: z.enum(['true', 'false']).default('true'),
  NODE_ENV: z.string().default('development'),
  /** express 'trust proxy': false, a hop count, or a list of proxy addresses (RFC 9700 §4.13). */
  TRUST_PROXY: z.string().default('false'),
  /** Requests per minute per API key / token / address on the API; credential endpoints have their own. */
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(6000),
  AUTH_RATE_LIMIT_PER_MINUTE: z.coerce.number().int().min(1).default(30),
  /** How often each instance adds its request counts to the shared rate-limit table (ms). */
  RATE_LIMIT_SYNC_MS: z.coerce.number().int().min(50).max(60_000).default(1000),
  /**
   * Origins whose web pages may call the browser-facing API (CORS), comma-separated exact origins
   * (https://app.example.com). Unset: none (no Access-Control-Allow-Origin on any response).
   */
  CORS_ORIGINS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((o) => o.trim())
        .filter((o) => o !== ''),
    )
    .refine(
      (list) => list.every(isOrigin),
      'must be exact origins (https://app.example.com), comma-separated; never *',
    ),
  /** pino level of the JSON logs on stdout. */
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * One log line per request (request id, operationId, partner id, status, latency) at info. On by
   * default: it costs ~5 µs of CPU per request against ~1,300 µs for the cheapest API call.
   */
  LOG_REQUESTS: z.enum(['true', 'false']).default('true'),
  /**
   * Bearer token that `GET /metrics` (Prometheus) requires. Unset: /metrics is open outside production
   * and not served at all in production.
   */
  METRICS_TOKEN: z.preprocess((v) => (v === '' ? undefined : v), z.string().min(16).optional()),
  /** `npm run worker` only (it has no HTTP API): serve /metrics on this port, on HOST. Unset: none. */
  METRICS_PORT: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z.coerce.number().int().min(0).max(65535).optional(),
  ),
  /**
   * `npm start` runs the job runner in the same process (true); false serves HTTP only, for API
   * replicas next to `npm run worker` processes on one PostgreSQL server.
   */
  RUN_JOBS: z.enum(['true', 'false']).default('true'),
  /** Background jobs run at once per process (webhook deliveries, renewals, notices). */
  JOB_CONCURRENCY: z.coerce.number().int().min(1).max(100).default(5),
  /** How often an idle worker looks for due jobs (ms); notifications wake it sooner. */
  JOB_POLL_INTERVAL_MS: z.coerce.number().int().min(50).default(1000),
  /** On SIGTERM: how long in-flight requests and running jobs may take before the process exits anyway. */
  SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
  /**
   * When a subscription renewal the user could not pay is tried again: days after the failed due
   * date, comma-separated and increasing. After the last one fails the subscription is canceled.
   */
  SUBSCRIPTION_RETRY_DAYS: z
    .string()
    .default('1,3,7')
    .transform((v) => v.split(',').map((d) => Number(d.trim())))
    .refine(
      (days) => days.every((d, i) => Number.isInteger(d) && d >= 1 && d <= 60 && d > (days[i - 1] ?? 0)),
      'must be increasing whole days from 1 to 60, comma-separated (e.g. 1,3,7)',
    ),
  /**
   * Signs the wallet's anonymous CSRF cookies; set the same value (32+ characters) on every instance
   * behind one address. Unset: a random key per process, so a restart expires open sign-in forms.
   */
  SESSION_SECRET: z.preprocess((v) => (v === '' ? undefined : v), z.string().min(32).optional()),
  /**
   * Where the wallet's emails (token-expiry notices) go out, e.g. smtp://user:pass@127.0.0.1:2525
   * (smtps:// for implicit TLS). Unset: no email is sent; notices still appear in the wallet.
   */
  SMTP_URL: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z
      .string()
      .url()
      .refine((u) => /^smtps?:\/\//.test(u), 'must be an smtp:// or smtps:// URL')
      .optional(),
  ),
  /** The From address of the wallet's emails. */
  MAIL_FROM: z.string().default('askTIAN Wallet <wallet@localhost>'),
  /**
   * 32 bytes, base64: encrypts webhook signing secrets at rest (AES-256-GCM). Required in production;
   * elsewhere a fixed development key is used when unset. Changing it makes existing secrets unreadable.
   */
  WEBHOOK_SECRET_KEY: z.preprocess((v) => (v === '' ? undefined : v), z.string().optional()),
  /** How long one webhook attempt may take (connect, headers and body) before it counts as failed. */
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(15_000),
  /** How long a deduct or refund response waits for its webhook's first attempt (`webhookDelivered`). */
  WEBHOOK_DELIVERED_WAIT_MS: z.coerce.number().int().min(0).max(30_000).default(2_000),
  /** Development: webhook URLs may be plain http and reach loopback. Default on, except in production. */
  WEBHOOK_ALLOW_HTTP_LOCALHOST: z.enum(['true', 'false']).optional(),
  /**
   * Milliseconds between a failed webhook attempt and the next, comma-separated (one attempt more
   * than delays). Unset: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. Tests shorten it.
   */
  WEBHOOK_RETRY_DELAYS_MS: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z
      .string()
      .transform((v) => v.split(',').map((d) => Number(d.trim())))
      .refine(
        (ms) => ms.length >= 1 && ms.every((d) => Number.isInteger(d) && d >= 100 && d <= 86_400_000),
        'must be whole milliseconds from 100 to 86400000, comma-separated (e.g. 1000,5000,30000)',
      )
      .optional(),
  ),
});

export type Config = {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  dataDir: string;
  /** DATABASE_POOL_MAX: the request pool's size on a PostgreSQL server. */
  databasePoolMax: number;
  publicUrl: string | undefined;
  privy: { appId: string; issuer: string; verificationKey: string | undefined };
  validateResponses: boolean;
  directRoutes: boolean;
  trustProxy: boolean | number | string;
  rateLimitPerMinute: number;
  authRateLimitPerMinute: number;
  rateLimitSyncMs: number;
  /** Origins allowed to call the browser-facing API (CORS); empty: none. */
  corsOrigins: string[];
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  logRequests: boolean;
  /** undefined: /metrics needs no token (outside production) or is not served (production). */
  metricsToken: string | undefined;
  /** The worker's /metrics port (METRICS_PORT); undefined: the worker serves no metrics. */
  metricsPort: number | undefined;
  production: boolean;
  sessionSecret: string | undefined;
  /** undefined: email is off. */
  smtpUrl: string | undefined;
  mailFrom: string;
  webhooks: {
    /** The AES-256-GCM key for signing secrets at rest. */
    secretKey: Buffer;
    timeoutMs: number;
    deliveredWaitMs: number;
    allowHttpLocalhost: boolean;
    /** undefined: the default schedule (src/webhooks/schedule.ts RETRY_DELAYS_MS). */
    retryDelaysMs: number[] | undefined;
  };
  /** Whether `npm start` runs the job runner in its process (RUN_JOBS). */
  runJobs: boolean;
  jobConcurrency: number;
  jobPollIntervalMs: number;
  shutdownTimeoutMs: number;
  /** Days after a failed renewal's due date on which it is retried (SUBSCRIPTION_RETRY_DAYS). */
  subscriptionRetryDays: number[];
};

/** A setting is missing or invalid; the message names it (one line per problem). */
export class ConfigError extends Error {}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${lines.map((l) => l.trim()).join('; ')}`);
  }
  const e = parsed.data;
  const production = e.NODE_ENV === 'production';
  const unsafe = production ? unsafeInProduction(e) : [];
  if (unsafe.length > 0) throw new ConfigError(`invalid configuration: ${unsafe.join('; ')}`);
  // The embedded database has one owner process: nobody else could run its jobs.
  if (e.RUN_JOBS === 'false' && !e.DATABASE_URL) {
    throw new ConfigError(
      'invalid configuration: RUN_JOBS: false needs DATABASE_URL (on the embedded database `npm start` runs the jobs itself)',
    );
  }
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    dataDir: e.DATA_DIR,
    databasePoolMax: e.DATABASE_POOL_MAX,
    publicUrl: e.PUBLIC_URL,
    privy: {
      appId: e.PRIVY_APP_ID ?? DEVELOPMENT_PRIVY_APP_ID,
      issuer: e.PRIVY_ISSUER,
      verificationKey: e.PRIVY_VERIFICATION_KEY,
    },
    validateResponses: e.VALIDATE_RESPONSES ? e.VALIDATE_RESPONSES === 'true' : !production,
    directRoutes: e.DIRECT_ROUTES === 'true',
    trustProxy: parseTrustProxy(e.TRUST_PROXY),
    rateLimitPerMinute: e.RATE_LIMIT_PER_MINUTE,
    authRateLimitPerMinute: e.AUTH_RATE_LIMIT_PER_MINUTE,
    rateLimitSyncMs: e.RATE_LIMIT_SYNC_MS,
    corsOrigins: e.CORS_ORIGINS,
    logLevel: e.LOG_LEVEL,
    logRequests: e.LOG_REQUESTS === 'true',
    metricsToken: e.METRICS_TOKEN,
    metricsPort: e.METRICS_PORT,
    production,
    sessionSecret: e.SESSION_SECRET,
    smtpUrl: e.SMTP_URL,
    mailFrom: e.MAIL_FROM,
    webhooks: {
      secretKey: webhookSecretKey(e.WEBHOOK_SECRET_KEY),
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      deliveredWaitMs: e.WEBHOOK_DELIVERED_WAIT_MS,
      allowHttpLocalhost: allowHttpLocalhost(e.WEBHOOK_ALLOW_HTTP_LOCALHOST, production),
      retryDelaysMs: e.WEBHOOK_RETRY_DELAYS_MS,
    },
    runJobs: e.RUN_JOBS === 'true',
    jobConcurrency: e.JOB_CONCURRENCY,
    jobPollIntervalMs: e.JOB_POLL_INTERVAL_MS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    subscriptionRetryDays: e.SUBSCRIPTION_RETRY_DAYS,
  };
}

const PRODUCTION = 'production (NODE_ENV=production)';
const DEVELOPMENT_PRIVY_APP_ID = 'tian-dev-app';

/**
 * What production refuses (issue 12): a development default standing in for a real setting. Each
 * problem names its variable; all of them are reported at once, on one line.
 */
function unsafeInProduction(e: z.infer<typeof schema>): string[] {
  const problems: string[] = [];
  // The issuer and every `iss` derive from PUBLIC_URL; an http issuer in production would send
  // partners' tokens and codes in the clear (RFC 9700 §2.6, RFC 8414 §2).
  if (!e.PUBLIC_URL?.startsWith('https://'))
    problems.push(`PUBLIC_URL: ${PRODUCTION} needs the https URL partners reach this server at`);
  // The embedded database is one process's, on one disk: no replicas, no worker processes, no backups.
  if (!e.DATABASE_URL)
    problems.push(
      `DATABASE_URL: ${PRODUCTION} needs a PostgreSQL server (the embedded database is for development)`,
    );
  if (!e.WEBHOOK_SECRET_KEY)
    problems.push(
      `WEBHOOK_SECRET_KEY: ${PRODUCTION} needs a 32-byte base64 key (e.g. \`openssl rand -base64 32\`) to encrypt webhook signing secrets`,
    );
  // A random key per process would expire open sign-in forms on every restart and on every other instance.
  if (!e.SESSION_SECRET)
    problems.push(
      `SESSION_SECRET: ${PRODUCTION} needs a secret of 32+ characters, the same on every instance`,
    );
  if (!e.PRIVY_APP_ID)
    problems.push(`PRIVY_APP_ID: ${PRODUCTION} needs your Privy app id (not the development default)`);
  if (!e.PRIVY_VERIFICATION_KEY)
    problems.push(
      `PRIVY_VERIFICATION_KEY: ${PRODUCTION} needs the Privy app's ES256 verification key (SPKI PEM)`,
    );
  if (e.WEBHOOK_ALLOW_HTTP_LOCALHOST === 'true')
    problems.push(
      'WEBHOOK_ALLOW_HTTP_LOCALHOST: cannot be true in production (webhooks go to https public addresses only)',
    );
  // `true` believes any X-Forwarded-For: every per-address rate limit could be dodged by forging it.
  if (e.TRUST_PROXY === 'true')
    problems.push(
      'TRUST_PROXY: cannot be true in production (any client could forge its address); give the hop count or the proxy addresses',
    );
  return problems;
}

/** A PEM the Privy verifier can import (checked here, so a bad key stops start-up instead of a later request). */
function isEcPublicKey(pem: string): boolean {
  try {
    return createPublicKey(pem.replace(/\\n/g, '\n')).asymmetricKeyType === 'ec';
  } catch {
    return false;
  }
}

/** Outside production, when WEBHOOK_SECRET_KEY is unset: fixed, so a restart can still read secrets. */
const DEVELOPMENT_WEBHOOK_KEY = createHash('sha256')
  .update('tian-points development webhook secret key; never used in production')
  .digest();

/** The webhook secret key: required in production (unsafeInProduction), a fixed development key elsewhere. */
function webhookSecretKey(value: string | undefined): Buffer {
  if (value === undefined) return DEVELOPMENT_WEBHOOK_KEY;
  const key = Buffer.from(value, 'base64');
  if (!/^[A-Za-z0-9+/]{43}=?$/.test(value) || key.length !== 32) {
    throw new ConfigError(
      'invalid configuration: WEBHOOK_SECRET_KEY: must be exactly 32 bytes, base64-encoded',
    );
  }
  return key;
}

/** Plain http to loopback is a development convenience; production refuses it (unsafeInProduction). */
function allowHttpLocalhost(value: 'true' | 'false' | undefined, production: boolean): boolean {
  return value === undefined ? !production : value === 'true';
}

/** scheme://host[:port] exactly as a browser sends it in Origin (no path, no trailing slash, no '*'). */
function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return /^https?:$/.test(url.protocol) && url.origin === value;
  } catch {
    return false;
  }
}

function parseTrustProxy(v: string): boolean | number | string {
  if (v === 'false') return false;
  if (v === 'true') return true;
  if (/^\d+$/.test(v)) return Number(v);
  return v;
}
