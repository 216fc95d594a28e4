import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Webhook } from 'standardwebhooks';

/** One request the receiver got. */
export type ReceivedWebhook = {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
  receivedAt: number;
};

/** How the receiver answers one request (default: 200 "ok"). */
export type Reply = {
  status?: number;
  body?: string;
  headers?: Record<string, string>;
  /** Answer after this many milliseconds (real time: it is a slow network peer). */
  delayMs?: number;
  /** Never answer (until the receiver closes). */
  hang?: boolean;
};

/**
 * A partner's webhook receiver on 127.0.0.1 for tests: records every request, answers with scripted
 * replies (status, delay, hang), can go down and come back on the same port, and verifies Standard
 * Webhooks signatures with the `standardwebhooks` package, as a partner would.
 */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  private readonly script: Reply[] = [];
  private fallback: Reply = { status: 200, body: 'ok' };
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly waiters = new Set<() => void>();
  private constructor(private port: number) {}

  static async start(): Promise<WebhookReceiver> {
    const r = new WebhookReceiver(0);
    await r.up();
    return r;
  }

  /** The URL of `path` on this receiver (plain http on loopback: development servers accept it). */
  url(path = '/hook'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** The next requests get these replies, in order; after them, `always` (default 200). */
  reply(...replies: Reply[]): this {
    this.script.push(...replies);
    return this;
  }

  /** What every request gets once the scripted replies are used up. */
  always(reply: Reply): this {
    this.fallback = reply;
    return this;
  }

  /** Requests whose `webhook-id` is `eventId`. */
  forEvent(eventId: string): ReceivedWebhook[] {
    return this.received.filter((r) => r.headers['webhook-id'] === eventId);
  }

  /** Resolves once `count` requests arrived in all (real time; fails after `timeoutMs`). */
  async waitFor(count: number, timeoutMs = 5_000): Promise<ReceivedWebhook[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.received.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`receiver got ${this.received.length} requests, expected ${count}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.add(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.received.slice(0, count);
  }

  /**
   * Verifies `req` with `secret` as a receiver would (throws when no signature matches), at `now`
   * (the test's injected clock: the package checks the timestamp against its current time).
   */
  static verify(req: ReceivedWebhook, secret: string, now: Date): unknown {
    const realNow = Date.now;
    Date.now = () => now.getTime();
    try {
      return new Webhook(secret).verify(req.body, req.headers);
    } finally {
      Date.now = realNow;
    }
  }

  /** Stops listening (connections are refused) but keeps the port for `up`. */
  async down(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Listens again, on the same port as before. */
  async up(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => this.handle(req, res));
    server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    const addr = server.address();
    if (typeof addr === 'object' && addr) this.port = addr.port;
    this.server = server;
  }

  close(): Promise<void> {
    return this.down();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
      this.received.push({
        method: req.method ?? '',
        path: req.url ?? '',
        headers,
        body: Buffer.concat(chunks).toString('utf8'),
        receivedAt: Date.now(),
      });
      for (const wake of this.waiters) wake();
      this.waiters.clear();
      const reply = this.script.shift() ?? this.fallback;
      if (reply.hang) return;
      const answer = () => {
        if (res.destroyed) return;
        res.writeHead(reply.status ?? 200, { 'content-type': 'text/plain', ...reply.headers });
        res.end(reply.body ?? '');
      };
      if (reply.delayMs) setTimeout(answer, reply.delayMs);
      else answer();
    });
  }
}
