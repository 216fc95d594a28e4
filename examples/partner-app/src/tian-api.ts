import { type DeductResponse, deductPoints, getBalance, getTokenInfo, type Problem } from '@tian/points-sdk';
import { type Client, createClient } from '@tian/points-sdk/client';
import { GrantEnded, type GrantedTokens, type TianOAuth } from './tian-oauth.js';
import type { StoredTokens, TokenStore } from './token-store.js';

/** The user has no live connection to TIAN (never connected, disconnected, or revoked). */
export class NotConnected extends Error {}

export type DeductOutcome =
  | { ok: true; result: DeductResponse }
  | { ok: false; status: number; problem: Problem | undefined };

/**
 * The TIAN Points API for one signed-in user, through @tian/points-sdk. Every call runs with a live
 * access token: it is refreshed shortly before it expires, and once more when the API answers 401
 * anyway (a clock skew, or the server expired it early), then the call is sent again.
 */
export class TianApi {
  /** One refresh at a time per user: refresh tokens are single-use, and a replay ends the grant. */
  private readonly refreshing = new Map<number, Promise<StoredTokens>>();

  constructor(
    private readonly opts: {
      baseUrl: string;
      oauth: TianOAuth;
      store: TokenStore;
      refreshBeforeExpiryMs: number;
      now: () => Date;
      log: (line: string) => void;
    },
  ) {}

  /** Stores a fresh grant under the askTIAN user it belongs to (asked of token info). */
  async connect(granted: GrantedTokens): Promise<StoredTokens> {
    const info = await getTokenInfo({ client: this.client(granted.accessToken) });
    if (!info.data?.active) throw new Error(`token info answered ${info.response.status}`);
    const tokens = this.toStored(info.data.userId, granted);
    this.opts.store.put(tokens);
    return tokens;
  }

  isConnected(userId: number): boolean {
    return this.opts.store.get(userId) !== undefined;
  }

  async balance(userId: number): Promise<number> {
    const { data, response } = await this.call(userId, (client) => getBalance({ client }));
    if (!data) throw new Error(`balance answered ${response.status}`);
    return data.balance;
  }

  /**
   * Deducts `amount` points. The idempotency key makes the call safe to send again: after a 401 and a
   * refresh, and when the user submits the same form twice, TIAN deducts once and replays the answer.
   */
  async deduct(userId: number, amount: number, idempotencyKey: string): Promise<DeductOutcome> {
    const { data, error, response } = await this.call(userId, (client) =>
      deductPoints({
        client,
        body: { amount, description: 'Example partner app purchase' },
        headers: { 'Idempotency-Key': idempotencyKey },
      }),
    );
    if (data) return { ok: true, result: data };
    return { ok: false, status: response.status, problem: error };
  }

  private async call<R extends { response: Response }>(
    userId: number,
    send: (client: Client) => Promise<R>,
  ): Promise<R> {
    let tokens = this.opts.store.get(userId);
    if (!tokens) throw new NotConnected();
    const refreshAt = Date.parse(tokens.expiresAt) - this.opts.refreshBeforeExpiryMs;
    if (this.opts.now().getTime() >= refreshAt) tokens = await this.refresh(tokens, 'before it expires');
    const first = await send(this.client(tokens.accessToken));
    if (first.response.status !== 401) return first;
    tokens = await this.refresh(tokens, 'after a 401');
    return send(this.client(tokens.accessToken));
  }

  private refresh(stale: StoredTokens, why: string): Promise<StoredTokens> {
    const running = this.refreshing.get(stale.userId);
    if (running) return running;
    // Another request may have refreshed since `stale` was read: use its tokens, not the spent ones.
    const current = this.opts.store.get(stale.userId);
    if (!current) return Promise.reject(new NotConnected());
    if (current.accessToken !== stale.accessToken) return Promise.resolve(current);
    const refreshed = (async () => {
      try {
        const tokens = this.toStored(stale.userId, await this.opts.oauth.refresh(current.refreshToken));
        this.opts.store.put(tokens);
        this.opts.log(`refreshed the access token of TIAN user ${stale.userId} ${why}`);
        return tokens;
      } catch (err) {
        if (!(err instanceof GrantEnded)) throw err;
        this.opts.store.delete(stale.userId);
        this.opts.log(`TIAN user ${stale.userId}'s grant has ended (${err.message}); tokens cleared`);
        throw new NotConnected();
      } finally {
        this.refreshing.delete(stale.userId);
      }
    })();
    this.refreshing.set(stale.userId, refreshed);
    return refreshed;
  }

  private client(accessToken: string): Client {
    return createClient({ baseUrl: this.opts.baseUrl, headers: { Authorization: `Bearer ${accessToken}` } });
  }

  private toStored(userId: number, granted: GrantedTokens): StoredTokens {
    return {
      userId,
      accessToken: granted.accessToken,
      refreshToken: granted.refreshToken,
      scope: granted.scope,
      expiresAt: granted.expiresAt.toISOString(),
    };
  }
}
