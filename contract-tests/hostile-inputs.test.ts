/**
 * Hostile inputs over every operation in openapi.yaml (the generator and the checks are in
 * test/support/hostile-inputs.ts, shared with the reliability suite): no 5xx, no state change on a
 * 4xx, every 4xx in its documented format. HOSTILE_SEED and HOSTILE_RUNS override the seed and count.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../test/support/harness.js';
import { hostileInputs } from '../test/support/hostile-inputs.js';

const t: TestServer = await startTestServer({
  RATE_LIMIT_PER_MINUTE: '10000000',
  AUTH_RATE_LIMIT_PER_MINUTE: '10000000',
});
afterAll(async () => {
  await t?.stop();
});
const hostile = await hostileInputs(t);

describe('hostile inputs over every operation in openapi.yaml', () => {
  for (const op of hostile.operations) {
    it(`${op.operationId}: ${hostile.runs} generated + hand-picked requests, no 5xx`, {
      timeout: 120_000,
    }, async () => {
      console.log(`[hostile] ${(await hostile.runOperation(op)).line}`);
    });
  }

  it('raw requests fetch would refuse to send get no 5xx', async () => {
    await hostile.runRaw();
  });

  it('the ledger still adds up to every balance', async () => {
    expect(await hostile.ledgerMismatches(), 'users whose ledger does not add up to their balance').toEqual(
      [],
    );
  });

  it('no 5xx and no state change on a 4xx, over all of the above', () => {
    const { failures, seed } = hostile;
    console.log(
      `[hostile] ${hostile.requests()} requests over ${hostile.operations.length} operations, seed ${seed}, ${failures.length} failures`,
    );
    expect(failures, `${failures.length} failures (seed ${seed}):\n${failures.join('\n')}`).toEqual([]);
  });
});
