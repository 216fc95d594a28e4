import { createServer, type Server } from 'node:http';

/**
 * The webhook scenario's partner receiver: answers every POST with 200 at once and counts them (and
 * the distinct webhook-ids). Kept minimal so the receiver costs as little as a fast partner would.
 */
export class FastReceiver {
  received = 0;
  readonly ids = new Set<string>();
  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<FastReceiver> {
    let self: FastReceiver | undefined;
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (self) {
          self.received++;
          const id = req.headers['webhook-id'];
          if (typeof id === 'string') self.ids.add(id);
        }
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      });
    });
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    self = new FastReceiver(server, `http://127.0.0.1:${port}/hook`);
    return self;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
