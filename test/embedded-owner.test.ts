import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EmbeddedPostgres, startEmbeddedPostgres } from '../src/db/embedded.js';
import { runCli } from './support/cli.js';
import { type MainProcess, startMain } from './support/main-process.js';
import { legacyHeaders, privyApp } from './support/privy.js';

// One owner per embedded data directory (DESIGN.md "Embedded database rules"), with real processes:
// `src/main.ts` as `npm start` runs it and `src/cli.ts` as `npm run cli` does, on one DATA_DIR.

const root = mkdtempSync(join(tmpdir(), 'tian-owner-'));
const dataDir = join(root, 'pglite');
const PRIVY_ID = 'did:privy:owner-test';
const children = new Set<ChildProcess>();
let env: NodeJS.ProcessEnv;
let sessionToken: string;

beforeAll(async () => {
  const privy = await privyApp('owner-test');
  env = {
    ...process.env,
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    DATABASE_URL: '',
    NODE_ENV: 'test',
    ...privy.env,
  };
  sessionToken = await privy.sign(PRIVY_ID);
});

afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

type Server = MainProcess;

/** `npm start`: resolves once it prints its URL; killed in afterAll if still running. */
async function startServer(): Promise<Server> {
  const server = await startMain(env, 45_000);
  children.add(server.child);
  void server.exited.then(() => children.delete(server.child));
  return server;
}

/** `npm run cli -- ...` on this suite's DATA_DIR; killed in afterAll if still running. */
const cli = (...args: string[]) => runCli(env, args, { track: children });

async function stop(s: Server): Promise<void> {
  s.child.kill('SIGTERM');
  expect(await s.exited).toBe(0);
}

let apiKey = '';
const api = (s: Server, path: string, init: RequestInit = {}) =>
  fetch(`${s.url}${path}`, {
    ...init,
    headers: { 'Content-Type': 'application/json', ...legacyHeaders(apiKey, PRIVY_ID, sessionToken) },
    signal: AbortSignal.timeout(10_000),
  });
const balanceOf = async (s: Server) => {
  const res = await api(s, '/api/v1/points/balance');
  expect(res.status).toBe(200);
  return ((await res.json()) as { balance: number }).balance;
};
const deduct = (s: Server, amount: number, idempotencyKey: string) =>
  api(s, '/api/v1/points/deduct', { method: 'POST', body: JSON.stringify({ amount, idempotencyKey }) });

type Tx = { transactionId: string; type: string; amount: number; balanceAfter: number };
async function ledger(s: Server): Promise<Tx[]> {
  const all: Tx[] = [];
  let cursor: string | null = null;
  do {
    const res = await api(s, `/api/v1/points/transactions?limit=100${cursor ? `&cursor=${cursor}` : ''}`);
    expect(res.status).toBe(200);
    const page = (await res.json()) as { data: Tx[]; nextCursor: string | null };
    all.push(...page.data);
    cursor = page.nextCursor;
  } while (cursor);
  return all;
}

/** The TCP ports process `pid` listens on (Linux /proc; undefined elsewhere). */
function tcpListenPorts(pid: number): number[] | undefined {
  if (!existsSync(`/proc/${pid}/fd`)) return undefined;
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m?.[1]) inodes.add(m[1]);
    } catch {}
  }
  const ports: number[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(table)) continue;
    for (const line of readFileSync(table, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is f[1] (hex ip:port), st is f[3] (0A = LISTEN), inode is f[9]
      if (f[3] === '0A' && f[9] && inodes.has(f[9]))
        ports.push(Number.parseInt(f[1]?.split(':')[1] ?? '', 16));
    }
  }
  return ports;
}

