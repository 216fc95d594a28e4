/**
 * The bench's data, written through the project's own code (partners, users credited through the
 * ledger, token pairs minted exactly as the token endpoint mints them), so both servers read rows
 * the project itself would have written.
 */
import { Database, type Sql } from '../../src/db/database.js';
import { type Partner, PartnerSchema } from '../../src/db/entities.js';
import { mintPair } from '../../src/oauth2/tokens.js';
import { createPartner } from '../../src/partners/partners.js';
import { createUser } from '../../src/users/users.js';
import type { PrivyApp } from '../../test/support/privy.js';
import type { BenchPartner, BenchUser, Seed } from './scenarios.js';

export const USERS = 1000;
/** Enough for every deduct of every run several times over (balances are 32-bit integers). */
const POINTS = 100_000_000;
const SCOPE = 'deduct balance';

export async function seedBench(url: string, privy: PrivyApp, onProgress: (done: number) => void) {
  const db = await Database.open({ url, dataDir: 'memory://', poolMax: 4 });
  try {
    const partner = await newPartner(db, 'Bench partner');
    const webhookPartner = await newPartner(db, 'Bench webhook partner');
    const users: BenchUser[] = [];
    // Batches of 100 users per transaction: quick, and progress shows.
    for (let first = 0; first <= USERS; first += 100) {
      const batch = await db.transaction(async (tx) => {
        const out: BenchUser[] = [];
        const owners = {
          bench: await tx.em.findOneOrFail(PartnerSchema, { id: partner.id }),
          webhook: await tx.em.findOneOrFail(PartnerSchema, { id: webhookPartner.id }),
        };
        for (let i = first; i < Math.min(first + 100, USERS + 1); i++) {
          const privyId = `did:privy:bench${String(i).padStart(5, '0')}`;
          const user = await createUser(tx, { privyId, points: POINTS });
          const pair = (p: Partner) => benchPair(tx, p, user.id);
          out.push({
            id: user.id,
            privyId,
            // Valid for longer than any bench run.
            session: await privy.sign(privyId, { expiresInSec: 4 * 3600 }),
            access: (await pair(owners.bench)).access_token,
            webhookAccess: (await pair(owners.webhook)).access_token,
          });
        }
        return out;
      });
      users.push(...batch);
      onProgress(users.length);
    }
    const hot = users.pop();
    if (!hot) throw new Error('no users seeded');
    return { seed: { partner, webhookPartner, users, hot } satisfies Seed, db };
  } catch (err) {
    await db.close();
    throw err;
  }
}

/** A token pair for (partner, user) with the bench's scope, minted as the token endpoint mints it. */
const benchPair = (tx: Sql, partner: Partner, userId: number) =>
  mintPair(tx, {
    partner,
    userId,
    scope: SCOPE,
    grantedScope: SCOPE,
    codeId: null,
    parentId: null,
    now: new Date(),
  });

async function newPartner(db: Database, name: string): Promise<BenchPartner> {
  const { partner, clientSecret } = await db.transaction((tx) =>
    createPartner(tx, { name, redirectUris: [], allowedScopes: ['deduct', 'balance'] }),
  );
  return { id: partner.id, clientId: partner.clientId, apiKey: clientSecret };
}

/** Fresh token pairs for one refresh run: each is rotated along a chain by the load generator. */
export async function refreshPool(db: Database, seed: Seed, size: number): Promise<string[]> {
  return db.transaction(async (tx) => {
    const partner = await tx.em.findOneOrFail(PartnerSchema, { id: seed.partner.id });
    const tokens: string[] = [];
    for (let i = 0; i < size; i++) {
      const user = seed.users[i % seed.users.length];
      if (!user) break;
      tokens.push((await benchPair(tx, partner, user.id)).refresh_token);
    }
    return tokens;
  });
}
