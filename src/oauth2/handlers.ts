import { bearerToken } from '../http/auth.js';
import { invalidClient, unauthorized } from '../http/errors.js';
import type { Handler } from '../http/operations.js';
import type { Services } from '../http/services.js';
import { showAuthorize } from '../web/authorize-flow.js';
import { WalletSessions } from '../web/sessions.js';
import { readClientCredentials } from './client-auth.js';
import { authorizationServerMetadata } from './metadata.js';

/** RFC 6749 §5.1: token responses are never cached. */
const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

export const oauthHandlers = (s: Services) => {
  const sessions = new WalletSessions(s.db, s.clock, s.config);

  const authorize: Handler<'authorize'> = async ({ req, res }) => {
    await showAuthorize({ config: s.config, oauth: s.oauth, sessions }, req, res);
    return { status: 'handled' };
  };

  const createToken: Handler<'createToken'> = async ({ req, body }) => {
    const creds = readClientCredentials(req, body);
    if (!creds) throw invalidClient('Client authentication is required (HTTP Basic or client_secret_post).');
    const client = await s.oauth.authenticateClient(creds);
    const tokens = await s.oauth.token(client, body);
    return { status: 200, body: tokens, headers: NO_STORE };
  };

  const revokeToken: Handler<'revokeToken'> = async ({ req, body }) => {
    const creds = readClientCredentials(req, body);
    const client = creds ? await s.oauth.authenticateClient(creds) : undefined;
    await s.oauth.revoke(body.token, client);
    return { status: 200, body: { success: true }, headers: NO_STORE };
  };

  const getTokenInfo: Handler<'getTokenInfo'> = async ({ req }) => {
    const token = bearerToken(req);
    if (!token)
      throw unauthorized('missing_token', 'Send the access token as "Authorization: Bearer tcat_...".');
    const info = await s.oauth.tokenInfo(token);
    if (!info) throw unauthorized('invalid_token', 'The access token is not one askTIAN issued.');
    return { status: 200, body: info, headers: NO_STORE };
  };

  const getAuthorizationServerMetadata: Handler<'getAuthorizationServerMetadata'> = async () => ({
    status: 200,
    body: authorizationServerMetadata(s.config.publicUrl ?? ''),
  });

  return { authorize, createToken, revokeToken, getTokenInfo, getAuthorizationServerMetadata };
};
