import type { Sql } from '../db/database.js';
import { newSecret } from '../lib/crypto.js';
import { checkPassword, hashPassword } from '../lib/passwords.js';
import { PartnerInputError } from './partners.js';

/** Someone who signs in to the partner dashboard for one partner. */
export type PartnerAccount = { id: number; partnerId: number; email: string; partnerName: string };

export const MIN_PASSWORD_LENGTH = 12;

/**
 * Creates a dashboard account for a partner (admin CLI). Without a password one is generated; the
 * caller shows it once, since only its argon2id hash is stored.
 */
export async function createPartnerAccount(
  sql: Sql,
  input: { partnerId: number; email: string; password?: string | undefined },
): Promise<{ account: PartnerAccount; password: string }> {
  const email = input.email.trim().toLowerCase();
  if (!/^[^@\s]+@[^@\s]+$/.test(email) || email.length > 254) {
    throw new PartnerInputError(`Not an email address: ${input.email}`);
  }
  const password = input.password ?? newSecret('', 18);
  if (password.length < MIN_PASSWORD_LENGTH) {
    throw new PartnerInputError(`A dashboard password needs at least ${MIN_PASSWORD_LENGTH} characters.`);
  }
  if (!Number.isInteger(input.partnerId) || input.partnerId < 1 || input.partnerId > 2_147_483_647) {
    throw new PartnerInputError(`No partner ${input.partnerId}.`);
  }
  const [partner] = await sql.query<{ name: string }>('select name from partners where id = $1', [
    input.partnerId,
  ]);
  if (!partner) throw new PartnerInputError(`No partner ${input.partnerId}.`);
  const [row] = await sql.query<{ id: string }>(
    `insert into partner_accounts (partner_id, email, password_hash) values ($1, $2, $3)
     on conflict ((lower(email))) do nothing returning id`,
    [input.partnerId, email, await hashPassword(password)],
  );
  if (!row) throw new PartnerInputError(`There is already a dashboard account for ${email}.`);
  return {
    account: { id: Number(row.id), partnerId: input.partnerId, email, partnerName: partner.name },
    password,
  };
}

/** The account these credentials open, or undefined (unknown email or wrong password alike). */
export async function verifyPartnerAccount(
  sql: Sql,
  email: string,
  password: string,
): Promise<PartnerAccount | undefined> {
  const [row] = await sql.query<{
    id: string;
    partner_id: number;
    email: string;
    password_hash: string;
    name: string;
  }>(
    `select a.id, a.partner_id, a.email, a.password_hash, p.name from partner_accounts a
     join partners p on p.id = a.partner_id
     where lower(a.email) = lower($1) and a.disabled_at is null`,
    [email.trim()],
  );
  if (!(await checkPassword(row?.password_hash, password)) || !row) return undefined;
  return { id: Number(row.id), partnerId: row.partner_id, email: row.email, partnerName: row.name };
}
