import { createHmac, randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Config } from '../../config.js';
import type { Database, Sql } from '../../db/database.js';
import type { Clock } from '../../lib/clock.js';
import { hashSecret, newSecret } from '../../lib/crypto.js';
import { AnonymousCsrf, checkCsrf } from './csrf.js';

export const SESSION_TTL_MS = 8 * 60 * 60 * 1000;

/** A signed-in wallet browser session. */
export type WalletSession = {
  idHash: string;
  userId: number;
  userLabel: string | null;
  csrfToken: string;
};

/** Who is looking at a wallet page, and the CSRF token its forms carry. */
export type Visitor = { session: WalletSession | undefined; csrfToken: string };

/**
 * Wallet browser sessions. Only a successful sign-in stores anything: the session cookie holds a
 * random id and the table its hash. A visitor who has not signed in gets a signed CSRF cookie
 * instead of a row (DESIGN.md: anonymous visitors cost no server-side rows). Both cookies are
 * httpOnly + SameSite=Lax (+ Secure and the __Host- prefix in production).
 */
export class WalletSessions {
  private readonly anonymous: AnonymousCsrf;

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly config: Config,
  ) {
    this.anonymous = new AnonymousCsrf(csrfKey(config), SESSION_TTL_MS);
  }

  get cookieName(): string {
    return this.config.production ? '__Host-tian_wallet' : 'tian_wallet';
  }

  get csrfCookieName(): string {
    return this.config.production ? '__Host-tian_csrf' : 'tian_csrf';
  }

  /** The live signed-in session the request's cookie names, if any. */
  async current(req: Request): Promise<WalletSession | undefined> {
    const id = readCookie(req, this.cookieName);
    if (!id) return undefined;
    const [row] = await this.db.query<{
      id_hash: string;
      user_id: string;
      csrf_token: string;
      email: string | null;
      privy_id: string | null;
    }>(
      `select s.id_hash, s.user_id, s.csrf_token, u.email, u.privy_id
       from wallet_sessions s join users u on u.id = s.user_id
       where s.id_hash = $1 and s.expires_at > $2 and u.disabled_at is null`,
      [hashSecret(id), this.clock.now()],
    );
    if (!row) return undefined;
    return {
      idHash: row.id_hash,
      userId: Number(row.user_id),
      userLabel: row.email ?? row.privy_id,
      csrfToken: row.csrf_token,
    };
  }

  /**
   * For a page: the signed-in session and its CSRF token, or else the anonymous CSRF cookie's token
   * (a new cookie when there is none, or when it would expire within half its lifetime).
   */
  async visit(req: Request, res: Response): Promise<Visitor> {
    const session = await this.current(req);
    if (session) return { session, csrfToken: session.csrfToken };
    const now = this.clock.now();
    const token = readCookie(req, this.csrfCookieName);
    const expiry = this.anonymous.expiresAt(token, now);
    if (token && expiry && expiry.getTime() - now.getTime() > this.anonymous.ttlMs / 2) {
      return { session: undefined, csrfToken: token };
    }
    const fresh = this.anonymous.mint(now);
    res.cookie(this.csrfCookieName, fresh, { ...this.cookieOptions(), maxAge: this.anonymous.ttlMs });
    return { session: undefined, csrfToken: fresh };
  }

  /**
   * The sign-in form's CSRF check: the token must be the anonymous cookie's (signed by us, not
   * expired) or the current session's. Returns the current session, which sign-in replaces.
   */
  async checkSignInForm(req: Request, submitted: unknown): Promise<WalletSession | undefined> {
    const session = await this.current(req);
    const cookie = readCookie(req, this.csrfCookieName);
    const anonymous = this.anonymous.expiresAt(cookie, this.clock.now()) ? cookie : undefined;
    checkCsrf([session?.csrfToken, anonymous], submitted);
    return session;
  }

  /**
   * Every other form acts on a signed-in session and must carry that session's own token: a
   * double-submit cookie alone could be planted by a sibling domain outside production's __Host-.
   */
  async checkSessionForm(req: Request, submitted: unknown): Promise<WalletSession> {
    const session = await this.current(req);
    checkCsrf([session?.csrfToken], submitted);
    return session as WalletSession;
  }

  /** Signing in always issues a new session id (no session fixation) and drops the old session. */
  async signIn(
    res: Response,
    previous: WalletSession | undefined,
    user: { id: number; label: string },
  ): Promise<WalletSession> {
    if (previous) await this.end(res, previous);
    const id = newSecret('tcws_');
    const csrfToken = newSecret('', 24);
    const now = this.clock.now();
    await this.db.query(
      `insert into wallet_sessions (id_hash, user_id, csrf_token, created_at, expires_at)
       values ($1, $2, $3, $4, $5)`,
      [hashSecret(id), user.id, csrfToken, now, new Date(now.getTime() + SESSION_TTL_MS)],
    );
    res.cookie(this.cookieName, id, { ...this.cookieOptions(), maxAge: SESSION_TTL_MS });
    return { idHash: hashSecret(id), userId: user.id, userLabel: user.label, csrfToken };
  }

  async end(res: Response, session: WalletSession): Promise<void> {
    await this.db.query('delete from wallet_sessions where id_hash = $1', [session.idHash]);
    res.clearCookie(this.cookieName, this.cookieOptions());
  }

  private cookieOptions() {
    return { httpOnly: true, sameSite: 'lax' as const, secure: this.config.production, path: '/' };
  }
}

const PURGE_BATCH = 5000;

/**
 * Deletes expired sessions, and the anonymous rows older versions stored for every visitor to the
 * sign-in page. In batches, so a large backlog never holds one long lock. Returns how many went.
 */
export async function purgeExpiredSessions(sql: Sql, now: Date): Promise<number> {
  let total = 0;
  for (;;) {
    const gone = await sql.query(
      `delete from wallet_sessions where id_hash in (
         select id_hash from wallet_sessions where expires_at <= $1 or user_id is null limit ${PURGE_BATCH})
       returning 1`,
      [now],
    );
    total += gone.length;
    if (gone.length < PURGE_BATCH) return total;
  }
}

/**
 * The key anonymous CSRF cookies are signed with: derived from SESSION_SECRET when set (the same on
 * every instance), else random for this process. One per Config, so every WalletSessions built from
 * the same configuration (the wallet pages and the authorize endpoint) agrees on it.
 */
const keys = new WeakMap<Config, Buffer>();
function csrfKey(config: Config): Buffer {
  let key = keys.get(config);
  if (!key) {
    key = config.sessionSecret
      ? createHmac('sha256', config.sessionSecret).update('askTIAN wallet anonymous CSRF v1').digest()
      : randomBytes(32);
    keys.set(config, key);
  }
  return key;
}

function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
