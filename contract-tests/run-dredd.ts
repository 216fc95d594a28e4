/**
 * `npm run test:dredd`: Dredd against the real server on a fresh database (the test kit's
 * startTestServer, response validation on). Seeds a partner and users, obtains OAuth tokens through
 * the real authorize -> sign-in -> consent -> token flow, hands all of it to
 * contract-tests/dredd-hooks.cjs in a JSON file, runs Dredd and exits with its code.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listOperations, loadSpec } from '../src/http/spec.js';
import { FAKE_IDS } from '../test/support/fake-ids.js';
import { startTestServer, type TestServer } from '../test/support/harness.js';
import { obtainTokens } from '../test/support/oauth.js';
import { writeDreddSpec } from './dredd-spec.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const REDIRECT_URI = 'https://partner.test/callback';
const DREDD_TIMEOUT_MS = Number(process.env.DREDD_TIMEOUT_MS ?? 300_000);
/** Session tokens are signed once, before Dredd starts: they must outlive the whole run. */
const SESSION_SECONDS = 2 * 3600;

async function main(): Promise<number> {
  const tmp = mkdtempSync(join(tmpdir(), 'tian-dredd-'));
  let t: TestServer | undefined;
  try {
    t = await startTestServer({ VALIDATE_RESPONSES: 'true', AUTH_RATE_LIMIT_PER_MINUTE: '100000' });
    const server = t;
    const baseUrl = server.url;
    console.log(
      server.dbKind === 'postgres'
        ? '[dredd] database: a fresh database on the real PostgreSQL server'
        : '[dredd] database: embedded PostgreSQL (PGlite, in memory): no PostgreSQL server reachable',
    );
    console.log(`[dredd] server: ${baseUrl} (response validation on)`);

    // --- seed
    const main = await server.partner({ name: 'Dredd Partner', redirectUris: [REDIRECT_URI] });
    const rotating = await server.partner({ name: 'Dredd Rotating Partner' });
    const session = (privyId: string) => server.privyToken(privyId, { expiresInSec: SESSION_SECONDS });
    const mkUser = async (privyId: string, points: number) => {
      const u = await server.user({ privyId, points });
      return { id: u.id, privyId, sessionToken: await session(privyId) };
    };
    const users = {
      main: await mkUser('did:privy:dreddmain', 1_000_000),
      poor: await mkUser('did:privy:dreddpoor', 5),
      ghost: { id: 0, privyId: 'did:privy:dreddghost', sessionToken: await session('did:privy:dreddghost') },
    };
    const oauthUser = { email: 'dredd-oauth@example.test', password: 'dredd-password-1' };
    await server.user({ ...oauthUser, points: 1_000_000 });

    // --- OAuth tokens through the real browser flow; the run fails when the flow does.
    const flow = (scope: string) =>
      obtainTokens(server, { client: main, redirectUri: REDIRECT_URI, user: oauthUser, scope });
    const all = 'deduct balance subscriptions';
    const oauthTokens = {
      full: await flow(all),
      balanceOnly: await flow('balance'),
      deductOnly: await flow('deduct'),
      refreshJson: await flow(all),
      refreshForm: await flow(all),
      revokeJson: await flow(all),
      revokeForm: await flow(all),
    };
    console.log('[dredd] OAuth: tokens obtained through authorize -> sign-in -> consent -> token');

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
          clientId: main.clientId,
          partnerId: main.id,
          rotatingApiKey: rotating.clientSecret,
          redirectUri: REDIRECT_URI,
          users,
          oauthTokens,
          fakeIds: FAKE_IDS,
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
    writeSummaryFile(summary, report.problems.length);
    if (report.problems.length > 0 || report.seen === 0) return 1;
    return code;
  } finally {
    await t?.stop().catch((e) => console.error('[dredd] stop:', e));
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
