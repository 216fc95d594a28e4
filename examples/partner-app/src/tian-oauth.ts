import * as oauth from 'oauth4webapi';

/** A sign-in this app started: kept server-side in the visitor's session until the callback. */
export type PendingAuthorization = { state: string; codeVerifier: string };

/** What the token endpoint granted, with the expiry turned into a time by this app's clock. */
export type GrantedTokens = {
  accessToken: string;
  refreshToken: string;
  scope: string;
  expiresAt: Date;
};

/** The token endpoint refused a refresh token (revoked, expired or replayed): the user must sign in again. */
export class GrantEnded extends Error {}

/**
 * The TIAN authorization server, spoken to with oauth4webapi (a certified, stock OAuth client): RFC 8414
 * discovery, the code flow with PKCE S256 and state, client_secret_basic at the token endpoint, refresh.
 */
export class TianOAuth {
  private metadata: Promise<oauth.AuthorizationServer> | undefined;
  private readonly client: oauth.Client;
  private readonly clientAuth: oauth.ClientAuth;
  /** Plain http is allowed only for a TIAN server on this machine (development and tests). */
  private readonly options: { [oauth.allowInsecureRequests]?: boolean };

  constructor(
    private readonly issuer: URL,
    clientId: string,
    clientSecret: string,
    private readonly now: () => Date,
  ) {
    this.client = { client_id: clientId };
    this.clientAuth = oauth.ClientSecretBasic(clientSecret);
    const loopback = ['127.0.0.1', '[::1]', 'localhost'].includes(issuer.hostname);
    this.options = issuer.protocol === 'http:' && loopback ? { [oauth.allowInsecureRequests]: true } : {};
  }

  /** The authorize URL to send the browser to, and what the callback must be checked against. */
  async startAuthorization(
    redirectUri: string,
    scope: string,
  ): Promise<{ url: URL; pending: PendingAuthorization }> {
    const as = await this.server();
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const state = oauth.generateRandomState();
    const url = new URL(as.authorization_endpoint ?? '');
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: this.client.client_id,
      redirect_uri: redirectUri,
      scope,
      state,
      code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
    }).toString();
    return { url, pending: { state, codeVerifier } };
  }

  /**
   * Checks the callback (state, and the RFC 9207 `iss`), then exchanges the code with the PKCE verifier.
   * A refusal by the user surfaces as oauth4webapi's AuthorizationResponseError (`access_denied`).
   */
  async finishAuthorization(
    callbackUrl: URL,
    pending: PendingAuthorization,
    redirectUri: string,
  ): Promise<GrantedTokens> {
    const as = await this.server();
    const params = oauth.validateAuthResponse(as, this.client, callbackUrl, pending.state);
    const response = await oauth.authorizationCodeGrantRequest(
      as,
      this.client,
      this.clientAuth,
      params,
      redirectUri,
      pending.codeVerifier,
      this.options,
    );
    return this.granted(await oauth.processAuthorizationCodeResponse(as, this.client, response));
  }

  /** A new token pair for a refresh token (which is single-use: the old pair is dead afterwards). */
  async refresh(refreshToken: string): Promise<GrantedTokens> {
    const as = await this.server();
    const response = await oauth.refreshTokenGrantRequest(
      as,
      this.client,
      this.clientAuth,
      refreshToken,
      this.options,
    );
    try {
      return this.granted(await oauth.processRefreshTokenResponse(as, this.client, response));
    } catch (err) {
      if (err instanceof oauth.ResponseBodyError && err.error === 'invalid_grant') {
        throw new GrantEnded(err.error_description ?? 'the refresh token is no longer valid');
      }
      throw err;
    }
  }

  private granted(body: oauth.TokenEndpointResponse): GrantedTokens {
    if (!body.refresh_token || body.expires_in === undefined) {
      throw new Error('the token endpoint sent no refresh token or expiry');
    }
    return {
      accessToken: body.access_token,
      refreshToken: body.refresh_token,
      scope: body.scope ?? '',
      expiresAt: new Date(this.now().getTime() + body.expires_in * 1000),
    };
  }

  /** The server's RFC 8414 metadata, fetched once (again after a failure, e.g. TIAN was not up yet). */
  private server(): Promise<oauth.AuthorizationServer> {
    if (!this.metadata) {
      const metadata = (async () => {
        const response = await oauth.discoveryRequest(this.issuer, { algorithm: 'oauth2', ...this.options });
        return oauth.processDiscoveryResponse(this.issuer, response);
      })();
      metadata.catch(() => {
        this.metadata = undefined;
      });
      this.metadata = metadata;
    }
    return this.metadata;
  }
}
