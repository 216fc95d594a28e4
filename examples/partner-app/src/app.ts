import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { AuthorizationResponseError, OperationProcessingError, ResponseBodyError } from 'oauth4webapi';
import type { PartnerAppConfig } from './config.js';
import { connectedPage, type Flash, problemPage, signedOutPage } from './pages.js';
import { NotConnected, TianApi } from './tian-api.js';
import { type PendingAuthorization, TianOAuth } from './tian-oauth.js';
import { JsonFileTokenStore, MemoryTokenStore, type TokenStore } from './token-store.js';
import { WebhookReceiver } from './webhooks.js';

/** A visitor of this app. Sessions live in memory: a restart signs everyone out (tokens stay stored). */
type Session = { csrf: string; userId?: number; pending?: PendingAuthorization; flash?: Flash };

const SESSION_COOKIE = 'partner_session';
const MAX_BODY_BYTES = 1024 * 1024;
const notConnectedAnyMore =
  'Your TIAN wallet is not connected any more. Connect it again to pay with points.';

export type PartnerApp = { url: string; server: Server; close(): Promise<void> };

export async function startPartnerApp(
  config: PartnerAppConfig,
  log: (line: string) => void = console.log,
): Promise<PartnerApp> {
  const now = () => new Date();
  const store: TokenStore = config.tokenStoreFile
    ? new JsonFileTokenStore(config.tokenStoreFile)
    : new MemoryTokenStore();
  const oauth = new TianOAuth(config.tianUrl, config.clientId, config.clientSecret, now);
  const api = new TianApi({
    baseUrl: config.tianUrl.origin,
    oauth,
    store,
    refreshBeforeExpiryMs: config.refreshBeforeExpirySeconds * 1000,
    now,
    log,
  });
  const webhooks = new WebhookReceiver(config.webhookSecret, store, log);
  const sessions = new Map<string, Session>();
  let publicUrl = config.publicUrl ?? '';
  const redirectUri = () => `${publicUrl}/callback`;

  const sessionOf = (req: IncomingMessage, res: ServerResponse): Session => {
    const id = cookie(req, SESSION_COOKIE);
    const existing = id ? sessions.get(id) : undefined;
    if (existing) return existing;
    const fresh: Session = { csrf: randomBytes(24).toString('base64url') };
    const newId = randomBytes(24).toString('base64url');
    sessions.set(newId, fresh);
    const secure = publicUrl.startsWith('https:') ? '; Secure' : '';
    // SameSite=Lax: the cookie must come along on the top-level redirect back from TIAN to /callback.
    res.setHeader('set-cookie', `${SESSION_COOKIE}=${newId}; Path=/; HttpOnly; SameSite=Lax${secure}`);
    return fresh;
  };

  const takeFlash = (session: Session): Flash | undefined => {
    const flash = session.flash;
    session.flash = undefined;
    return flash;
  };

  const routes: Record<string, (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>> = {
    'GET /': async (req, res) => {
      const session = sessionOf(req, res);
      const userId = session.userId;
      if (userId === undefined) return sendHtml(res, 200, signedOutPage(takeFlash(session)));
      if (!api.isConnected(userId)) {
        // Cleared by a token.revoked webhook, or the grant ended at a refresh.
        return sendHtml(res, 200, signedOutPage({ text: notConnectedAnyMore, error: true }));
      }
      try {
        const balance = await api.balance(userId);
        sendHtml(
          res,
          200,
          // A fresh key per rendered form: submitting this form twice deducts once.
          connectedPage({
            userId,
            balance,
            csrf: session.csrf,
            idempotencyKey: randomUUID(),
            flash: takeFlash(session),
          }),
        );
      } catch (err) {
        if (!(err instanceof NotConnected)) throw err;
        sendHtml(res, 200, signedOutPage({ text: notConnectedAnyMore, error: true }));
      }
    },

    'GET /connect': async (req, res) => {
      const session = sessionOf(req, res);
      const { url, pending } = await oauth.startAuthorization(redirectUri(), config.scope);
      session.pending = pending;
      res.writeHead(302, { location: url.toString() }).end();
    },

    'GET /callback': async (req, res, url) => {
      const session = sessionOf(req, res);
      const pending = session.pending;
      session.pending = undefined;
      if (!pending) {
        return sendHtml(
          res,
          400,
          problemPage('Sign-in not recognised', 'This sign-in was not started here, or was already used.'),
        );
      }
      try {
        const granted = await oauth.finishAuthorization(url, pending, redirectUri());
        const tokens = await api.connect(granted);
        session.userId = tokens.userId;
        session.flash = { text: 'Your TIAN wallet is connected.' };
      } catch (err) {
        if (err instanceof AuthorizationResponseError) {
          // The user said no (access_denied), or TIAN refused the request.
          session.flash = { text: `Your TIAN wallet was not connected (${err.error}).`, error: true };
        } else if (err instanceof OperationProcessingError || err instanceof ResponseBodyError) {
          // A callback that does not match the sign-in we started (state, iss), or a refused code.
          log(`refused a sign-in callback: ${err.message}`);
          session.flash = { text: 'That sign-in could not be verified. Please connect again.', error: true };
        } else throw err;
      }
      res.writeHead(303, { location: '/' }).end();
    },

    'POST /deduct': async (req, res) => {
      const session = sessionOf(req, res);
      const form = new URLSearchParams(await readBody(req));
      if (!sameSecret(form.get('csrf_token') ?? '', session.csrf)) {
        return sendHtml(res, 403, problemPage('Form expired', 'Reload the page and try again.'));
      }
      const amount = Number(form.get('amount'));
      const key = form.get('idempotency_key') ?? '';
      if (!Number.isInteger(amount) || amount < 1 || amount > 100_000_000 || !/^[\w-]{1,255}$/.test(key)) {
        return sendHtml(res, 400, problemPage('Invalid amount', 'Enter a whole number of points.'));
      }
      if (session.userId === undefined) return void res.writeHead(303, { location: '/' }).end();
      try {
        const outcome = await api.deduct(session.userId, amount, key);
        session.flash = outcome.ok
          ? {
              text: `Deducted ${outcome.result.creditsDeducted} points (transaction ${outcome.result.transactionId}).`,
            }
          : { text: outcome.problem?.detail ?? `TIAN answered ${outcome.status}.`, error: true };
      } catch (err) {
        if (!(err instanceof NotConnected)) throw err;
      }
      res.writeHead(303, { location: '/' }).end();
    },

    'POST /webhooks/tian': async (req, res) => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(req.headers))
        if (typeof value === 'string') headers[name] = value;
      const outcome = webhooks.handle(await readBody(req), headers);
      if (outcome.status === 400) log(`refused a webhook: ${outcome.reason}`);
      res.writeHead(outcome.status).end();
    },
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', publicUrl || 'http://localhost');
    const route = routes[`${req.method} ${url.pathname}`];
    res.setHeader(
      'content-security-policy',
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    );
    res.setHeader('referrer-policy', 'no-referrer');
    if (!route) return sendHtml(res, 404, problemPage('Not found', 'There is no such page.'));
    route(req, res, url).catch((err: unknown) => {
      log(`error on ${req.method} ${url.pathname}: ${err instanceof Error ? err.stack : String(err)}`);
      if (!res.headersSent)
        sendHtml(res, 502, problemPage('Something went wrong', 'TIAN could not be reached; try again.'));
      else res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, resolve);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  publicUrl ||= `http://${config.host}:${port}`;
  return {
    url: publicUrl,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function sendHtml(res: ServerResponse, status: number, page: string): void {
  res
    .writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
    .end(page);
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) req.destroy(new Error('request body too large'));
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
