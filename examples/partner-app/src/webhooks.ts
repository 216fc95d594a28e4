import type { EventType, TokenRevokedEvent } from '@tian/points-sdk';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import type { TokenStore } from './token-store.js';

export type WebhookOutcome = { status: 204 } | { status: 400; reason: string };

/**
 * The receiver for TIAN's webhooks: verifies the Standard Webhooks signature (HMAC-SHA256 over id,
 * timestamp and the raw body, with a 5-minute timestamp tolerance) before trusting anything in the
 * body, and acts on the events this app cares about. Deliveries are retried until answered 2xx and may
 * arrive more than once: handling is idempotent.
 */
export class WebhookReceiver {
  private readonly webhook: Webhook;

  constructor(
    secret: string,
    private readonly store: TokenStore,
    private readonly log: (line: string) => void,
  ) {
    this.webhook = new Webhook(secret);
  }

  handle(rawBody: string, headers: Record<string, string>): WebhookOutcome {
    let event: { event: EventType };
    try {
      event = this.webhook.verify(rawBody, headers) as { event: EventType };
    } catch (err) {
      if (err instanceof WebhookVerificationError) return { status: 400, reason: err.message };
      throw err;
    }
    if (event.event === 'token.revoked') this.tokenRevoked(event as TokenRevokedEvent);
    return { status: 204 };
  }

  /** The user (or we) revoked access: the tokens are dead at TIAN, so forget them here too. */
  private tokenRevoked(event: TokenRevokedEvent): void {
    const cleared = this.store.delete(event.userId);
    this.log(
      `token.revoked for TIAN user ${event.userId} (by ${event.revokedBy}): ${cleared ? 'tokens cleared' : 'no tokens held'}`,
    );
  }
}
