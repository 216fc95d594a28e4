/** The example's settings, all from environment variables (see README.md). */
export type PartnerAppConfig = {
  /** Where this app listens (PORT, HOST). PORT=0 picks a free port. */
  port: number;
  host: string;
  /** The URL browsers use to reach this app (PUBLIC_URL); default http://HOST:PORT. */
  publicUrl: string | undefined;
  /** The TIAN Points server, e.g. http://127.0.0.1:3000 (TIAN_URL): the OAuth issuer and the API. */
  tianUrl: URL;
  clientId: string;
  clientSecret: string;
  /** The signing secret of this app's webhook endpoint (`whsec_...`), shown when it was created. */
  webhookSecret: string;
  /** The scopes asked for at sign-in (SCOPE). */
  scope: string;
  /** Where tokens are kept (TOKEN_STORE_FILE, a JSON file); unset keeps them in memory. */
  tokenStoreFile: string | undefined;
  /** Refresh an access token this long before it expires (REFRESH_BEFORE_EXPIRY_SECONDS). */
  refreshBeforeExpirySeconds: number;
};

export function loadConfig(env: NodeJS.ProcessEnv): PartnerAppConfig {
  const missing = ['TIAN_URL', 'TIAN_CLIENT_ID', 'TIAN_CLIENT_SECRET', 'TIAN_WEBHOOK_SECRET'].filter(
    (name) => !env[name],
  );
  if (missing.length > 0) throw new Error(`Set ${missing.join(', ')} (see examples/partner-app/README.md).`);
  const port = Number(env.PORT ?? '4000');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error('PORT must be a port number.');
  const refresh = Number(env.REFRESH_BEFORE_EXPIRY_SECONDS ?? '300');
  if (!Number.isInteger(refresh) || refresh < 0) {
    throw new Error('REFRESH_BEFORE_EXPIRY_SECONDS must be a whole number of seconds.');
  }
  return {
    port,
    host: env.HOST ?? '127.0.0.1',
    publicUrl: env.PUBLIC_URL?.replace(/\/$/, ''),
    tianUrl: new URL(env.TIAN_URL ?? ''),
    clientId: env.TIAN_CLIENT_ID ?? '',
    clientSecret: env.TIAN_CLIENT_SECRET ?? '',
    webhookSecret: env.TIAN_WEBHOOK_SECRET ?? '',
    scope: env.SCOPE ?? 'balance deduct',
    tokenStoreFile: env.TOKEN_STORE_FILE || undefined,
    refreshBeforeExpirySeconds: refresh,
  };
}
