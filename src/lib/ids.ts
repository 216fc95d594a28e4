import { randomFillSync } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'; // Crockford base32

/**
 * A prefixed, time-ordered opaque id (`txn_01JD3Q...`): 48 bits of milliseconds then 80 random bits,
 * ULID-style, so ids sort by creation and say in logs what they name.
 */
export function newId(prefix: 'txn' | 'sub' | 'we' | 'wd' | 'evt', now = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const rnd = randomChunk();
  let rand = '';
  for (let i = rnd; i < rnd + 16; i++) rand += ALPHABET[(randomPool[i] ?? 0) % 32];
  return `${prefix}_${time}${rand}`;
}

/**
 * Random bytes for ids, drawn from the CSPRNG 4 KiB at a time (as crypto.randomUUID does): a deduct
 * makes two ids, and one randomBytes(16) call each cost more than the rest of newId. Each byte is
 * used once; every byte value maps to one of the 32 letters equally (256 = 8 x 32).
 */
const randomPool = Buffer.alloc(4096);
let randomOffset = randomPool.length;
function randomChunk(): number {
  if (randomOffset + 16 > randomPool.length) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  const at = randomOffset;
  randomOffset += 16;
  return at;
}

/** Cursor for keyset pagination over an internal, increasing id. Opaque to partners. */
export function encodeCursor(id: string | number | bigint): string {
  return Buffer.from(String(id), 'utf8').toString('base64url');
}

const MAX_BIGINT = 9_223_372_036_854_775_807n; // PostgreSQL bigint, 2^63 - 1

/** The id a cursor names; undefined for anything encodeCursor could not have made (or past bigint). */
export function decodeCursor(cursor: string): string | undefined {
  const s = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^\d{1,19}$/.test(s) || BigInt(s) > MAX_BIGINT) return undefined;
  return s;
}
