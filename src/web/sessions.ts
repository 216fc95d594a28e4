import type { Request, Response } from 'express';
import type { Config } from '../config.js';
import type { Database } from '../db/database.js';
import type { Clock } from '../lib/clock.js';
import { hashSecret, newSecret } from '../lib/crypto.js';

export const SESSION_TTL_MS = 8 * 60 * 60 * 1000;

/** A wallet browser session; `userId` is null until the visitor signs in. */
export type WalletSession = {
  idHash: string;
  userId: number | null;
  userLabel: string | null;
  csrfToken: string;
};

/**
 * Server-side sessions: the cookie holds a random id, the table only its hash. The cookie is
 * httpOnly + SameSite=Lax (+ Secure and the __Host- prefix in production).
 */
export class WalletSessions {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly config: Config,
  ) {}

  get cookieName(): string {
    return this.config.production ? '__Host-tian_wallet' : 'tian_wallet';
  }

  /** The live session the request's cookie names, if any. */
  async current(req: Request): Promise<WalletSession | undefined> {
    const id = readCookie(req, this.cookieName);
    if (!id) return undefined;
    const [row] = await this.db.query<{
      id_hash: string;
      user_id: string | null;
      csrf_token: string;
      email: string | null;
      privy_id: string | null;
    }>(
      `select s.id_hash, s.user_id, s.csrf_token, u.email, u.privy_id
       from wallet_sessions s left join users u on u.id = s.user_id
       where s.id_hash = $1 and s.expires_at > $2 and (s.user_id is null or u.disabled_at is null)`,
      [hashSecret(id), this.clock.now()],
    );
    if (!row) return undefined;
    return {
      idHash: row.id_hash,
      userId: row.user_id === null ? null : Number(row.user_id),
      userLabel: row.email ?? row.privy_id,
      csrfToken: row.csrf_token,
    };
  }

  /** The current session, or a new anonymous one (so the sign-in form has a CSRF token to check). */
  async currentOrAnonymous(req: Request, res: Response): Promise<WalletSession> {
    return (await this.current(req)) ?? this.start(res, null, null);
  }

  /** Signing in always issues a new session id (no session fixation) and drops the old one. */
  async signIn(
    res: Response,
    previous: WalletSession | undefined,
    user: { id: number; label: string },
  ): Promise<WalletSession> {
    if (previous) await this.end(res, previous);
    return this.start(res, user.id, user.label);
  }

  async end(res: Response, session: WalletSession): Promise<void> {
    await this.db.query('delete from wallet_sessions where id_hash = $1', [session.idHash]);
    res.clearCookie(this.cookieName, this.cookieOptions());
  }

  private async start(res: Response, userId: number | null, label: string | null): Promise<WalletSession> {
    const id = newSecret('tcws_');
    const csrfToken = newSecret('', 24);
    const now = this.clock.now();
    await this.db.query(
      `insert into wallet_sessions (id_hash, user_id, csrf_token, created_at, expires_at)
       values ($1, $2, $3, $4, $5)`,
      [hashSecret(id), userId, csrfToken, now, new Date(now.getTime() + SESSION_TTL_MS)],
    );
    res.cookie(this.cookieName, id, { ...this.cookieOptions(), maxAge: SESSION_TTL_MS });
    return { idHash: hashSecret(id), userId, userLabel: label, csrfToken };
  }

  private cookieOptions() {
    return { httpOnly: true, sameSite: 'lax' as const, secure: this.config.production, path: '/' };
  }
}

function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
