import type { Sql } from '../db/database.js';
import { checkPassword, hashPassword } from '../lib/passwords.js';
import { credit } from '../points/ledger.js';

export class UserInputError extends Error {}

export type NewUser = { email?: string; password?: string; privyId?: string; points?: number };
export type UserRow = { id: number; email: string | null; privyId: string | null; balance: number };

/** Creates a wallet user; a positive `points` is credited through the ledger like any credit. */
export async function createUser(sql: Sql, input: NewUser): Promise<UserRow> {
  if (!input.email && !input.privyId) throw new UserInputError('A user needs an email or a Privy id.');
  if (input.email && !/^[^@\s]+@[^@\s]+$/.test(input.email))
    throw new UserInputError('Not an email address.');
  if (input.email && (!input.password || input.password.length < 8)) {
    throw new UserInputError('A local account needs a password of at least 8 characters.');
  }
  const points = input.points ?? 0;
  if (!Number.isSafeInteger(points) || points < 0)
    throw new UserInputError('points must be a whole number >= 0.');
  const passwordHash = input.password ? await hashPassword(input.password) : null;
  const [row] = await sql.query<{ id: string }>(
    'insert into users (email, password_hash, privy_id) values ($1, $2, $3) returning id',
    [input.email?.toLowerCase() ?? null, passwordHash, input.privyId ?? null],
  );
  if (!row) throw new Error('insert returned no row');
  const user: UserRow = {
    id: Number(row.id),
    email: input.email ?? null,
    privyId: input.privyId ?? null,
    balance: 0,
  };
  if (points > 0) user.balance = await creditPoints(sql, user.id, points, 'Initial balance');
  return user;
}

/** Adds points to a user's wallet (admin credit); returns the new balance. */
export async function creditPoints(
  sql: Sql,
  userId: number,
  points: number,
  description: string,
  now: Date = new Date(),
): Promise<number> {
  if (!Number.isSafeInteger(points) || points < 1)
    throw new UserInputError('points must be a whole number >= 1.');
  const posted = await credit(sql, { userId, amount: points, description, now });
  if (!posted) throw new UserInputError(`No user ${userId}.`);
  return posted.balanceAfter;
}

export async function findUserByPrivyId(sql: Sql, privyId: string): Promise<UserRow | undefined> {
  const [row] = await sql.query<{ id: string; email: string | null; privy_id: string; balance: number }>(
    'select id, email, privy_id, balance from users where privy_id = $1 and disabled_at is null',
    [privyId],
  );
  return row && { id: Number(row.id), email: row.email, privyId: row.privy_id, balance: row.balance };
}

/** Checks an email + password; the same work is done for unknown emails so timing does not tell. */
export async function verifyPassword(
  sql: Sql,
  email: string,
  password: string,
): Promise<UserRow | undefined> {
  const [row] = await sql.query<{
    id: string;
    email: string;
    privy_id: string | null;
    balance: number;
    password_hash: string | null;
  }>(
    'select id, email, privy_id, balance, password_hash from users where email = $1 and disabled_at is null',
    [email.toLowerCase()],
  );
  if (!(await checkPassword(row?.password_hash, password)) || !row) return undefined;
  return { id: Number(row.id), email: row.email, privyId: row.privy_id, balance: row.balance };
}
