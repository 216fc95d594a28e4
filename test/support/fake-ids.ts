/**
 * Well-formed ids that name nothing, keyed by the spec's path parameter names: a lookup with one
 * passes validation and answers 404.
 */
export const FAKE_IDS = {
  transactionId: 'txn_00000000000000000000000000',
  subscriptionId: 'sub_00000000000000000000000000',
  endpointId: 'we_00000000000000000000000000',
  deliveryId: 'wd_00000000000000000000000000',
} as const;
