import type { Request } from 'express';
import type { Services } from '../container.js';
import { InvalidClient, OAuthError, Unauthorized } from '../errors/index.js';
import { bearerToken, isAuthFailure } from '../http/auth.js';
import type { DirectHandler, Handler } from '../http/operations.js';
import { addressKey, countingFailures } from '../http/rate-limits.js';
import { WalletSessions } from '../web/shared/sessions.js';
import { showAuthorize } from '../web/wallet/authorize-flow.js';
import { type BodyCredentials, readClientCredentials } from './client-auth.js';
import { authorizationServerMetadata } from './metadata.js';

const GRANT_TYPES = new Set(['authorization_code', 'refresh_token']);

/** RFC 6749 §5.1: token responses are never cached. */
const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

export const oauthHandlers = (s: Services) => {
  const sessions = new WalletSessions(s.db, s.clock, s.config);
  const isClientFailure = (err: unknown) => err instanceof OAuthError && err.error === 'invalid_client';

  /**
   * Client authentication of the token and revocation endpoints. Failures count per address and
   * per client_id, so neither one address against many clients nor many addresses against one
   * client can guess secrets at full speed.
   */
  const authenticatedClient = async (req: Request, body: BodyCredentials) => {
    const address = addressKey(req.ip);
    // The address is checked exactly below, with the client_id, once the credentials are read.
    const creds = await countingFailures(
      s.limits.failures,
      [address],
      isClientFailure,
      async () => readClientCredentials(req, body),
      { exact: false },
    );
    if (!creds) return undefined;
    // A client_id is public (it is in every authorize URL): its failure budget stops guessing at its
    // secret, but never the client presenting the right one, or anyone could lock a partner out of
    // the token endpoint by failing on purpose. The address budget is checked before.
    const client = await countingFailures(
      s.limits.failures,
      [address, `client:${creds.clientId}`],
      isClientFailure,
      () => s.oauth.authenticateClient(creds),
      { exact: true, refuseFirst: [address] },
    );
    // The request's log line names the partner, as it does for API-key and bearer calls.
    if (req.res) req.res.locals.partnerId = client.id;
    return client;
  };

  const authorize: Handler<'authorize'> = async ({ req, res }) => {
    await showAuthorize({ config: s.config, oauth: s.oauth, sessions }, req, res);
    return { status: 'handled' };
  };

  const createToken: Handler<'createToken'> = async ({ req, body }) => {
    const grants = s.metrics.tokenGrants;
    // A grant_type is counted under its own name only when it is one we know (bounded labels).
    const grantType = GRANT_TYPES.has(body.grant_type) ? body.grant_type : 'other';
    try {
      const client = await authenticatedClient(req, body);
      if (!client)
        throw new InvalidClient('Client authentication is required (HTTP Basic or client_secret_post).');
      const tokens = await s.oauth.token(client, body);
      grants.inc({ grant_type: grantType, outcome: 'success' });
      return { status: 200, body: tokens, headers: NO_STORE };
    } catch (err) {
      grants.inc({ grant_type: grantType, outcome: err instanceof OAuthError ? err.error : 'error' });
      throw err;
    }
  };

  const revokeToken: Handler<'revokeToken'> = async ({ req, body }) => {
    const client = await authenticatedClient(req, body);
    await s.oauth.revoke(body.token, client);
    return { status: 200, body: { success: true }, headers: NO_STORE };
  };

  const introspectToken: Handler<'introspectToken'> = async ({ req, body }) => {
    const client = await authenticatedClient(req, body);
    if (!client)
      throw new InvalidClient('Client authentication is required (HTTP Basic or client_secret_post).');
    const info = await s.oauth.introspect(client, body.token, s.config.publicUrl ?? '');
    return { status: 200, body: info, headers: NO_STORE };
  };

  const getTokenInfo: DirectHandler<'getTokenInfo'> = async ({ headers, ip }) => {
    const info = await countingFailures(
      s.limits.failures,
      [addressKey(ip)],
      isAuthFailure,
      async () => {
        const token = bearerToken(headers.authorization);
        if (!token)
          throw new Unauthorized(
            'missing_token',
            'Send the access token as "Authorization: Bearer tcat_...".',
          );
        const found = await s.oauth.tokenInfo(token);
        if (!found) throw new Unauthorized('invalid_token', 'The access token is not one askTIAN issued.');
        return found;
      },
      { exact: false },
    );
    return { status: 200, body: info, headers: NO_STORE };
  };

  const getAuthorizationServerMetadata: Handler<'getAuthorizationServerMetadata'> = async () => ({
    status: 200,
    body: authorizationServerMetadata(s.config.publicUrl ?? ''),
  });

  return {
    authorize,
    createToken,
    revokeToken,
    introspectToken,
    getTokenInfo,
    getAuthorizationServerMetadata,
  };
};
