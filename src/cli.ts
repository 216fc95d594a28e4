import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config.js';
import { Database } from './db/database.js';
import { EmbeddedDatabaseInUse } from './db/embedded.js';
import { createPartnerAccount } from './partners/accounts.js';
import { createPartner, PartnerInputError, presentPartner, SCOPES, type Scope } from './partners/partners.js';
import { createUser, creditPoints, UserInputError } from './users/users.js';

const USAGE = `Usage: npm run cli -- <command> [options]   (prints JSON; exit 1 with {"error"} on failure)

  migrate                                   apply committed migrations
  partner:create --name N --redirect-uri U [--redirect-uri U2] [--scopes "deduct balance"]
                 [--require-pkce] [--refresh-grace-seconds S]
                                            prints clientId and the clientSecret (shown once; it is also the API key)
  partner-account:create --partner-id ID --email E [--password P]
                                            a partner dashboard sign-in (/dashboard); without --password one is
                                            generated and printed once (only its argon2id hash is stored)
  user:create    --email E --password P [--privy-id DID] [--points N]
  user:create    --privy-id DID [--points N]
  points:credit  --user-id ID --points N [--description D]

Uses DATABASE_URL, or the embedded database in DATA_DIR (default .data/pglite) when unset: through
the running server when one owns DATA_DIR, else by opening it directly.`;

async function main(argv: string[]): Promise<unknown> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      name: { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true },
      scopes: { type: 'string' },
      'require-pkce': { type: 'boolean' },
      'refresh-grace-seconds': { type: 'string' },
      email: { type: 'string' },
      password: { type: 'string' },
      'privy-id': { type: 'string' },
      points: { type: 'string' },
      'user-id': { type: 'string' },
      'partner-id': { type: 'string' },
      description: { type: 'string' },
    },
    strict: true,
  });
  if (!command || command === 'help' || command === '--help') return { usage: USAGE };
  const config = loadConfig();
  // With the embedded database, a running server owns DATA_DIR: go through it (its socket), so the
  // change is the server's own data at once. With no server running, open the directory ourselves.
  const db = await Database.open({ url: config.databaseUrl, dataDir: config.dataDir, embeddedRole: 'cli' });
  try {
    const migrated = await db.migrate();
    switch (command) {
      case 'migrate':
        return { migrated };
      case 'partner:create': {
        if (!values.name) throw new CliError('--name is required');
        const scopes = (values.scopes ?? SCOPES.join(' ')).split(/[\s,]+/).filter(Boolean) as Scope[];
        const { partner, clientSecret } = await db.transaction((tx) =>
          createPartner(tx, {
            name: values.name ?? '',
            redirectUris: values['redirect-uri'] ?? [],
            allowedScopes: scopes,
            requirePkce: values['require-pkce'] ?? false,
            refreshGraceSeconds: intOption(values['refresh-grace-seconds'], 'refresh-grace-seconds') ?? 0,
          }),
        );
        return { ...presentPartner(partner), clientSecret };
      }
      case 'partner-account:create': {
        const partnerId = intOption(values['partner-id'], 'partner-id');
        if (partnerId === undefined || !values.email)
          throw new CliError('--partner-id and --email are required');
        const { account, password } = await db.transaction((tx) =>
          createPartnerAccount(tx, { partnerId, email: values.email ?? '', password: values.password }),
        );
        return {
          accountId: account.id,
          partnerId: account.partnerId,
          email: account.email,
          ...(values.password ? {} : { password }),
        };
      }
      case 'user:create': {
        const user = await db.transaction((tx) =>
          createUser(tx, {
            ...(values.email ? { email: values.email } : {}),
            ...(values.password ? { password: values.password } : {}),
            ...(values['privy-id'] ? { privyId: values['privy-id'] } : {}),
            points: intOption(values.points, 'points') ?? 0,
          }),
        );
        return { userId: user.id, email: user.email, privyId: user.privyId, balance: user.balance };
      }
      case 'points:credit': {
        const userId = intOption(values['user-id'], 'user-id');
        const points = intOption(values.points, 'points');
        if (userId === undefined || points === undefined)
          throw new CliError('--user-id and --points are required');
        const balance = await db.transaction((tx) =>
          creditPoints(tx, userId, points, values.description ?? 'Credit by administrator'),
        );
        return { userId, credited: points, balance };
      }
      default:
        throw new CliError(`Unknown command ${command}.\n${USAGE}`);
    }
  } finally {
    await db.close();
  }
}

class CliError extends Error {}

function intOption(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw new CliError(`--${name} must be a whole number`);
  return Number(v);
}

main(process.argv.slice(2)).then(
  (out) => {
    console.log(JSON.stringify(out, null, 2));
  },
  (err: unknown) => {
    const known =
      err instanceof CliError ||
      err instanceof ConfigError ||
      err instanceof PartnerInputError ||
      err instanceof UserInputError ||
      err instanceof EmbeddedDatabaseInUse;
    const message = known || (err as { code?: string }).code ? (err as Error).message : String(err);
    console.log(JSON.stringify({ error: message.split('\n')[0] }));
    if (!known) console.error(err);
    process.exitCode = 1;
  },
);
