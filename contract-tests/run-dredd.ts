/**
 * `npm run test:dredd`: Dredd against the real server on a fresh database.
 * Seeds a partner and users, signs Privy session tokens with a key pair made here, obtains OAuth
 * tokens through the real browser flow when the OAuth server exists, hands all of it to
 * contract-tests/dredd-hooks.cjs in a JSON file, runs Dredd and exits with its code.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { loadConfig } from '../src/config.js';
import { Database } from '../src/db/database.js';
import { listOperations, loadSpec } from '../src/http/spec.js';
import { createPartner } from '../src/partners/partners.js';
import { startServer } from '../src/server.js';
import { createUser } from '../src/users/users.js';
import { createTestDatabase } from '../test/support/pg.js';
import { writeDreddSpec } from './dredd-spec.js';
import { OAuthPending, oauthImplemented, obtainTokens, type TokenSet } from './oauth-flow.js';
import { pendingOperations } from './probes.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PRIVY_APP_ID = 'dredd-privy-app';
const REDIRECT_URI = 'https://partner.test/callback';
const DREDD_TIMEOUT_MS = Number(process.env.DREDD_TIMEOUT_MS ?? 300_000);

async function main(): Promise<number> {
  const tmp = mkdtempSync(join(tmpdir(), 'tian-dredd-'));
  const testDb = await createTestDatabase();
  console.log(
    testDb.kind === 'postgres'
      ? '[dredd] database: a fresh database on the real PostgreSQL server'
      : '[dredd] database: embedded PostgreSQL (PGlite, in memory): no PostgreSQL server reachable',
  );
  const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true });
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    NODE_ENV: 'test',
    PRIVY_APP_ID,
    PRIVY_VERIFICATION_KEY: await exportSPKI(publicKey),
    ...(testDb.url ? { DATABASE_URL: testDb.url } : {}),
    DATA_DIR: 'memory://',
    VALIDATE_RESPONSES: 'true',
    AUTH_RATE_LIMIT_PER_MINUTE: '100000',
  });
  const db = await Database.open({ url: config.databaseUrl, dataDir: config.dataDir });
  let running: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    running = await startServer(config, { db });
    const baseUrl = running.url;
    console.log(`[dredd] server: ${baseUrl} (response validation on)`);

    // --- seed
    const mkPartner = (name: string) =>
      db.transaction((tx) =>
        createPartner(tx, {
          name,
          redirectUris: [REDIRECT_URI],
          allowedScopes: ['deduct', 'balance', 'subscriptions'],
        }),
      );
    const main = await mkPartner('Dredd Partner');
    const rotating = await mkPartner('Dredd Rotating Partner');
    const sign = (privyId: string) =>
      new SignJWT({ sid: 'dredd-session' })
        .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
        .setIssuer('privy.io')
        .setAudience(PRIVY_APP_ID)
        .setSubject(privyId)
        .setIssuedAt()
        .setExpirationTime('2h')
        .sign(privateKey);
    const mkUser = async (privyId: string | undefined, points: number, email?: string) => {
      const u = await db.transaction((tx) =>
        createUser(tx, {
          ...(privyId ? { privyId } : {}),
          ...(email ? { email, password: 'dredd-password-1' } : {}),
          points,
        }),
      );
      return { id: u.id, privyId: privyId ?? '', sessionToken: privyId ? await sign(privyId) : '' };
    };
    const users = {
      main: await mkUser('did:privy:dreddmain', 1_000_000),
      poor: await mkUser('did:privy:dreddpoor', 5),
      probe: await mkUser('did:privy:dreddprobe', 1_000_000),
      ghost: { id: 0, privyId: 'did:privy:dreddghost', sessionToken: await sign('did:privy:dreddghost') },
    };
    const oauthUser = { email: 'dredd-oauth@example.test', password: 'dredd-password-1' };
    await mkUser(undefined, 1_000_000, oauthUser.email);

    const legacy = (u: { privyId: string; sessionToken: string }) => ({
      'x-api-key': main.clientSecret,
      'x-privy-id': u.privyId,
      'x-privy-session-token': u.sessionToken,
    });
    const pending = await pendingOperations({
      baseUrl,
      apiKey: main.clientSecret,
      clientId: main.partner.clientId,
      redirectUri: REDIRECT_URI,
      user: legacy(users.probe),
    });
    console.log(`[dredd] operations still answering 501: ${[...pending].join(', ') || 'none'}`);

    // --- OAuth tokens through the real browser flow, when the OAuth server exists
    const oauth: { available: boolean; reason: string; tokens: Record<string, TokenSet> } = {
      available: false,
      reason: '',
      tokens: {},
    };
    let oauthFailure: string | undefined;
    const probe = await oauthImplemented(baseUrl);
    if (!probe.ok) oauth.reason = probe.reason;
    else {
      try {
        const flow = (scope: string) =>
          obtainTokens({
            baseUrl,
            clientId: main.partner.clientId,
            clientSecret: main.clientSecret,
            redirectUri: REDIRECT_URI,
            ...oauthUser,
            scope,
          });
        const all = 'deduct balance subscriptions';
        oauth.tokens = {
          full: await flow(all),
          balanceOnly: await flow('balance'),
          deductOnly: await flow('deduct'),
          refreshJson: await flow(all),
          refreshForm: await flow(all),
          revokeJson: await flow(all),
          revokeForm: await flow(all),
        };
        oauth.available = true;
      } catch (err) {
        if (err instanceof OAuthPending) oauth.reason = err.message;
        else {
          // Implemented but broken: run the rest anyway, then fail the run.
          oauthFailure = `the OAuth flow failed: ${(err as Error).message.slice(0, 400)}`;
          oauth.reason = oauthFailure;
        }
      }
    }
    console.log(
      oauth.available
        ? '[dredd] OAuth: tokens obtained through authorize -> sign-in -> consent -> token'
        : `[dredd] OAuth: not available yet (${oauth.reason}); OAuth success paths are skipped`,
    );

    // --- what the hooks need
    const spec = loadSpec();
    const operations: Record<
      string,
      { operationId: string; notFound: 'user' | 'resource' | null; auth: string }
    > = {};
    for (const op of listOperations(spec)) {
      const ref: string | undefined = spec.paths[op.path][op.method].responses?.['404']?.$ref;
      const userLevel = op.security.some((r) => 'oauth2' in r || 'privySession' in r);
      const partnerLevel = !userLevel && op.security.some((r) => 'partnerApiKey' in r);
      operations[`${op.method.toUpperCase()} ${op.path}`] = {
        operationId: op.operationId,
        notFound: ref ? (ref.endsWith('/UserNotFound') ? 'user' : 'resource') : null,
        auth: userLevel ? 'user' : partnerLevel ? 'partner' : 'none',
      };
    }
    const seedFile = join(tmp, 'seed.json');
    const reportFile = join(tmp, 'hooks-report.json');
    writeFileSync(
      seedFile,
      JSON.stringify(
        {
          baseUrl,
          apiKey: main.clientSecret,
          clientId: main.partner.clientId,
          partnerId: main.partner.id,
          rotatingApiKey: rotating.clientSecret,
          redirectUri: REDIRECT_URI,
          users,
          pending: [...pending],
          oauth,
          operations,
          reportFile,
        },
        null,
        2,
      ),
      { mode: 0o600 },
    );
    const specFile = writeDreddSpec(join(tmp, 'openapi.dredd.yaml'));

    // --- Dredd
    const { code, summary } = await runDredd(specFile, baseUrl, seedFile);
    if (!existsSync(reportFile)) {
      console.error('[dredd] FAIL: the hooks did not run (contract-tests/dredd-hooks.cjs failed to load?)');
      return 1;
    }
    const report = JSON.parse(readFileSync(reportFile, 'utf8')) as {
      seen: number;
      skipped: { name: string; reason: string }[];
      problems: string[];
    };
    console.log(`\n[dredd] hooks saw ${report.seen} transactions; skipped ${report.skipped.length}:`);
    const byReason = new Map<string, string[]>();
    for (const s of report.skipped) byReason.set(s.reason, [...(byReason.get(s.reason) ?? []), s.name]);
    for (const [reason, names] of byReason) {
      console.log(`  - ${names.length} x ${reason}`);
      if (names.length <= 4) for (const n of names) console.log(`      ${n}`);
    }
    for (const p of report.problems) console.error(`[dredd] hook problem: ${p}`);
    console.log(`[dredd] ${summary ?? 'no summary line from Dredd'}`);
    writeSummaryFile(summary, report.problems.length + (oauthFailure ? 1 : 0));
    if (oauthFailure) console.error(`[dredd] FAIL: ${oauthFailure}`);
    if (report.problems.length > 0 || report.seen === 0 || oauthFailure) return 1;
    return code;
  } finally {
    await running?.close().catch((e) => console.error('[dredd] server close:', e));
    await db.close().catch(() => {});
    await testDb.drop().catch((e) => console.error('[dredd] drop database:', e));
    rmSync(tmp, { recursive: true, force: true });
  }
}

function runDredd(
  specFile: string,
  baseUrl: string,
  seedFile: string,
): Promise<{ code: number; summary?: string }> {
  return new Promise((resolve) => {
    const child = spawn(
      join(ROOT, 'node_modules/.bin/dredd'),
      [
        specFile,
        baseUrl,
        `--hookfiles=${join(ROOT, 'contract-tests/dredd-hooks.cjs')}`,
        '--language=nodejs',
        '--color=false',
      ],
      { cwd: ROOT, env: { ...process.env, TIAN_DREDD_SEED: seedFile }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let summary: string | undefined;
    let parserWarnings = 0;
    let buf = '';
    const onData = (chunk: Buffer) => {
      buf += chunk.toString();
      const lines = buf.split('\n');
      buf = lines.pop() ?? '';
      for (const line of lines) {
        if (/API description parser warning|padLevels|--trace-warnings/.test(line)) {
          parserWarnings++;
          continue;
        }
        const m = /complete: (\d+ passing.*total)/.exec(line);
        if (m) summary = `complete: ${m[1]}`;
        process.stdout.write(`${line}\n`);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => {
      console.error(`[dredd] timed out after ${DREDD_TIMEOUT_MS} ms`);
      child.kill('SIGTERM');
    }, DREDD_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (buf) process.stdout.write(`${buf}\n`);
      console.log(`[dredd] (${parserWarnings} OpenAPI 3.1 parser warnings of Dredd's 3.0 parser hidden)`);
      resolve({ code: code ?? 1, ...(summary ? { summary } : {}) });
    });
  });
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);

/** For scripts/test.sh's one closing line: Dredd's counts, plus our own hook/flow failures. */
function writeSummaryFile(summary: string | undefined, extraFailures: number): void {
  const file = process.env.DREDD_SUMMARY_FILE;
  if (!file) return;
  const count = (word: string) => Number(new RegExp(`(\\d+) ${word}`).exec(summary ?? '')?.[1] ?? 0);
  const failing = count('failing') + extraFailures + (summary ? 0 : 1);
  writeFileSync(
    file,
    JSON.stringify({
      passing: count('passing'),
      failing,
      errors: count('errors'),
      skipped: count('skipped'),
    }),
  );
}
