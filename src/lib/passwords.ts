import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';

const ARGON2ID = 2;

/** An argon2id hash of a password someone chose (wallet users, partner dashboard accounts). */
export function hashPassword(password: string): Promise<string> {
  return argon2Hash(password, { algorithm: ARGON2ID });
}

/**
 * Whether `password` matches `hash`. With no hash (unknown account) the same work is done against a
 * dummy hash, so the time taken does not tell whether the account exists.
 */
export async function checkPassword(hash: string | null | undefined, password: string): Promise<boolean> {
  const ok = await argon2Verify(hash ?? DUMMY_HASH, password).catch(() => false);
  return Boolean(hash) && ok;
}

const DUMMY_HASH =
  '$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$PBMXCRwbnu0gRN0FAJHnSUb+ZNe24+jC6Cv0iYKS+Ek';
