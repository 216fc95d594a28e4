import type { TestServer } from '../test/support/harness.js';
import { WebhookReceiver } from '../test/support/webhook-receiver.js';
import { until } from './report.js';

/**
 * The load partner's webhook receiver, and the check that every event of an acknowledged change
 * reached it: by `webhook-id` (each at least once), with a signature the `standardwebhooks` package
 * accepts, and a body naming the transaction.
 */
export class Deliveries {
  /** webhook-id -> the transaction its (verified) body names. */
  private readonly verified = new Map<string, string>();
  private seen = 0;
  readonly badSignatures: string[] = [];

  constructor(
    readonly receiver: WebhookReceiver,
    private readonly secret: string,
  ) {}

  /** Verifies what arrived since the last call. */
  private absorb(): void {
    const all = this.receiver.received;
    for (; this.seen < all.length; this.seen++) {
      const req = all[this.seen];
      if (!req) continue;
      const id = req.headers['webhook-id'] ?? '(none)';
      try {
        const payload = WebhookReceiver.verify(req, this.secret, new Date()) as { transactionId?: string };
        this.verified.set(id, String(payload.transactionId));
      } catch (err) {
        this.badSignatures.push(`${id}: ${(err as Error).message}`);
      }
    }
  }

  /**
   * Waits until the event of every transaction in `transactionIds` was delivered (up to
   * `timeoutMs`), nudging the worker's tick meanwhile (the every-minute scan that finds retries and
   * claims a killed process left behind). Returns the problems (empty: all delivered).
   */
  async expectDelivered(
    t: TestServer,
    transactionIds: string[],
    timeoutMs: number,
    nudge: () => Promise<void>,
  ): Promise<{ problems: string[]; events: number; requests: number }> {
    const events = new Map(
      (
        await t.db.query<{ public_id: string; txn: string }>(
          `select public_id, payload->>'transactionId' as txn from webhook_events where type = 'points.deducted'`,
        )
      ).map((r) => [r.txn, r.public_id]),
    );
    const problems: string[] = [];
    const wanted = new Map<string, string>();
    for (const txn of transactionIds) {
      const id = events.get(txn);
      if (id) wanted.set(id, txn);
      else problems.push(`no points.deducted event for acknowledged ${txn}`);
    }
    let lastNudge = 0;
    const missing = () => [...wanted.keys()].filter((id) => !this.verified.has(id));
    await until(
      async () => {
        this.absorb();
        if (missing().length === 0) return true;
        if (Date.now() - lastNudge > 2_000) {
          lastNudge = Date.now();
          await nudge();
        }
        return false;
      },
      timeoutMs,
      200,
    );
    const left = missing();
    if (left.length > 0)
      problems.push(
        `${left.length} of ${wanted.size} events not delivered in ${timeoutMs / 1000} s, e.g. ${left.slice(0, 3).join(', ')}`,
      );
    for (const [id, txn] of wanted)
      if (this.verified.has(id) && this.verified.get(id) !== txn)
        problems.push(`${id} carried ${this.verified.get(id)}, expected ${txn}`);
    problems.push(...this.badSignatures.map((b) => `signature refused: ${b}`));
    return { problems, events: wanted.size, requests: this.receiver.received.length };
  }
}
