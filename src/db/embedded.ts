import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketHandler } from '@electric-sql/pglite-socket';

/**
 * How the `pg` driver reaches the embedded database: a Unix socket `<socketDir>/.s.PGSQL.<port>`
 * (libpq's naming, which `pg` follows when `host` is a directory). Never a TCP port.
 */
export type EmbeddedPostgres = {
  socketDir: string;
  port: number;
  /** `owner`: this process opened the data directory; `client`: it talks to the owner's socket. */
  role: 'owner' | 'client';
  stop(): Promise<void>;
};

/** Who opens the directory: the server, or an admin command (which may go through a running server). */
export type EmbeddedRole = 'server' | 'cli';

/** Another live process owns the data directory. The message is the one line to print. */
export class EmbeddedDatabaseInUse extends Error {
  constructor(
    readonly dataDir: string,
    readonly holder: LockRecord,
  ) {
    super(
      `the embedded database in ${dataDir} is in use by process ${holder.pid} (${holder.command}); ` +
        'stop it or set DATA_DIR',
    );
  }
}

const LOCK_FILE = 'tian-owner.lock';
const SOCKET_PORT = 5432;
const SOCKET_NAME = `.s.PGSQL.${SOCKET_PORT}`;
/** sun_path is 108 bytes on Linux and 104 on macOS, both counting the terminating NUL. */
const MAX_SOCKET_PATH = 103;
/** How long to wait for a short-lived holder (an admin command) to finish, or for a starting server's socket. */
const WAIT_MS = 20_000;

type LockRecord = {
  pid: number;
  /** The holder's start time (Linux /proc), so a reused pid is not taken for the holder. */
  startTime?: string;
  role: EmbeddedRole;
  command: string;
  socketDir: string;
};

/** Data directories this process holds, so a second open in the same process is refused too. */
const heldHere = new Set<string>();

/**
 * The embedded PostgreSQL (PGlite, WASM) in `dataDir`. Exactly one process owns a data directory: the
 * owner takes `tian-owner.lock` in it, opens PGlite and serves it on a Unix socket inside the directory
 * (mode 0700, so only this OS user can connect; nothing listens on TCP). Everyone else goes through
 * that socket: an admin command (`role: 'cli'`) that finds a live server owning the directory connects
 * to its socket, so what it writes is the server's own data at once. A second server is refused
 * ({@link EmbeddedDatabaseInUse}). A lock left by a dead process (SIGKILL) is taken over.
 *
 * PGlite is one database session: the pool in front of it must have max 1, and nothing may wait inside
 * a transaction on a second connection (DESIGN.md). Connections to the socket share that session one
 * at a time (see {@link SessionQueue}).
 *
 * `memory://` keeps nothing on disk (tests): no lock, and the socket lives in a fresh 0700 temp
 * directory removed on stop.
 */
export async function startEmbeddedPostgres(
  dataDir: string,
  role: EmbeddedRole = 'server',
): Promise<EmbeddedPostgres> {
  if (dataDir.startsWith('memory://')) {
    const socketDir = mkdtempSync(join(tmpdir(), 'tian-pglite-'));
    return serveOwned(dataDir, socketDir, () => rmSync(socketDir, { recursive: true, force: true }));
  }
  const dir = resolve(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const got = takeLock(dir, dataDir, role);
    if ('release' in got) {
      const socketDir = got.record.socketDir;
      const release = () => {
        if (socketDir !== dir) rmSync(socketDir, { recursive: true, force: true });
        got.release();
      };
      return serveOwned(dir, socketDir, release).catch((err: unknown) => {
        release();
        throw err;
      });
    }
    const holder = got.holder;
    if (role === 'cli' && holder.role === 'server') {
      // Go through the running server. It writes its lock before it opens PGlite, so its socket may
      // not be listening yet: wait for it, as long as the server is alive.
      if (await socketAnswers(holder.socketDir)) {
        return { socketDir: holder.socketDir, port: SOCKET_PORT, role: 'client', async stop() {} };
      }
    } else if (holder.role === 'server') {
      throw new EmbeddedDatabaseInUse(dataDir, holder);
    }
    // An admin command holds it (it finishes in moments), or a server is still starting: wait.
    if (Date.now() > deadline) throw new EmbeddedDatabaseInUse(dataDir, holder);
    await sleep(100);
  }
}

