import type { components } from '../../generated/types.js';
import type { Database } from '../db/database.js';
import type { Partner } from '../db/entities.js';
import { OAuthError, UnsupportedGrantType } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { Metrics } from '../observability/metrics.js';
import { authorizationCodeGrant } from './authorization-code-grant.js';
import {
  type AuthorizationRequest,
  type AuthorizeParams,
  checkAuthorizationRequest,
} from './authorize-request.js';
import { type BearerGrant, verifyBearer } from './bearer.js';
import { authenticateClient, type ClientCredentials } from './client-auth.js';
import { issueCode } from './codes.js';
import { type ConnectedApp, disconnectApp, listConnectedApps } from './connected-apps.js';
import { type Introspection, introspect } from './introspection.js';
import { refreshTokenGrant } from './refresh-token-grant.js';
import { revokeToken } from './revoke.js';
import { type TokenInfo, tokenInfo } from './token-info.js';
import type { TokenResponse } from './tokens.js';

type TokenRequest = components['schemas']['TokenRequest'];

/** What the OAuth module provides to authenticate `Authorization: Bearer tcat_...` on the API. */
export interface BearerVerifier {
  verifyAccessToken(token: string): Promise<BearerGrant | undefined>;
}

/** One module per grant (RFC 6749 §4.1.3, §6); anything else is unsupported_grant_type. */
const GRANTS = {
  authorization_code: authorizationCodeGrant,
  refresh_token: refreshTokenGrant,
} as const;

/** The authorization server's rules, each in one transaction, on the injected clock. */
export class OAuthService implements BearerVerifier {
  constructor(
    private readonly db: Database,
    private readonly clock: Clock,
    private readonly metrics?: Pick<Metrics, 'refreshReplays'>,
  ) {}

  checkAuthorizationRequest(params: AuthorizeParams): Promise<AuthorizationRequest> {
    return checkAuthorizationRequest(this.db, params);
  }

  issueCode(request: AuthorizationRequest, userId: number): Promise<string> {
    return this.db.transaction((tx) => issueCode(tx, request, userId, this.clock.now()));
  }

  authenticateClient(creds: ClientCredentials): Promise<Partner> {
    return authenticateClient(this.db, creds);
  }

  async token(client: Partner, params: TokenRequest): Promise<TokenResponse> {
    if (!Object.hasOwn(GRANTS, params.grant_type)) {
      throw new UnsupportedGrantType(`grant_type ${params.grant_type} is not supported.`);
    }
    const grant = GRANTS[params.grant_type as keyof typeof GRANTS];
    const outcome = await this.db.transaction((tx) => grant(tx, client, params, this.clock.now()));
    // A grant returns (rather than throws) an error only when its revocation must commit: a replay.
    if (outcome instanceof OAuthError) {
      this.metrics?.refreshReplays.inc();
      throw outcome;
    }
    return outcome;
  }

  async revoke(token: string, client: Partner | undefined): Promise<void> {
    await this.db.transaction((tx) => revokeToken(tx, token, client, this.clock.now()));
  }

  introspect(client: Partner, token: string, issuer: string): Promise<Introspection> {
    return introspect(this.db, client, token, issuer, this.clock.now());
  }

  tokenInfo(accessToken: string): Promise<TokenInfo | undefined> {
    return tokenInfo(this.db, accessToken, this.clock.now());
  }

  /** `Authorization: Bearer tcat_...` on the points API: known, not revoked, not expired, user enabled. */
  verifyAccessToken(token: string): Promise<BearerGrant | undefined> {
    return verifyBearer(this.db, token, this.clock.now());
  }

  connectedApps(userId: number): Promise<ConnectedApp[]> {
    return listConnectedApps(this.db, userId, this.clock.now());
  }

  disconnectApp(userId: number, partnerId: number): Promise<number> {
    return this.db.transaction((tx) => disconnectApp(tx, userId, partnerId, this.clock.now()));
  }
}
