import { safeEqual } from '../lib/crypto.js';
import type { WalletSession } from './sessions.js';

/** A wallet form was posted without the session's CSRF token: answered with a 403 page. */
export class CsrfError extends Error {}

/** Every wallet form carries the session's token; compare in constant time. */
export function checkCsrf(session: WalletSession | undefined, submitted: unknown): asserts session {
  if (!session || typeof submitted !== 'string' || !safeEqual(submitted, session.csrfToken)) {
    throw new CsrfError('The form has expired or did not come from this site. Go back and try again.');
  }
}