// Real processes: every server start is a few seconds (PGlite boots in WASM), the first one longer.
describe('the embedded database has exactly one owner', { timeout: 90_000 }, () => {
  let server: Server;
  let userId = 0;
  let firstDeductId = '';

  it('admin commands go through the running server: the API sees them at once, and they survive a restart', async () => {
    server = await startServer();

    const partner = await cli('partner:create', '--name', 'Owner Test', '--scopes', 'deduct balance');
    expect(partner.code, partner.err).toBe(0);
    apiKey = String(partner.out.clientSecret);
    const user = await cli('user:create', '--privy-id', PRIVY_ID, '--points', '100');
    expect(user.code, user.err).toBe(0);
    userId = Number(user.out.userId);
    const credit = await cli('points:credit', '--user-id', String(userId), '--points', '50');
    expect(credit.out).toMatchObject({ balance: 150 });

    // The server accepts the new key and sees the balance at once.
    expect(await balanceOf(server)).toBe(150);
    const d = await deduct(server, 30, 'owner-1');
    expect(d.status).toBe(200);
    firstDeductId = ((await d.json()) as { transactionId: string }).transactionId;
    // The CLI sees the server's write (no stale balance to credit on top of).
    const credit2 = await cli('points:credit', '--user-id', String(userId), '--points', '5');
    expect(credit2.out).toMatchObject({ balance: 125 });
    expect(await balanceOf(server)).toBe(125);

    await stop(server);
    server = await startServer();
    expect(await balanceOf(server)).toBe(125);
    // (A partner's list shows its own transactions: the administrator's credits are not among them.)
    expect((await ledger(server)).map((t) => t.transactionId)).toEqual([firstDeductId]);
  });

  it('listens on no TCP port for the database: a Unix socket in the 0700 data directory', () => {
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    const socket = join(dataDir, '.s.PGSQL.5432');
    expect(statSync(socket).isSocket()).toBe(true);
    const ports = tcpListenPorts(server.pid);
    if (ports) expect(ports).toEqual([Number(new URL(server.url).port)]); // the HTTP port only
  });

  it('a second server on the same DATA_DIR refuses with one line naming the owner; the first keeps serving', async () => {
    const second = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(second);
    let out = '';
    let err = '';
    second.stdout.on('data', (b: Buffer) => {
      out += b.toString();
    });
    second.stderr.on('data', (b: Buffer) => {
      err += b.toString();
    });
    const timer = setTimeout(() => second.kill('SIGKILL'), 30_000);
    const code = await new Promise<number | null>((resolve) => second.once('exit', resolve));
    clearTimeout(timer);
    children.delete(second);
    expect(code).toBe(1);
    expect(out).toBe('');
    expect(err.trim().split('\n')).toEqual([
      `TIAN Points cannot start: the embedded database in ${dataDir} is in use by process ${server.pid} (src/main.ts); stop it or set DATA_DIR`,
    ]);
    expect(await balanceOf(server)).toBe(125);
  });

  it('SIGKILL in the middle of deducts loses no acknowledged deduct, and a restart takes over the stale lock', async () => {
    const initial = await balanceOf(server);
    const acked: { key: string; transactionId: string }[] = [];
    let killed = false;
    const worker = async (w: number) => {
      for (let i = 0; ; i++) {
        const key = `kill-${w}-${i}`;
        try {
          const res = await deduct(server, 1, key);
          if (res.status !== 200) throw new Error(`deduct answered ${res.status}: ${await res.text()}`);
          acked.push({ key, transactionId: ((await res.json()) as { transactionId: string }).transactionId });
        } catch (e) {
          if (killed) return;
          throw e;
        }
        if (acked.length >= 60 && !killed) {
          killed = true;
          server.child.kill('SIGKILL');
        }
      }
    };
    const WORKERS = 3;
    await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
    expect(await server.exited).toBe(null); // killed, no clean shutdown

    server = await startServer(); // the dead server's lock and socket file are stale: taken over
    const deducts = (await ledger(server)).filter((t) => t.transactionId !== firstDeductId);
    expect(deducts.every((t) => t.type === 'deduct')).toBe(true);
    const ids = new Set(deducts.map((t) => t.transactionId));
    for (const a of acked) expect(ids.has(a.transactionId), a.key).toBe(true);
    // In flight at the kill: committed or not, but never more than one per worker.
    expect(deducts.length - acked.length).toBeGreaterThanOrEqual(0);
    expect(deducts.length - acked.length).toBeLessThanOrEqual(WORKERS);
    expect(await balanceOf(server)).toBe(initial - deducts.length);
    // Each acknowledged deduct replays as itself.
    const some = acked[acked.length - 1];
    if (!some) throw new Error('no deduct was acknowledged');
    const replay = await deduct(server, 1, some.key);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(((await replay.json()) as { transactionId: string }).transactionId).toBe(some.transactionId);
  });

  it('with no server running, the CLI opens the directory itself, and the next server sees its change', async () => {
    await stop(server);
    const credit = await cli('points:credit', '--user-id', String(userId), '--points', '1000');
    expect(credit.code, credit.err).toBe(0);
    const expected = Number(credit.out.balance);
    expect(existsSync(join(dataDir, 'tian-owner.lock'))).toBe(false); // released on exit
    server = await startServer();
    expect(await balanceOf(server)).toBe(expected);
    await stop(server);
  });
});

