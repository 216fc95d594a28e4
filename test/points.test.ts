import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  deductPoints,
  getBalance,
  getTransaction,
  listTransactions,
  refundTransaction,
} from '../generated/sdk/index.js';
import { startTestServer, type TestServer } from './support/harness.js';

let t: TestServer;
let partner: Awaited<ReturnType<TestServer['partner']>>;

beforeAll(async () => {
  t = await startTestServer();
  partner = await t.partner({ name: 'Acme Reader' });
});
afterAll(() => t?.stop());

async function userWith(points: number) {
  const user = await t.user({ points });
  return { user, api: await t.legacyClient(partner.clientSecret, user.privyId) };
}

describe('points API through the generated SDK (legacy flow)', () => {
  it('reads the balance of the user the Privy session belongs to', async () => {
    const { user, api } = await userWith(500);
    const res = await getBalance({ client: api });
    expect(res.response.status).toBe(200);
    expect(res.data).toEqual({ success: true, userId: user.id, balance: 500 });
  });

  it('deducts points and answers exactly the documented fields', async () => {
    const { api } = await userWith(500);
    const res = await deductPoints({ client: api, body: { amount: 10, description: 'Feature usage' } });
    expect(res.response.status).toBe(200);
    expect(res.data).toEqual({
      success: true,
      creditsDeducted: 10,
      newBalance: 490,
      transactionId: expect.stringMatching(/^txn_[0-9A-Z]{26}$/),
      webhookDelivered: false,
    });
    expect((await getBalance({ client: api })).data?.balance).toBe(490);
  });

  it('accepts privyId and sessionToken in the body, as the legacy docs show', async () => {
    const user = await t.user({ points: 50 });
    const api = t.client({ 'X-API-Key': partner.clientSecret });
    const res = await deductPoints({
      client: api,
      body: { amount: 5, privyId: user.privyId, sessionToken: await t.privyToken(user.privyId) },
    });
    expect(res.data?.newBalance).toBe(45);
  });

  it('refuses a deduct larger than the balance with insufficient_points and changes nothing', async () => {
    const { api } = await userWith(5);
    const res = await deductPoints({ client: api, body: { amount: 10 } });
    expect(res.response.status).toBe(402);
    expect(res.response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.error).toMatchObject({ code: 'insufficient_points', balance: 5, status: 402 });
    expect((await getBalance({ client: api })).data?.balance).toBe(5);
  });

  it("lists the partner's transactions newest first with cursor pagination, and gets one", async () => {
    const { api } = await userWith(100);
    const ids: string[] = [];
    for (let i = 1; i <= 5; i++) {
      const r = await deductPoints({ client: api, body: { amount: i, description: `d${i}` } });
      ids.push(r.data?.transactionId ?? '');
    }
    const page1 = await listTransactions({ client: api, query: { limit: 2 } });
    expect(page1.data?.data.map((x) => x.transactionId)).toEqual([ids[4], ids[3]]);
    expect(page1.data?.hasMore).toBe(true);
    const page2 = await listTransactions({
      client: api,
      query: { limit: 2, cursor: page1.data?.nextCursor ?? '' },
    });
    expect(page2.data?.data.map((x) => x.transactionId)).toEqual([ids[2], ids[1]]);
    const page3 = await listTransactions({
      client: api,
      query: { limit: 2, cursor: page2.data?.nextCursor ?? '' },
    });
    expect(page3.data?.data.map((x) => x.transactionId)).toEqual([ids[0]]);
    expect(page3.data).toMatchObject({ hasMore: false, nextCursor: null });

    const one = await getTransaction({ client: api, path: { transactionId: ids[0] ?? '' } });
    expect(one.data).toMatchObject({
      transactionId: ids[0],
      type: 'deduct',
      amount: -1,
      balanceAfter: 99,
      description: 'd1',
    });
  });

  it('refunds part, then the rest, of a deduction and never more than was deducted', async () => {
    const { api } = await userWith(100);
    const d = await deductPoints({ client: api, body: { amount: 30 } });
    const txn = d.data?.transactionId ?? '';
    const part = await refundTransaction({
      client: api,
      path: { transactionId: txn },
      body: { amount: 10, reason: 'partial' },
    });
    expect(part.data).toMatchObject({
      success: true,
      creditsRefunded: 10,
      newBalance: 80,
      refundedTransactionId: txn,
    });
    const over = await refundTransaction({ client: api, path: { transactionId: txn }, body: { amount: 21 } });
    expect(over.response.status).toBe(422);
    expect(over.error).toMatchObject({ code: 'refund_exceeds_deduction', param: 'amount' });
    const rest = await refundTransaction({ client: api, path: { transactionId: txn }, body: {} });
    expect(rest.data).toMatchObject({ creditsRefunded: 20, newBalance: 100 });
    const again = await refundTransaction({ client: api, path: { transactionId: txn }, body: {} });
    expect(again.error).toMatchObject({ code: 'refund_exceeds_deduction' });
    const orig = await getTransaction({ client: api, path: { transactionId: txn } });
    expect(orig.data?.refundedAmount).toBe(30);
    const refund = await getTransaction({
      client: api,
      path: { transactionId: part.data?.transactionId ?? '' },
    });
    expect(refund.data).toMatchObject({ type: 'refund', amount: 10, refundOf: txn, description: 'partial' });
  });

  it("refuses to refund another partner's deduction or a refund", async () => {
    const { user, api } = await userWith(100);
    const d = await deductPoints({ client: api, body: { amount: 10 } });
    const other = await t.partner();
    const otherApi = await t.legacyClient(other.clientSecret, user.privyId);
    const r = await refundTransaction({
      client: otherApi,
      path: { transactionId: d.data?.transactionId ?? '' },
      body: {},
    });
    expect(r.response.status).toBe(404);
    expect(r.error).toMatchObject({ code: 'transaction_not_found' });
    const ref = await refundTransaction({
      client: api,
      path: { transactionId: d.data?.transactionId ?? '' },
      body: { amount: 1 },
    });
    const rr = await refundTransaction({
      client: api,
      path: { transactionId: ref.data?.transactionId ?? '' },
      body: {},
    });
    expect(rr.response.status).toBe(422);
    expect(rr.error).toMatchObject({ code: 'not_refundable' });
  });
});
