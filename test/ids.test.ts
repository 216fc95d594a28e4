import { describe, expect, it } from 'vitest';
import { newId } from '../src/lib/ids.js';

describe('newId', () => {
  it('gives prefixed, Crockford base32 ids that never repeat, across refills of its random pool', () => {
    const at = Date.UTC(2026, 10, 24);
    // 4 KiB of random bytes serve 256 ids: 10,000 ids cross dozens of refills.
    const ids = Array.from({ length: 10_000 }, () => newId('txn', at));
    for (const id of ids) expect(id).toMatch(/^txn_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(new Set(ids).size).toBe(ids.length);
    // Same millisecond: the 10 time characters agree, the 16 random ones differ.
    expect(new Set(ids.map((id) => id.slice(4, 14))).size).toBe(1);
    expect(new Set(ids.map((id) => id.slice(14))).size).toBe(ids.length);
  });

  it('sorts by creation time', () => {
    const times = [Date.UTC(2020, 0, 1), Date.UTC(2026, 10, 24), Date.UTC(2026, 10, 24) + 1];
    const ids = times.map((t) => newId('evt', t));
    expect([...ids].sort()).toEqual(ids);
  });
});
