import type { Database } from '../db/database.js';
import type { Handler } from '../http/operations.js';
import type { Clock } from '../lib/clock.js';
import { presentPartner, rotateClientSecret as rotate } from './partners.js';

export const partnerHandlers = (db: Database, clock: Clock) => {
  const getPartner: Handler<'getPartner'> = async ({ auth }) => {
    if (auth.kind !== 'partner') throw new Error('partner operation without a partner');
    return { status: 200, body: presentPartner(auth.partner) };
  };

  const rotateClientSecret: Handler<'rotateClientSecret'> = async ({ auth }) => {
    if (auth.kind !== 'partner') throw new Error('partner operation without a partner');
    const now = clock.now();
    const { partner, clientSecret } = await db.transaction((tx) => rotate(tx, auth.partner.id, now));
    return {
      status: 200,
      body: { clientId: partner.clientId, clientSecret, rotatedAt: now.toISOString() },
    };
  };

  return { getPartner, rotateClientSecret };
};
