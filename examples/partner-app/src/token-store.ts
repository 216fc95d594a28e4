import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';

/** One TIAN user's tokens, as this app keeps them. */
export type StoredTokens = {
  /** The askTIAN user id (from token info): what `token.revoked` names. */
  userId: number;
  accessToken: string;
  refreshToken: string;
  scope: string;
  /** When the access token expires, by this app's clock (ISO 8601). */
  expiresAt: string;
};

/** Where tokens live. They are credentials: keep them server-side only, never in a cookie or a page. */
export interface TokenStore {
  get(userId: number): StoredTokens | undefined;
  put(tokens: StoredTokens): void;
  /** Forgets the user's tokens; true when there were some. */
  delete(userId: number): boolean;
}

export class MemoryTokenStore implements TokenStore {
  protected readonly byUser = new Map<number, StoredTokens>();

  get(userId: number): StoredTokens | undefined {
    return this.byUser.get(userId);
  }

  put(tokens: StoredTokens): void {
    this.byUser.set(tokens.userId, tokens);
  }

  delete(userId: number): boolean {
    return this.byUser.delete(userId);
  }
}

/**
 * Tokens in a JSON file ({"<userId>": StoredTokens}), so they survive a restart. Each change rewrites
 * the file through a temporary file and a rename (a crash leaves the old or the new file, never half
 * of one), readable by this user only.
 */
export class JsonFileTokenStore extends MemoryTokenStore {
  constructor(private readonly path: string) {
    super();
    if (!existsSync(path)) return;
    const saved = JSON.parse(readFileSync(path, 'utf8')) as Record<string, StoredTokens>;
    for (const tokens of Object.values(saved)) this.byUser.set(tokens.userId, tokens);
  }

  override put(tokens: StoredTokens): void {
    super.put(tokens);
    this.save();
  }

  override delete(userId: number): boolean {
    const deleted = super.delete(userId);
    if (deleted) this.save();
    return deleted;
  }

  private save(): void {
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(Object.fromEntries(this.byUser), null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.path);
  }
}
