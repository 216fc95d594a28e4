import type { Request } from 'express';
import type { Sql } from '../db/database.js';
import type { Partner } from '../db/entities.js';
import { InvalidClient, InvalidRequest } from '../errors/index.js';
import { hashSecret, safeEqual } from '../lib/crypto.js';
import { findPartnerByClientId } from '../partners/partners.js';

export type ClientCredentials = { clientId: string; clientSecret: string; method: 'basic' | 'post' };
export type BodyCredentials = { client_id?: string | undefined; client_secret?: string | undefined };

/**
 * The client credentials of a token or revocation request: HTTP Basic (client_secret_basic) or the
 * body (client_secret_post). Undefined when the request sends none.
 */
export function readClientCredentials(req: Request, body: BodyCredentials): ClientCredentials | undefined {
  const basic = /^Basic +([A-Za-z0-9+/=]+)$/i.exec(req.get('authorization') ?? '');
  if (basic?.[1]) {
    // RFC 6749 §2.3: a client MUST NOT use more than one authentication method in a request.
    if (body.client_secret !== undefined) {
      throw new InvalidRequest('Authenticate with HTTP Basic or client_secret in the body, not both.');
    }
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new InvalidClient('The Basic credentials are not "client_id:client_secret".', true);
    const clientId = formDecode(decoded.slice(0, colon));
    const clientSecret = formDecode(decoded.slice(colon + 1));
    if (body.client_id !== undefined && body.client_id !== clientId) {
      throw new InvalidRequest('client_id in the body differs from the one in the Authorization header.');
    }
    return { clientId, clientSecret, method: 'basic' };
  }
  if (body.client_id === undefined && body.client_secret === undefined) return undefined;
  if (!body.client_id || !body.client_secret) {
    throw new InvalidClient('Send both client_id and client_secret (or use HTTP Basic).');
  }
  return { clientId: body.client_id, clientSecret: body.client_secret, method: 'post' };
}

/** RFC 6749 §2.3.1: Basic credentials are form-urlencoded before base64. */
function formDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw new InvalidClient('The Basic credentials are not form-urlencoded.', true);
  }
}

// A hash no secret has, compared against when the client id is unknown, so timing does not tell.
const NO_SECRET_HASH = hashSecret('no client has this secret');

/** The partner these credentials authenticate; secrets are compared by hash in constant time. */
export async function authenticateClient(sql: Sql, creds: ClientCredentials): Promise<Partner> {
  const partner = await findPartnerByClientId(sql, creds.clientId);
  const matches = safeEqual(hashSecret(creds.clientSecret), partner?.clientSecretHash ?? NO_SECRET_HASH);
  if (!partner || !matches)
    throw new InvalidClient('Client authentication failed.', creds.method === 'basic');
  return partner;
}
