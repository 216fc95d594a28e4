import { SCOPES, type Scope } from '../partners/partners.js';

/** What each scope lets a partner do, in the words the consent screen uses. */
export const SCOPE_DESCRIPTIONS: Record<Scope, string> = {
  deduct: 'Deduct TIAN Points from your balance (and refund its own deductions)',
  balance: 'See your TIAN Points balance and transactions (read-only)',
  subscriptions: 'Start, view and cancel monthly subscriptions paid with your TIAN Points',
};

export function isScope(s: string): s is Scope {
  return (SCOPES as readonly string[]).includes(s);
}

/** RFC 6749 §3.3: space-delimited, order-insensitive; duplicates collapse. */
export function parseScope(scope: string | undefined): string[] {
  return [...new Set((scope ?? '').split(' ').filter(Boolean))];
}

export function formatScope(scopes: readonly string[]): string {
  return scopes.join(' ');
}

export function isSubset(requested: readonly string[], granted: readonly string[]): boolean {
  return requested.every((s) => granted.includes(s));
}
