/**
 * What each benchmark scenario sends and how it reads the answers. The same definitions drive the
 * reference and the project (same paths, headers and bodies), so their figures are comparable, and
 * the orchestrator rebuilds a deduct from its (user, key) to replay it for the consistency check.
 */

/** One seeded wallet user with its credentials (see seed.ts). */
export type BenchUser = {
  id: number;
  privyId: string;
  /** Privy session token (legacy flow). */
  session: string;
  /** Access token of the bench partner (scope `deduct balance`). */
  access: string;
  /** Access token of the webhook partner (scope `deduct balance`). */
  webhookAccess: string;
};

export type BenchPartner = { id: number; clientId: string; apiKey: string };

export type Seed = {
  partner: BenchPartner;
  /** A partner with one webhook endpoint subscribed to points.deducted (the webhook scenario). */
  webhookPartner: BenchPartner;
  users: BenchUser[];
  /** The one user every hot-user deduct hits. */
  hot: BenchUser;
};

export const SCENARIOS = {
  balance: { title: 'balance (bearer)', deduct: false },
  'deduct-spread': { title: 'deduct, 1,000 users (bearer)', deduct: true },
  'deduct-hot': { title: 'deduct, one hot user (bearer)', deduct: true },
  'deduct-legacy': { title: 'deduct, legacy (API key + Privy)', deduct: true },
  'token-info': { title: 'token info (bearer)', deduct: false },
  refresh: { title: 'refresh (rotation)', deduct: false },
  'deduct-webhook': { title: 'deduct + webhook (bearer)', deduct: true },
} as const;
export type ScenarioName = keyof typeof SCENARIOS;
export const SCENARIO_NAMES = Object.keys(SCENARIOS) as ScenarioName[];

export type Req = {
  method: 'GET' | 'POST';
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Deducts: index into the scenario's users, and the idempotency key. */
  user?: number;
  key?: string;
};

/** A deduct the server acknowledged: [user index, idempotency key, transactionId]. */
export type Ack = [number, string, string];
/** A deduct sent without an answer (the run ended, or its connection failed): [user index, key]. */
export type Unanswered = [number, string];

export type DriverReport = {
  statuses: Record<string, number>;
  acknowledged: Ack[];
  unanswered: Unanswered[];
  /** Deducts answered with webhookDelivered: true. */
  webhookDelivered: number;
  /** Answers that were 2xx but not what the scenario expects (a bug, counted as errors). */
  malformed: number;
};

export interface Driver {
  next(): Req;
  done(req: Req, status: number, body: string): void;
  report(): DriverReport;
}

/** The users a deduct scenario spreads over. */
export function usersOf(seed: Seed, scenario: ScenarioName): BenchUser[] {
  return scenario === 'deduct-hot' ? [seed.hot] : seed.users;
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const json = { 'content-type': 'application/json' };

/** One deduct of 1 point, its description naming the run, so its ledger rows can be counted. */
export function deductRequest(
  seed: Seed,
  scenario: ScenarioName,
  user: number,
  key: string,
  runTag: string,
): Req {
  const u = usersOf(seed, scenario)[user];
  if (!u) throw new Error(`no user ${user} in ${scenario}`);
  const auth =
    scenario === 'deduct-legacy'
      ? { 'x-api-key': seed.partner.apiKey, 'x-privy-id': u.privyId, 'x-privy-session-token': u.session }
      : bearer(scenario === 'deduct-webhook' ? u.webhookAccess : u.access);
  return {
    method: 'POST',
    path: '/api/v1/points/deduct',
    headers: { ...json, ...auth },
    body: JSON.stringify({ amount: 1, description: runTag, idempotencyKey: key }),
    user,
    key,
  };
}

/** The load generator's side of a scenario: builds each request and tallies each answer. */
export function makeDriver(
  scenario: ScenarioName,
  seed: Seed,
  runTag: string,
  refreshTokens: string[] = [],
): Driver {
  const statuses: Record<string, number> = {};
  const acknowledged: Ack[] = [];
  const inFlight = new Map<string, Req>();
  let webhookDelivered = 0;
  let malformed = 0;
  let seq = 0;
  const users = usersOf(seed, scenario);
  // Consecutive requests go to different users, starting anywhere.
  let cursor = Math.floor(Math.random() * users.length);
  const nextUser = () => {
    cursor = (cursor + 1) % users.length;
    return cursor;
  };
  const parse = (body: string): Record<string, unknown> | undefined => {
    try {
      return JSON.parse(body) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };
  // Refresh: each token is presented once; the answer's new refresh token goes back in the pool.
  const pool = [...refreshTokens];

  const next = (): Req => {
    switch (scenario) {
      case 'balance':
        return {
          method: 'GET',
          path: '/api/v1/points/balance',
          headers: bearer(users[nextUser()]?.access ?? ''),
        };
      case 'token-info':
        return {
          method: 'GET',
          path: '/api/oauth2/token/info',
          headers: bearer(users[nextUser()]?.access ?? ''),
        };
      case 'refresh': {
        const token = pool.shift() ?? 'tcrt_pool_ran_dry';
        return {
          method: 'POST',
          path: '/api/oauth2/token',
          headers: json,
          body: JSON.stringify({
            grant_type: 'refresh_token',
            refresh_token: token,
            client_id: seed.partner.clientId,
            client_secret: seed.partner.apiKey,
          }),
        };
      }
      default: {
        const req = deductRequest(seed, scenario, nextUser(), `${runTag}.${++seq}`, runTag);
        inFlight.set(req.key ?? '', req);
        return req;
      }
    }
  };

  const done = (req: Req, status: number, body: string): void => {
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (status < 200 || status > 299) {
      if (req.key !== undefined) inFlight.delete(req.key);
      return;
    }
    const parsed = parse(body);
    if (scenario === 'refresh') {
      if (typeof parsed?.refresh_token === 'string') pool.push(parsed.refresh_token);
      else malformed++;
    } else if (req.key !== undefined) {
      inFlight.delete(req.key);
      if (typeof parsed?.transactionId !== 'string') malformed++;
      else acknowledged.push([req.user ?? -1, req.key, parsed.transactionId]);
      if (parsed?.webhookDelivered === true) webhookDelivered++;
    } else if (parsed === undefined) malformed++;
  };

  return {
    next,
    done,
    report: () => ({
      statuses,
      acknowledged,
      unanswered: [...inFlight.values()].map((r): Unanswered => [r.user ?? -1, r.key ?? '']),
      webhookDelivered,
      malformed,
    }),
  };
}
