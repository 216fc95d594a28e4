import type { components } from '../../generated/types.js';
import type { Sql } from '../db/database.js';
import type { Partner } from '../db/entities.js';
import { InvalidGrant, InvalidRequest, type OAuthError } from '../errors/index.js';
import { consumeCode, findCodeForUpdate } from './codes.js';
import { checkCodeVerifier } from './pkce.js';
import { mintPair, revokePairs, type TokenResponse } from './tokens.js';

type TokenRequest = components['schemas']['TokenRequest'];

/**
 * grant_type=authorization_code (RFC 6749 §4.1.3). Guard clauses throw (rolling back); a reused code
 * is returned as an error instead so that revoking what it issued commits first.
 */
export async function authorizationCodeGrant(
  tx: Sql,
  client: Partner,
  params: TokenRequest,
  now: Date,
): Promise<TokenResponse | OAuthError> {
  if (!params.code) throw new InvalidRequest('code is required.');
  if (!params.redirect_uri) throw new InvalidRequest('redirect_uri is required.');
  const code = await findCodeForUpdate(tx, params.code);
  if (!code) throw new InvalidGrant('The authorization code is invalid.');
  // RFC 6749 §4.1.2 / RFC 9700 §4.5: a code used twice revokes the tokens issued for it.
  if (code.consumedAt) {
    await revokePairs(tx, code.userId, { codeId: code.id }, 'partner', now);
    return new InvalidGrant('The authorization code was already used; the tokens issued for it are revoked.');
  }
  if (code.partnerId !== client.id)
    throw new InvalidGrant('The authorization code was issued to another client.');
  if (code.expiresAt <= now) throw new InvalidGrant('The authorization code has expired.');
  if (code.redirectUri !== params.redirect_uri) {
    throw new InvalidGrant('redirect_uri differs from the one in the authorization request.');
  }
  checkCodeVerifier(code.codeChallenge, params.code_verifier);

  await consumeCode(tx, code, now);
  return mintPair(tx, {
    partner: client,
    userId: code.userId,
    scope: code.scope,
    grantedScope: code.scope,
    codeId: code.id,
    parentId: null,
    now,
  });
}
