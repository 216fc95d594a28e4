import { Webhook } from 'standardwebhooks';

/**
 * Standard Webhooks headers for one attempt: `webhook-id` (the event id, the same on every retry and
 * resend), `webhook-timestamp` (this attempt, Unix seconds) and `webhook-signature`, one
 * `v1,<base64 HMAC-SHA256("id.timestamp.body")>` per active secret, space-separated (the newest
 * first), so a receiver that has either secret accepts it during a rotation.
 */
export function signedHeaders(
  eventId: string,
  at: Date,
  body: string,
  secrets: readonly string[],
): Record<string, string> {
  if (secrets.length === 0) throw new Error('no secret to sign with');
  return {
    'webhook-id': eventId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((s) => new Webhook(s).sign(eventId, at, body)).join(' '),
  };
}