/** Opens PGlite in `dataDir` and serves it on `<socketDir>/.s.PGSQL.5432`; `cleanup` runs after stop. */
async function serveOwned(
  dataDir: string,
  socketDir: string,
  cleanup: () => void,
): Promise<EmbeddedPostgres> {
  const db = await PGlite.create(dataDir);
  let server: SocketServer;
  try {
    server = await SocketServer.start(db, join(socketDir, SOCKET_NAME));
  } catch (err) {
    await db.close();
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    socketDir,
    port: SOCKET_PORT,
    role: 'owner',
    stop() {
      stopped ??= (async () => {
        try {
          await server.stop();
          await db.close();
        } finally {
          cleanup();
        }
      })();
      return stopped;
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// The owner lock: `<dataDir>/tian-owner.lock`, created exclusively (O_EXCL), holding who owns the
// directory and where its socket is. A lock whose process is gone is stale and is taken over.

type Taken = { record: LockRecord; release(): void } | { holder: LockRecord };

function takeLock(dir: string, shownDir: string, role: EmbeddedRole): Taken {
  const lockPath = join(dir, LOCK_FILE);
  if (heldHere.has(dir)) return { holder: readRecord(lockPath) ?? selfRecord(role, dir) };
  const record = selfRecord(role, socketDirFor(dir));
  const taken = tryTakeLock(dir, lockPath, record);
  if (!(taken && 'release' in taken) && record.socketDir !== dir) {
    rmSync(record.socketDir, { recursive: true, force: true });
  }
  if (taken) return taken;
  throw new Error(`could not take the lock ${lockPath} for ${shownDir}`);
}

function tryTakeLock(dir: string, lockPath: string, record: LockRecord): Taken | undefined {
  const text = JSON.stringify(record);
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      writeFileSync(lockPath, text, { flag: 'wx', mode: 0o600 });
      heldHere.add(dir);
      return {
        record,
        release() {
          heldHere.delete(dir);
          // Remove the lock only if it is still ours.
          if (readText(lockPath) === text) unlinkSync(lockPath);
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const found = readText(lockPath);
    if (found === undefined) continue; // released meanwhile: try again
    const holder = parseRecord(found);
    if (holder && holderAlive(holder)) return { holder };
    if (!holder && Date.now() - mtimeMs(lockPath) < 2000) {
      // Just created and not yet written by its (live) creator: report it as busy for now.
      return { holder: { pid: 0, role: 'cli', command: 'starting', socketDir: dir } };
    }
    // Stale (its process is gone): remove exactly that file, then try again.
    const aside = `${lockPath}.stale-${process.pid}`;
    try {
      renameSync(lockPath, aside);
    } catch {
      continue;
    }
    const moved = readText(aside);
    if (moved !== found) {
      // Another process replaced the stale lock between our read and the rename: put theirs back.
      try {
        writeFileSync(lockPath, moved ?? '', { flag: 'wx', mode: 0o600 });
      } catch {}
    }
    rmSync(aside, { force: true });
  }
  return undefined;
}

function selfRecord(role: EmbeddedRole, socketDir: string): LockRecord {
  const startTime = processStartTime(process.pid);
  return {
    pid: process.pid,
    ...(startTime ? { startTime } : {}),
    role,
    command: describeCommand(),
    socketDir,
  };
}

/** The socket goes inside the data directory when the path fits in sun_path, else in a fresh 0700 temp dir. */
function socketDirFor(dir: string): string {
  if (Buffer.byteLength(join(dir, SOCKET_NAME)) <= MAX_SOCKET_PATH) return dir;
  return mkdtempSync(join(tmpdir(), 'tian-pglite-'));
}

function holderAlive(r: LockRecord): boolean {
  // Our own pid in the lock, but not held by this process: a previous incarnation with the same pid
  // (a restarted container's pid 1, say) that was killed.
  if (r.pid === process.pid) return false;
  try {
    process.kill(r.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = processStartTime(r.pid);
  return !(r.startTime && now && now !== r.startTime);
}

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); undefined where there is no /proc. */
function processStartTime(pid: number): string | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  if (!stat) return undefined;
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

/** `npm start`, `npm run cli`, or the script's path: what the user would recognise in the message. */
function describeCommand(): string {
  const script = process.argv[1]
    ? relative(process.cwd(), process.argv[1]) || process.argv[1]
    : process.argv0;
  // npm's variables are inherited by every child process; trust them only when npm's script runs this file.
  const event = process.env.npm_lifecycle_event;
  if (event && process.env.npm_lifecycle_script?.includes(script)) {
    return event === 'start' ? 'npm start' : `npm run ${event}`;
  }
  return script;
}

function parseRecord(text: string): LockRecord | undefined {
  try {
    const r = JSON.parse(text) as LockRecord;
    return typeof r.pid === 'number' && typeof r.socketDir === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}

function readRecord(path: string): LockRecord | undefined {
  const t = readText(path);
  return t === undefined ? undefined : parseRecord(t);
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function mtimeMs(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

async function socketAnswers(socketDir: string): Promise<boolean> {
  return new Promise((resolveAnswer) => {
    const s = createConnection(join(socketDir, SOCKET_NAME));
    s.once('connect', () => {
      s.destroy();
      resolveAnswer(true);
    });
    s.once('error', () => resolveAnswer(false));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

// ---------------------------------------------------------------------------------------------------
// The socket server. PGLiteSocketHandler (from @electric-sql/pglite-socket) does the per-connection
// framing; the session is shared by our own SessionQueue rather than the package's, see below.

type QueueForHandler = ConstructorParameters<typeof PGLiteSocketHandler>[0]['queryQueue'];

class SocketServer {
  private readonly handlers = new Set<PGLiteSocketHandler>();

  private constructor(
    private readonly server: Server,
    private readonly queue: SessionQueue,
    private readonly path: string,
  ) {}

  static async start(db: PGlite, path: string): Promise<SocketServer> {
    rmSync(path, { force: true }); // a socket file left by a killed owner; we hold the lock
    const queue = new SessionQueue(db);
    const net = createServer();
    const server = new SocketServer(net, queue, path);
    net.on('connection', (socket) => server.accept(socket));
    await new Promise<void>((ok, fail) => {
      net.once('error', fail);
      net.listen(path, () => {
        net.off('error', fail);
        ok();
      });
    });
    chmodSync(path, 0o600);
    return server;
  }

  private accept(socket: Socket): void {
    const handler = new PGLiteSocketHandler({
      queryQueue: this.queue as unknown as QueueForHandler,
      closeOnDetach: true,
    });
    this.handlers.add(handler);
    const forget = () => this.handlers.delete(handler);
    handler.addEventListener('close', forget);
    handler.addEventListener('error', forget);
    handler.attach(socket).catch(() => {
      forget();
      socket.destroy();
    });
  }

  async stop(): Promise<void> {
    const closed = new Promise<void>((ok) => this.server.close(() => ok()));
    await Promise.all([...this.handlers].map((h) => h.detach(true)));
    this.handlers.clear();
    await closed;
    rmSync(this.path, { force: true });
  }
}

type Pending = {
  handlerId: number;
  message: Uint8Array;
  onData: (data: Uint8Array) => void;
  resolve: (bytes: number) => void;
  reject: (err: Error) => void;
};

const TERMINATE = 0x58; // 'X'
const READY_FOR_QUERY = 0x5a; // 'Z'
const IDLE = 0x49; // 'I'
const SYNC = new Uint8Array([0x53, 0, 0, 0, 4]);

/**
 * Shares PGlite's one session among socket connections. A connection that sends a message owns the
 * session until PostgreSQL next reports ReadyForQuery with status idle: that covers a whole extended-
 * protocol exchange (Parse/Bind/Execute ... Sync, whose messages may arrive in separate reads) and a
 * whole transaction. Messages from other connections wait their turn.
 *
 * (pglite-socket 0.2.17's own queue hands the session over at any message boundary outside an
 * explicit transaction block, so another connection's Parse could land between a Parse and its Bind;
 * and a failed message leaves that queue stopped for good.)
 */
class SessionQueue {
  private owner: number | undefined;
  private pending: Pending[] = [];
  private running = false;

  constructor(private readonly db: PGlite) {}

  enqueue(handlerId: number, message: Uint8Array, onData: (data: Uint8Array) => void): Promise<number> {
    // A client's Terminate is not for PGlite (it would shut the one session down); the socket close
    // that follows releases the session.
    if (message[0] === TERMINATE) return Promise.resolve(0);
    return new Promise((resolveItem, reject) => {
      this.pending.push({ handlerId, message, onData, resolve: resolveItem, reject });
      void this.pump();
    });
  }

  clearQueueForHandler(handlerId: number): void {
    this.pending = this.pending.filter((p) => {
      if (p.handlerId !== handlerId) return true;
      p.reject(new Error('connection closed'));
      return false;
    });
  }

  /** Called when a connection goes away: if it held the session, end its exchange and transaction. */
  async clearTransactionIfNeeded(handlerId: number): Promise<void> {
    if (this.owner !== handlerId) return;
    this.owner = undefined;
    await this.db.runExclusive(async () => {
      await this.db.execProtocolRaw(SYNC);
      if (this.db.isInTransaction()) await this.db.execProtocolRaw(simpleQuery('ROLLBACK'));
    });
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      for (;;) {
        const i = this.owner === undefined ? 0 : this.pending.findIndex((p) => p.handlerId === this.owner);
        const item = i >= 0 ? this.pending[i] : undefined;
        if (!item) return;
        this.pending.splice(i, 1);
        const scan = new ReadyScanner();
        let bytes = 0;
        try {
          await this.db.runExclusive(() =>
            this.db.execProtocolRawStream(item.message, {
              onRawData: (data) => {
                bytes += data.length;
                scan.push(data);
                item.onData(data);
              },
            }),
          );
        } catch (err) {
          this.owner = undefined;
          item.reject(err as Error);
          continue;
        }
        this.owner = scan.status === IDLE ? undefined : item.handlerId;
        item.resolve(bytes);
      }
    } finally {
      this.running = false;
    }
  }
}

/** Follows backend message framing across chunks and remembers the status of the last ReadyForQuery. */
class ReadyScanner {
  status: number | undefined;
  private header = Buffer.alloc(5);
  private headerLen = 0;
  private remaining = 0;
  private type = 0;

  push(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, chunk.length - i);
        i += n;
        this.remaining -= n;
        if (this.remaining === 0 && this.type === READY_FOR_QUERY) this.status = chunk[i - 1];
        continue;
      }
      this.header[this.headerLen++] = chunk[i++] ?? 0;
      if (this.headerLen === 5) {
        this.headerLen = 0;
        this.type = this.header[0] ?? 0;
        this.remaining = this.header.readInt32BE(1) - 4;
      }
    }
  }
}

function simpleQuery(sql: string): Uint8Array {
  const body = Buffer.from(`${sql}\0`, 'utf8');
  const msg = Buffer.alloc(5 + body.length);
  msg[0] = 0x51; // 'Q'
  msg.writeInt32BE(4 + body.length, 1);
  body.copy(msg, 5);
  return msg;
}