describe('the embedded socket (memory://, as the tests use it)', { timeout: 60_000 }, () => {
  let mem: EmbeddedPostgres;
  beforeAll(async () => {
    mem = await startEmbeddedPostgres('memory://');
  });
  afterAll(() => mem?.stop());

  it('is a Unix socket in a fresh 0700 directory', () => {
    expect(statSync(mem.socketDir).mode & 0o777).toBe(0o700);
    expect(statSync(join(mem.socketDir, '.s.PGSQL.5432')).isSocket()).toBe(true);
  });

  it("never runs another connection's statements inside one connection's Parse ... Sync exchange", async () => {
    // Connection A sends Parse, then (in a separate write) Bind/Execute/Sync, while B runs a query
    // in between. PGlite has one session, hence one unnamed statement: B must wait for A's Sync.
    const a = await rawConnect(join(mem.socketDir, '.s.PGSQL.5432'));
    a.send(msg('P', cstr(''), cstr("select 'from-a' as v"), int16(0)));
    await new Promise((r) => setTimeout(r, 100));
    const b = new pg.Client({ host: mem.socketDir, port: mem.port, user: 'postgres', database: 'postgres' });
    const bConnected = b.connect(); // it waits for the session too: not awaited before A is done
    const bResult = b.query<{ v: string }>('select $1::text as v', ['from-b']);
    await new Promise((r) => setTimeout(r, 200));
    a.send(
      msg('B', cstr(''), cstr(''), int16(0), int16(0), int16(0)),
      msg('E', cstr(''), int32(0)),
      msg('S'),
    );
    const reply = await a.untilReady();
    expect(reply.error).toBeUndefined();
    expect(reply.values).toEqual(['from-a']);
    await bConnected;
    expect((await bResult).rows[0]?.v).toBe('from-b');
    await b.end();
    a.close();
  });

  it('is removed with its directory on stop', async () => {
    await mem.stop(); // (afterAll's stop is then a no-op)
    expect(existsSync(mem.socketDir)).toBe(false);
  });
});

// A minimal PostgreSQL wire-protocol client, to send messages in separate writes.
const int16 = (n: number) => {
  const b = Buffer.alloc(2);
  b.writeInt16BE(n);
  return b;
};
const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const cstr = (s: string) => Buffer.from(`${s}\0`);
const msg = (type: string, ...parts: Buffer[]) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from(type), int32(body.length + 4), body]);
};

async function rawConnect(path: string) {
  const socket = createConnection(path);
  let buf = Buffer.alloc(0);
  let waiter: (() => void) | undefined;
  socket.on('data', (d: Buffer) => {
    buf = Buffer.concat([buf, d]);
    waiter?.();
  });
  const untilReady = async () => {
    const values: string[] = [];
    let error: string | undefined;
    for (;;) {
      while (buf.length >= 5 && buf.length >= 1 + buf.readInt32BE(1)) {
        const type = String.fromCharCode(buf[0] ?? 0);
        const body = buf.subarray(5, 1 + buf.readInt32BE(1));
        buf = buf.subarray(1 + buf.readInt32BE(1));
        if (type === 'D') values.push(body.subarray(6, 6 + body.readInt32BE(2)).toString());
        if (type === 'E') error = body.toString().replace(/\0/g, ' ').trim();
        if (type === 'Z') return { values, error };
      }
      await new Promise<void>((r) => {
        waiter = r;
      });
    }
  };
  await new Promise<void>((ok, fail) => socket.once('connect', ok).once('error', fail));
  const startup = Buffer.concat([
    int32(196608),
    cstr('user'),
    cstr('postgres'),
    cstr('database'),
    cstr('postgres'),
    cstr(''),
  ]);
  socket.write(Buffer.concat([int32(startup.length + 4), startup]));
  await untilReady();
  return {
    send: (...m: Buffer[]) => socket.write(Buffer.concat(m)),
    untilReady,
    close: () => socket.end(msg('X')),
  };
}
