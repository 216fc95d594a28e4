import { createHmac, randomBytes } from 'node:crypto';
import type { Request, Response } from 'express';
import type { Config } from '../../config.js';
import type { Database, Sql } from '../../db/database.js';
import type { Clock } from '../../lib/clock.js';
import { hashSecret, newSecret } from '../../lib/crypto.js';
import { AnonymousCsrf, checkCsrf } from './csrf.js';

export const SESSION_TTL_MS = 8 * 60 * 60 * 1000;

/**
 * Every kind of browser session has its own table of one shape (id_hash, <owner>, csrf_token,
 * created_at, expires_at); the owner column is named for what signs in.
 */
export const SESSION_TABLES = {
  wallet: { table: 'wallet_sessions', owner: 'user_id' },
  partner: { table: 'partner_sessions', owner: 'account_id' },
} as const;
type SessionTable = (typeof SESSION_TABLES)[keyof typeof SESSION_TABLES];

/** A signed-in browser session: its id hash, its forms' CSRF token, and whom it belongs to. */
export type Session<P> = P & { idHash: string; csrfToken: string };

/**
 * What differs between the kinds of signed-in browser session (the wallet's users, the dashboard's
 * partner accounts): where rows live, the cookie names, and who the session belongs to.
 */
export type SessionKind<P, Owner extends { id: number }> = {
  store: SessionTable;
  /** Cookie names; in production they carry the __Host- prefix. */
  cookie: string;
  csrfCookie: string;
  /**
   * Selects the live session's `id_hash`, `csrf_token` and whatever `principal` reads, where
   * `$1` is the id hash and `$2` now; owners that are disabled or gone select nothing.
   */
  select: string;
  principal(row: Record<string, unknown>): P;
  /** What `signIn` returns for the owner it was given. */
  fromOwner(owner: Owner): P;
};

/** Who is looking at a page, and the CSRF token its forms carry. */
export type Visitor<P> = { session: Session<P> | undefined; csrfToken: string };

/**
 * Browser sessions of one kind. Only a successful sign-in stores anything: the session cookie holds
 * a random id and the table its hash. A visitor who has not signed in gets a signed CSRF cookie
 * instead of a row (DESIGN.md: anonymous visitors cost no server-side rows). Both cookies are
 * httpOnly + SameSite=Lax (+ Secure and the __Host- prefix in production).
 */
export class BrowserSessions<P, Owner extends { id: number }> {
  private readonly anonymous: AnonymousCsrf;

  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly config: Config,
    private readonly kind: SessionKind<P, Owner>,
  ) {
    // A key per kind: a token minted for the wallet's forms is no good on the dashboard's, and back.
    this.anonymous = new AnonymousCsrf(csrfKey(config, kind.csrfCookie), SESSION_TTL_MS);
  }

  get cookieName(): string {
    return this.config.production ? `__Host-${this.kind.cookie}` : this.kind.cookie;
  }

  get csrfCookieName(): string {
    return this.config.production ? `__Host-${this.kind.csrfCookie}` : this.kind.csrfCookie;
  }

  /** The live signed-in session the request's cookie names, if any. */
  async current(req: Request): Promise<Session<P> | undefined> {
    const id = readCookie(req, this.cookieName);
    if (!id) return undefined;
    const [row] = await this.db.query<Record<string, unknown>>(this.kind.select, [
      hashSecret(id),
      this.clock.now(),
    ]);
    if (!row) return undefined;
    return {
      ...this.kind.principal(row),
      idHash: String(row.id_hash),
      csrfToken: String(row.csrf_token),
    };
  }

  /**
   * For a page: the signed-in session and its CSRF token, or else the anonymous CSRF cookie's token
   * (a new cookie when there is none, or when it would expire within half its lifetime).
   */
  async visit(req: Request, res: Response): Promise<Visitor<P>> {
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
  async checkSignInForm(req: Request, submitted: unknown): Promise<Session<P> | undefined> {
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
  async checkSessionForm(req: Request, submitted: unknown): Promise<Session<P>> {
    const session = await this.current(req);
    checkCsrf([session?.csrfToken], submitted);
    return session as Session<P>;
  }

  /** Signing in always issues a new session id (no session fixation) and drops the old session. */
  async signIn(res: Response, previous: Session<P> | undefined, owner: Owner): Promise<Session<P>> {
    if (previous) await this.end(res, previous);
    const id = newSecret('tcws_');
    const csrfToken = newSecret('', 24);
    const now = this.clock.now();
    await this.db.query(
      `insert into ${this.kind.store.table} (id_hash, ${this.kind.store.owner}, csrf_token, created_at, expires_at)
       values ($1, $2, $3, $4, $5)`,
      [hashSecret(id), owner.id, csrfToken, now, new Date(now.getTime() + SESSION_TTL_MS)],
    );
    res.cookie(this.cookieName, id, { ...this.cookieOptions(), maxAge: SESSION_TTL_MS });
    return { ...this.kind.fromOwner(owner), idHash: hashSecret(id), csrfToken };
  }

  async end(res: Response, session: Session<P>): Promise<void> {
    await this.db.query(`delete from ${this.kind.store.table} where id_hash = $1`, [session.idHash]);
    res.clearCookie(this.cookieName, this.cookieOptions());
  }

  private cookieOptions() {
    return { httpOnly: true, sameSite: 'lax' as const, secure: this.config.production, path: '/' };
  }
}

/** Who a wallet session belongs to. */
export type WalletPrincipal = { userId: number; userLabel: string | null };
/** A signed-in wallet browser session. */
export type WalletSession = Session<WalletPrincipal>;

const WALLET_SESSIONS: SessionKind<WalletPrincipal, { id: number; label: string }> = {
  store: SESSION_TABLES.wallet,
  cookie: 'tian_wallet',
  csrfCookie: 'tian_csrf',
  select: `select s.id_hash, s.user_id, s.csrf_token, u.email, u.privy_id
     from wallet_sessions s join users u on u.id = s.user_id
     where s.id_hash = $1 and s.expires_at > $2 and u.disabled_at is null`,
  principal: (row) => ({
    userId: Number(row.user_id),
    userLabel: (row.email ?? row.privy_id ?? null) as string | null,
  }),
  fromOwner: (user) => ({ userId: user.id, userLabel: user.label }),
};

/** Wallet browser sessions (sign-in, consent, settings). */
export class WalletSessions extends BrowserSessions<WalletPrincipal, { id: number; label: string }> {
  constructor(db: Database, clock: Clock, config: Config) {
    super(db, clock, config, WALLET_SESSIONS);
  }
}

const PURGE_BATCH = 5000;

/**
 * Deletes expired sessions of every kind, and the anonymous rows older versions stored for every
 * visitor to the wallet's sign-in page. In batches, so a large backlog never holds one long lock.
 * Returns how many went.
 */
export async function purgeExpiredSessions(sql: Sql, now: Date): Promise<number> {
  let total = 0;
  for (const { table, owner } of Object.values(SESSION_TABLES)) {
    for (;;) {
      const gone = await sql.query(
        `delete from ${table} where id_hash in (
           select id_hash from ${table} where expires_at <= $1 or ${owner} is null limit ${PURGE_BATCH})
         returning 1`,
        [now],
      );
      total += gone.length;
      if (gone.length < PURGE_BATCH) break;
    }
  }
  return total;
}

/**
 * A key for signing or sealing what browsers carry (anonymous CSRF cookies, the dashboard's
 * shown-once notices): derived from SESSION_SECRET when set (the same on every instance), else
 * random for this process. One per Config and purpose, so every BrowserSessions built from the same
 * configuration (the wallet pages and the authorize endpoint) agrees on it.
 */
const keys = new WeakMap<Config, Map<string, Buffer>>();
export function sessionKey(config: Config, purpose: string): Buffer {
  let byPurpose = keys.get(config);
  if (!byPurpose) keys.set(config, (byPurpose = new Map()));
  let key = byPurpose.get(purpose);
  if (!key) {
    key = config.sessionSecret
      ? createHmac('sha256', config.sessionSecret).update(purpose).digest()
      : randomBytes(32);
    byPurpose.set(purpose, key);
  }
  return key;
}

const csrfKey = (config: Config, cookie: string) =>
  sessionKey(config, `askTIAN anonymous CSRF v1: ${cookie}`);

export function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
