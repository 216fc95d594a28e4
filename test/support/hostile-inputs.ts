/**
 * Hostile inputs, driven by openapi.yaml (the generator of contract-tests/hostile-inputs.test.ts and of
 * the reliability suite's hostile scenario): every operation (the `webhooks` section aside) gets valid
 * credentials, so the inputs reach validation and the handler rather than stopping at the 401, and at
 * least `runs` requests built by fast-check from its parameter and body schemas: strings mixing NUL
 * bytes, lone UTF-16 surrogates, unicode, very long text, SQL and header injection; numbers that are
 * huge (2^31, 2^53, 2^63, 1e308), -0, negative, fractional; wrong types, extra and duplicate keys. Then
 * hand-picked cases: deep nesting, huge bodies, wrong content types, raw query strings, raw sockets.
 *
 * Records as failures: any 5xx (a 501 included: every operation is implemented); a 4xx on a money
 * operation that changed something (balances, ledger, idempotency keys, webhook events); a 4xx not in
 * the documented format (RFC 6749 JSON on /api/oauth2/, problem+json elsewhere).
 * Deterministic: one fixed fast-check seed (HOSTILE_SEED overrides it, HOSTILE_RUNS the run count),
 * printed with every failure.
 */
import net from 'node:net';
import * as fc from 'fast-check';
import {
  deref,
  listOperations,
  loadSpec,
  type OpenApiDocument,
  type SpecOperation,
} from '../../src/http/spec.js';
import { FAKE_IDS } from './fake-ids.js';
import type { TestServer } from './harness.js';
import { obtainTokens, type TokenSet } from './oauth.js';

export const HOSTILE_SEED = Number(process.env.HOSTILE_SEED ?? 20_260_410);
export const HOSTILE_RUNS = Math.max(1, Number(process.env.HOSTILE_RUNS ?? 200));
const spec = loadSpec();
const operations = listOperations(spec);

// ---------------------------------------------------------------- JSON with what JSON.stringify cannot say
/** A JSON literal sent verbatim: `-0`, `1e308`, `9223372036854775808`, `1e400`. */
class Raw {
  constructor(readonly text: string) {}
}
/** An object written with the keys in this order, duplicates included. */
class Dup {
  constructor(readonly entries: [string, unknown][]) {}
}

function toJson(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (v instanceof Dup)
    return `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`).join(',')}}`;
  if (Array.isArray(v)) return `[${v.map((x) => (x === undefined ? 'null' : toJson(x))).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const parts = Object.entries(v)
      .filter(([, x]) => x !== undefined)
      .map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`);
    return `{${parts.join(',')}}`;
  }
  // JSON.stringify escapes lone surrogates as \udXXX (well-formed stringify), so they reach the server.
  return JSON.stringify(v) ?? 'null';
}

/** Percent-encoding that also carries lone surrogates (as their WTF-8 bytes, which is what they would be). */
function pct(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const next = s.charCodeAt(i + 1);
    if (c >= 0xd800 && c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
      out += encodeURIComponent(s.slice(i, i + 2));
      i++;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      out += [0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`)
        .join('');
    } else out += encodeURIComponent(s[i] ?? '');
  }
  return out;
}

/** A scalar as it travels in a query string, a path segment or a form field. */
function scalarText(v: unknown): string {
  if (v instanceof Raw) return v.text;
  if (typeof v === 'string') return v;
  if (v instanceof Dup) return toJson(v);
  if (v !== null && typeof v === 'object') return toJson(v);
  return String(v);
}

function toForm(body: unknown): string {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) return pct(scalarText(body));
  const entries = body instanceof Dup ? body.entries : Object.entries(body);
  const parts: string[] = [];
  for (const [k, v] of entries) {
    if (v === undefined) continue;
    for (const x of Array.isArray(v) ? v : [v]) parts.push(`${pct(k)}=${pct(scalarText(x))}`);
  }
  return parts.join('&');
}

/** What fetch can put in a header: no NUL/CR/LF, bytes only, no surrounding whitespace. */
const headerSafe = (s: string) =>
  [...s]
    .filter((c) => {
      const n = c.charCodeAt(0);
      return c.length === 1 && n >= 0x20 && n <= 0xff && n !== 0x7f;
    })
    .join('')
    .trim();

// ---------------------------------------------------------------- hostile value generators
const NASTY = [
  '\u0000',
  'a\u0000b',
  '\u0000\u0000\u0000',
  '\uD800',
  '\uDFFF',
  'x\uD800y',
  '\uDFFF\uD800',
  '\uDBFF',
  "' OR '1'='1",
  "'; DROP TABLE users; --",
  '1); select pg_sleep(5)--',
  '\\',
  "\\'",
  '$1',
  '%s%s%s%n',
  '{{7*7}}',
  '${7*7}',
  '\r\nX-Injected: 1',
  '\r\n\r\n<html>',
  'a\rb',
  '\n',
  '%0d%0aSet-Cookie: x=1',
  '%00',
  '%',
  '%ZZ',
  '%ED%A0%80',
  '<script>alert(1)</script>',
  '"><img src=x onerror=alert(1)>',
  'javascript:alert(1)',
  '../../../../etc/passwd',
  '..\\..\\windows',
  '__proto__',
  'constructor',
  'prototype',
  'hasOwnProperty',
  '',
  ' ',
  '\t',
  '\u00A0',
  '\u200B',
  '\u202E',
  '\uFEFF',
  '\uFFFE',
  '\uFFFF',
  '\u0001\u001F\u007F',
  '\u0085\u2028\u2029',
  '🙂',
  '👨‍👩‍👧‍👦',
  'Ω≈ç√∫',
  '日本語',
  'ﷺ',
  'İı',
  'Z̤͔ͧ̑̓ä͖̭̈̇',
  'null',
  'undefined',
  'true',
  'NaN',
  'Infinity',
  '-1',
  '1e308',
  '9223372036854775808',
  '[]',
  '{}',
  'tcat_',
  'tcrt_',
  'txn_',
  'did:privy:',
];
const HUGE_NUMBERS = [
  '2147483647',
  '2147483648',
  '-2147483649',
  '4294967296',
  '9007199254740991',
  '9007199254740992',
  '9007199254740993',
  '9223372036854775807',
  '9223372036854775808',
  '-9223372036854775809',
  '18446744073709551616',
  '123456789012345678901234567890',
  '1e308',
  '1.7976931348623157e308',
  '1e309',
  '-1e309',
  '-0',
  '-0.0',
  '0',
  '-1',
  '1.5',
  '1.0',
  '100000000.0',
  '1e-324',
  '5e-324',
  '1E2',
  '100000001',
  '1e8',
];

const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...NASTY) },
  {
    weight: 4,
    arbitrary: fc
      .array(fc.oneof(fc.constantFrom(...NASTY), fc.string({ unit: 'binary', maxLength: 6 })), {
        minLength: 1,
        maxLength: 6,
      })
      .map((a) => a.join('')),
  },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('x', '\u0000', '🙂', '\uD800', "'", 'é'), fc.integer({ min: 250, max: 20_000 }))
      .map(([c, n]) => c.repeat(n)),
  },
);

const hostileNumber: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...HUGE_NUMBERS).map((s) => new Raw(s)) },
  { weight: 2, arbitrary: fc.integer() },
  { weight: 1, arbitrary: fc.double({ noNaN: true, noDefaultInfinity: true }) },
  {
    weight: 1,
    arbitrary: fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }).map((b) => new Raw(b.toString())),
  },
);

const wrongType: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(null, true, false, [], {}, [1], { a: 1 }, '1', 0, [null], [[[]]]),
  hostileNumber,
  fc.array(hostileString, { maxLength: 3 }),
  fc.jsonValue({ maxDepth: 3 }),
);

/** `a` in about `percent` % of the samples, else null (fc.option's `freq` is the odds of null). */
const sometimes = <T>(a: fc.Arbitrary<T>, percent: number): fc.Arbitrary<T | null> =>
  fc.oneof({ weight: 100 - percent, arbitrary: fc.constant(null) }, { weight: percent, arbitrary: a });

const hostileKey = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'prototype', '\u0000', 'a\u0000', '\uD800', '', ' ', 'extra'),
  hostileString.map((s) => s.slice(0, 40)),
);

// ---------------------------------------------------------------- schema -> arbitrary
/** Valid values for fields the generator cannot invent (ids, credentials): filled in per operation. */
type Hints = Record<string, () => fc.Arbitrary<unknown>>;

function validLeaf(schema: OpenApiDocument, name: string, hints: Hints): fc.Arbitrary<unknown> {
  const hint = hints[name];
  if (hint) return hint();
  if (Array.isArray(schema.enum)) return fc.constantFrom(...schema.enum);
  const type = Array.isArray(schema.type) ? schema.type.find((t: string) => t !== 'null') : schema.type;
  switch (type) {
    case 'integer':
    case 'number': {
      const min = schema.minimum ?? 0;
      const max = Math.min(schema.maximum ?? 1_000, min + 1_000);
      return fc.oneof(
        fc.integer({ min, max }),
        fc.constantFrom(schema.minimum ?? 0, schema.maximum ?? 1, schema.example ?? min),
      );
    }
    case 'boolean':
      return fc.boolean();
    case 'string': {
      if (schema.format === 'uri')
        return fc.constantFrom('https://partner.test/hook', 'https://partner.test/callback');
      const examples = [schema.example].filter((x) => typeof x === 'string');
      const free = fc.string({ unit: 'grapheme-ascii', minLength: schema.minLength ?? 0, maxLength: 20 });
      return examples.length ? fc.oneof(fc.constantFrom(...examples), free) : free;
    }
    default:
      return fc.constant(schema.example ?? null);
  }
}

/** The object schema an `allOf` of object schemas describes: every part's properties, all their required. */
function mergeAllOf(parts: OpenApiDocument[]): OpenApiDocument {
  const merged = { type: 'object', properties: {}, required: [] as string[] };
  for (const part of parts.map(deref)) {
    Object.assign(merged.properties, part.properties ?? {});
    merged.required.push(...(part.required ?? []));
  }
  return merged;
}

function arb(raw: OpenApiDocument, name: string, hints: Hints, depth = 0): fc.Arbitrary<unknown> {
  const schema = deref(raw) ?? {};
  if (schema.allOf) {
    return arb(mergeAllOf(schema.allOf), name, hints, depth);
  }
  const alternatives = schema.oneOf ?? schema.anyOf;
  if (alternatives)
    return fc.oneof(...alternatives.map((s: OpenApiDocument) => arb(s, name, hints, depth + 1)));
  const type = Array.isArray(schema.type) ? schema.type.find((t: string) => t !== 'null') : schema.type;

  if (type === 'object' || schema.properties) {
    const props = Object.entries<OpenApiDocument>(schema.properties ?? {});
    const required = new Set<string>(schema.required ?? []);
    const fields = props.map(([k, s]) =>
      fc.tuple(fc.constant(k), fc.integer({ min: 0, max: 99 }), arb(s, k, hints, depth + 1)),
    );
    const object = fc
      .tuple(
        fc.tuple(...fields),
        sometimes(fc.tuple(hostileKey, fc.oneof(hostileString, wrongType)), 10),
        fc.integer({ min: 0, max: 99 }),
        fc.oneof(hostileString, wrongType),
      )
      .map(([fs, extra, dupRoll, dupValue]) => {
        const entries: [string, unknown][] = [];
        for (const [k, roll, v] of fs) if (roll < (required.has(k) ? 92 : 50)) entries.push([k, v]);
        if (extra) entries.push(extra);
        // A duplicate key: JSON.parse keeps the last one, so the hostile value is the one that counts.
        const first = entries[0];
        if (dupRoll < 6 && first) return new Dup([...entries, [first[0], dupValue]]);
        if (entries.some(([k]) => k === '__proto__')) return new Dup(entries);
        return Object.fromEntries(entries);
      });
    return depth === 0
      ? fc.oneof({ weight: 14, arbitrary: object }, { weight: 1, arbitrary: wrongType })
      : object;
  }
  if (type === 'array') {
    const items = arb(schema.items ?? {}, name, hints, depth + 1);
    return fc.oneof(
      { weight: 6, arbitrary: fc.array(items, { maxLength: 4 }) },
      { weight: 1, arbitrary: fc.array(items, { minLength: 50, maxLength: 300 }) },
      { weight: 1, arbitrary: wrongType },
    );
  }
  const valid = validLeaf(schema, name, hints);
  if (type === 'integer' || type === 'number') {
    return fc.oneof(
      { weight: 7, arbitrary: valid },
      { weight: 3, arbitrary: hostileNumber },
      { weight: 1, arbitrary: wrongType },
    );
  }
  if (type === 'string') {
    return fc.oneof(
      { weight: 5, arbitrary: valid },
      { weight: 4, arbitrary: hostileString },
      // Valid-looking prefix, hostile tail: gets past "starts with" checks into the handler.
      { weight: 2, arbitrary: fc.tuple(valid, hostileString).map(([v, h]) => `${scalarText(v)}${h}`) },
      { weight: 1, arbitrary: wrongType },
    );
  }
  return fc.oneof({ weight: 3, arbitrary: valid }, { weight: 1, arbitrary: wrongType });
}

/** Hinted fields whose valid values are free text: in gentle samples they carry the hostile text. */
const FREE_TEXT = new Set(['state', 'description', 'reason', 'planName']);

/**
 * Schema-valid in everything but free text: structure, numbers, ids and credentials are valid, the
 * free-text strings are hostile (within maxLength). These samples get past the validator into the handler.
 */
function gentleArb(raw: OpenApiDocument, name: string, hints: Hints): fc.Arbitrary<unknown> {
  const schema = deref(raw) ?? {};
  if (schema.allOf) {
    return gentleArb(mergeAllOf(schema.allOf), name, hints);
  }
  const alternatives = schema.oneOf ?? schema.anyOf;
  if (alternatives) return fc.oneof(...alternatives.map((s: OpenApiDocument) => gentleArb(s, name, hints)));
  const type = Array.isArray(schema.type) ? schema.type.find((t: string) => t !== 'null') : schema.type;
  if (type === 'object' || schema.properties) {
    const props = Object.entries<OpenApiDocument>(schema.properties ?? {});
    const required = (schema.required ?? []) as string[];
    const record = fc.record(Object.fromEntries(props.map(([k, s]) => [k, gentleArb(s, k, hints)])), {
      requiredKeys: required,
    });
    const min = schema.minProperties ?? 0;
    return min > 0 ? record.filter((o) => Object.keys(o).length >= min) : record;
  }
  if (type === 'array') {
    const minLength = schema.minItems ?? 0;
    const maxLength = Math.max(minLength, 3);
    const items = gentleArb(schema.items ?? {}, name, hints);
    return schema.uniqueItems
      ? fc.uniqueArray(items, { minLength, maxLength, selector: (v) => JSON.stringify(v) })
      : fc.array(items, { minLength, maxLength });
  }
  const fixed =
    (hints[name] && !FREE_TEXT.has(name)) ||
    schema.enum ||
    schema.pattern ||
    schema.format ||
    type !== 'string';
  if (fixed) return validLeaf(schema, name, hints);
  const max = schema.maxLength ?? 2_000;
  return fc.oneof(
    { weight: 1, arbitrary: validLeaf(schema, name, hints) },
    {
      weight: 4,
      arbitrary: hostileString.map((h) => h.slice(0, max)).filter((h) => h.length >= (schema.minLength ?? 0)),
    },
  );
}

/** Where the requests go and how many: `target` is another server on `t`'s database (default `t`). */
export type HostileOptions = { target?: string; runs?: number; seed?: number };

/** One operation's run: the requests sent and a line with their statuses. */
export type HostileOperationRun = { requests: number; line: string };

export type HostileInputs = {
  seed: number;
  runs: number;
  operations: SpecOperation[];
  /** `runs` generated requests, then the hand-picked ones, to one operation. */
  runOperation(op: SpecOperation): Promise<HostileOperationRun>;
  /** Requests fetch refuses to send, written to a socket. */
  runRaw(): Promise<number>;
  /** Users whose ledger does not add up to their balance. */
  ledgerMismatches(): Promise<{ id: string; balance: number; sum: string }[]>;
  /** Every 5xx, wrong error format or state change on a 4xx so far, with the request and the seed. */
  failures: string[];
  /** Requests sent so far (raw ones included). */
  requests(): number;
};

/**
 * Seeds `t`'s database (partners, users, tokens, deductions to refund) and returns the runner.
 * The requests go to `opts.target`, which must share `t`'s database and Privy verification key.
 */
export async function hostileInputs(t: TestServer, opts: HostileOptions = {}): Promise<HostileInputs> {
  const SEED = opts.seed ?? HOSTILE_SEED;
  const RUNS = opts.runs ?? HOSTILE_RUNS;
  const target = opts.target ?? t.url;
  let rawSent = 0;

  const REDIRECT_URI = 'https://partner.test/callback';
  const partner = await t.partner({ name: 'Hostile Partner', redirectUris: [REDIRECT_URI] });
  let rotating = await t.partner({ name: 'Hostile Rotating Partner' });
  const legacyUser = await t.user({ points: 2_000_000_000 });
  const oauthUser = { email: 'hostile-oauth@example.test', password: 'hostile-password-1' };
  await t.user({ ...oauthUser, points: 2_000_000_000 });
  // Tokens handed to createToken/revokeToken as inputs belong to another user: revoking them (or a
  // replayed refresh token revoking the whole grant) must not take away the tokens that authenticate.
  const victim = { email: 'hostile-victim@example.test', password: 'hostile-password-2' };
  await t.user({ ...victim, points: 10 });

  const tokensFor = (who: { email: string; password: string }, scope: string): Promise<TokenSet> =>
    obtainTokens(t, { client: partner, redirectUri: REDIRECT_URI, user: who, scope });
  const mainToken = await tokensFor(oauthUser, 'deduct balance subscriptions');
  const victimTokens = await Promise.all([1, 2, 3].map(() => tokensFor(victim, 'balance deduct')));

  const legacyHeaders = () => t.legacyHeaders(partner.clientSecret, legacyUser.privyId);
  const legacySession = await t.privyToken(legacyUser.privyId, { expiresInSec: 6 * 3600 });

  /** Deductions to refund, per user (a refund names a transaction of the caller's own user). */
  async function seedDeductions(headers: Record<string, string>, n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await fetch(new URL('/api/v1/points/deduct', target), {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ amount: 1_000 + i, description: 'hostile setup' }),
      });
      const body = (await res.json()) as { transactionId?: string };
      if (res.status !== 200 || !body.transactionId) throw new Error(`setup deduct: ${res.status}`);
      ids.push(body.transactionId);
    }
    return ids;
  }
  const txns = [
    ...(await seedDeductions(await legacyHeaders(), 15)),
    ...(await seedDeductions({ authorization: `Bearer ${mainToken.access_token}` }, 15)),
  ];

  const hints: Hints = {
    transactionId: () => fc.constantFrom(...txns, FAKE_IDS.transactionId),
    subscriptionId: () => fc.constant(FAKE_IDS.subscriptionId),
    endpointId: () => fc.constant(FAKE_IDS.endpointId),
    deliveryId: () => fc.constant(FAKE_IDS.deliveryId),
    amount: () => fc.oneof(fc.integer({ min: 1, max: 50 }), fc.constantFrom(1, 100_000_000)),
    idempotencyKey: () => fc.stringMatching(/^[A-Za-z0-9_.:-]{1,40}$/),
    'Idempotency-Key': () => fc.stringMatching(/^[A-Za-z0-9_.:-]{1,40}$/),
    privyId: () => fc.constant(legacyUser.privyId),
    sessionToken: () => fc.constant(legacySession),
    client_id: () => fc.constant(partner.clientId),
    client_secret: () => fc.constant(partner.clientSecret),
    redirect_uri: () => fc.constant(REDIRECT_URI),
    response_type: () => fc.constant('code'),
    scope: () => fc.constantFrom('balance', 'deduct balance', 'deduct balance subscriptions', 'nope'),
    state: () => fc.string({ unit: 'grapheme-ascii', maxLength: 20 }),
    code_challenge: () => fc.constant('E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'),
    code_challenge_method: () => fc.constantFrom('S256', 'plain'),
    grant_type: () =>
      fc.constantFrom('authorization_code', 'refresh_token', 'client_credentials', 'password'),
    code: () => fc.constantFrom('tcac_not_a_real_code', 'tcac_'),
    code_verifier: () => fc.constant('dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-dBjftJeZ4CVP'),
    refresh_token: () => fc.constantFrom(...victimTokens.map((v) => v.refresh_token), 'tcrt_unknown'),
    token: () =>
      fc.constantFrom(
        ...victimTokens.flatMap((v) => [v.access_token, v.refresh_token]),
        'tcat_unknown',
        'tcrt_unknown',
      ),
    limit: () => fc.integer({ min: 1, max: 100 }),
    cursor: () =>
      fc.oneof(
        fc.bigInt({ min: 0n, max: 2n ** 70n }).map((b) => Buffer.from(String(b)).toString('base64url')),
        fc.constantFrom(
          ...[
            '1001',
            '0',
            '-1',
            '9223372036854775807',
            '9223372036854775808',
            '9999999999999999999',
            '1e3',
          ].map((n) => Buffer.from(n).toString('base64url')),
        ),
      ),
    url: () => fc.constantFrom('https://partner.test/hook', 'http://127.0.0.1:1/hook', 'https://[::1]/x'),
  };

  // ---------------------------------------------------------------- requests
  type Req = { method: string; path: string; headers: Record<string, string>; body?: string };
  type Outcome = { status: number; text: string; contentType: string };

  async function send(req: Req): Promise<Outcome> {
    const url = new URL(req.path, target);
    if (url.hostname !== '127.0.0.1') throw new Error(`refusing to talk to ${url.host}`);
    const res = await fetch(url, {
      method: req.method,
      headers: req.headers,
      redirect: 'manual',
      ...(req.body === undefined ? {} : { body: req.body }),
    });
    return { status: res.status, text: await res.text(), contentType: res.headers.get('content-type') ?? '' };
  }

  type AuthKind = 'legacy' | 'legacyBody' | 'oauth' | 'partner' | 'basic' | 'bearer' | 'none';
  function authKinds(op: SpecOperation): AuthKind[] {
    const s = op.security;
    if (s.some((r) => 'oauth2' in r || 'privySession' in r))
      return op.method === 'post' ? ['legacy', 'legacyBody', 'oauth'] : ['legacy', 'oauth'];
    if (s.some((r) => 'partnerApiKey' in r)) return ['partner'];
    if (s.some((r) => 'bearerToken' in r)) return ['bearer'];
    if (s.some((r) => 'clientBasic' in r)) return ['none', 'basic'];
    return ['none'];
  }

  async function authHeaders(op: SpecOperation, kind: AuthKind, basic: [string, string]) {
    switch (kind) {
      case 'legacy':
        return legacyHeaders();
      case 'legacyBody':
        return { 'x-api-key': partner.clientSecret };
      case 'oauth':
      case 'bearer':
        return { authorization: `Bearer ${mainToken.access_token}` };
      case 'partner':
        return {
          'x-api-key': op.operationId === 'rotateClientSecret' ? rotating.clientSecret : partner.clientSecret,
        };
      case 'basic': {
        const enc = (s: string) => pct(s).replace(/%20/g, '+');
        return {
          authorization: `Basic ${Buffer.from(`${enc(basic[0])}:${enc(basic[1])}`).toString('base64')}`,
        };
      }
      default:
        return {};
    }
  }

  type Generated = {
    auth: AuthKind;
    basic: [string, string];
    path: Record<string, unknown>;
    query: [string, unknown][];
    headers: Record<string, unknown>;
    body: unknown;
    form: boolean;
  };

  const paramsOf = (op: SpecOperation): OpenApiDocument[] =>
    [...(spec.paths[op.path].parameters ?? []), ...(spec.paths[op.path][op.method].parameters ?? [])].map(
      deref,
    );

  function requestBodyOf(op: SpecOperation): { schema: OpenApiDocument; types: string[] } | undefined {
    const rb = deref(spec.paths[op.path][op.method].requestBody);
    if (!rb?.content) return undefined;
    const types = Object.keys(rb.content);
    const first = types[0];
    return first ? { schema: rb.content[first].schema ?? {}, types } : undefined;
  }

  /** Three in five samples anything goes; two in five only the free text is hostile. */
  const mixed = (schema: OpenApiDocument, name: string) =>
    fc.oneof(
      { weight: 3, arbitrary: arb(schema, name, hints) },
      { weight: 2, arbitrary: gentleArb(schema, name, hints) },
    );

  function inputArbitrary(op: SpecOperation): fc.Arbitrary<Generated> {
    const params = paramsOf(op);
    const pathParams = params.filter((p) => p.in === 'path');
    const queryParams = params.filter((p) => p.in === 'query');
    // X-Privy-Id is a credential (must name the session's subject): the legacy headers set it.
    const headerParams = params.filter((p) => p.in === 'header' && p.name.toLowerCase() !== 'x-privy-id');
    const rb = requestBodyOf(op);

    const path = fc.record(
      Object.fromEntries(pathParams.map((p) => [p.name, mixed(p.schema ?? {}, p.name)])),
    ) as fc.Arbitrary<Record<string, unknown>>;
    const query = fc
      .tuple(
        ...queryParams.map((p) =>
          fc.tuple(
            fc.constant(p.name as string),
            fc.integer({ min: 0, max: 99 }),
            mixed(p.schema ?? {}, p.name),
            sometimes(arb(p.schema ?? {}, p.name, hints), 8),
          ),
        ),
        sometimes(fc.tuple(hostileKey, hostileString), 8),
      )
      .map((parts) => {
        const extra = parts.pop() as [string, string] | null;
        const out: [string, unknown][] = [];
        for (const part of parts as [string, number, unknown, unknown][]) {
          const [name, roll, v, repeat] = part;
          const p = queryParams.find((q) => q.name === name);
          if (roll >= (p?.required ? 95 : 60)) continue;
          out.push([name, v]);
          if (repeat !== null) out.push([name, repeat]); // a repeated parameter: an array on the server
        }
        if (extra) out.push(extra);
        return out;
      });
    // Rarely sent: an Idempotency-Key header that differs from the body's is a 400 before the handler.
    const headers = fc
      .tuple(...headerParams.map((p) => sometimes(mixed(p.schema ?? {}, p.name), 20)))
      .map((values) => {
        const out: Record<string, unknown> = {};
        headerParams.forEach((p, i) => {
          if (values[i] !== null && values[i] !== undefined) out[p.name] = values[i];
        });
        return out;
      });
    const body = rb ? mixed(rb.schema, '') : fc.constant(undefined);
    const canForm = rb?.types.includes('application/x-www-form-urlencoded') ?? false;
    const basicPart = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(partner.clientId, partner.clientSecret) },
      { weight: 2, arbitrary: hostileString.map((s) => s.slice(0, 200)) },
    );
    return fc.record({
      auth: fc.constantFrom(...authKinds(op)),
      basic: fc.tuple(basicPart, basicPart),
      path,
      query,
      headers,
      body,
      form: canForm ? fc.boolean() : fc.constant(false),
    });
  }

  async function buildRequest(op: SpecOperation, g: Generated): Promise<Req> {
    let path = op.path.replace(/\{([^}]+)\}/g, (_m, name: string) => pct(scalarText(g.path[name])));
    if (g.query.length) path += `?${g.query.map(([k, v]) => `${pct(k)}=${pct(scalarText(v))}`).join('&')}`;
    const headers: Record<string, string> = { ...(await authHeaders(op, g.auth, g.basic)) };
    for (const [k, v] of Object.entries(g.headers)) {
      const h = headerSafe(scalarText(v));
      if (h) headers[k] = h;
    }
    let body: string | undefined;
    if (requestBodyOf(op)) {
      let value = g.body;
      if (g.auth === 'legacyBody' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
        const extra = { privyId: legacyUser.privyId, sessionToken: await t.privyToken(legacyUser.privyId) };
        value =
          value instanceof Dup
            ? new Dup([...value.entries, ...Object.entries(extra)])
            : { ...value, ...extra };
      }
      body = g.form ? toForm(value) : toJson(value);
      headers['content-type'] = g.form ? 'application/x-www-form-urlencoded' : 'application/json';
    }
    return { method: op.method.toUpperCase(), path, headers, ...(body === undefined ? {} : { body }) };
  }

  // ---------------------------------------------------------------- bookkeeping
  const MONEY_OPS = new Set([
    'deductPoints',
    'refundTransaction',
    'createSubscription',
    'cancelSubscription',
  ]);
  type MoneyState = { balances: string; ledger: string; keys: string; events: string };
  async function moneyState(): Promise<MoneyState> {
    const [row] = await t.db.query<MoneyState>(
      `select (select coalesce(sum(balance), 0)::text from users) as balances,
            (select count(*)::text from ledger_entries) as ledger,
            (select count(*)::text from idempotency_keys) as keys,
            (select count(*)::text from webhook_events) as events`,
    );
    if (!row) throw new Error('no money state');
    return row;
  }

  const failures: string[] = [];
  const stats = new Map<string, { requests: number; statuses: Map<number, number> }>();

  const show = (s: string | undefined, n = 300) => {
    if (s === undefined) return '(none)';
    const j = JSON.stringify(s);
    return j.length > n ? `${j.slice(0, n)}... (${s.length} chars)` : j;
  };

  const OAUTH_ERRORS = (deref(spec.components.schemas.OAuthError).properties.error.enum ?? []) as string[];

  /**
   * What is wrong with the format of a 4xx: its Content-Type must be one the spec documents for that
   * status (else the operation's `x-error-format`: RFC 6749 JSON, an HTML page, or problem+json by
   * default), with a matching body.
   */
  function errorFormatProblem(opName: string, o: Outcome): string | undefined {
    if (o.status < 400 || o.status >= 500 || o.status === 431) return undefined; // 431: Node's parser, no body
    const op = operations.find((x) => x.operationId === opName);
    if (!op) return undefined;
    const type = o.contentType.split(';')[0]?.trim() ?? '';
    const operation = spec.paths[op.path][op.method];
    const documented = deref(operation.responses[String(o.status)]);
    const fallback =
      { oauth: 'application/json', html: 'text/html' }[operation['x-error-format'] as string] ??
      'application/problem+json';
    const allowed = documented?.content ? Object.keys(documented.content) : [fallback];
    if (!allowed.includes(type))
      return `${o.status} as ${type || '(no type)'}, documented: ${allowed.join(', ')}`;
    if (type === 'text/html') return undefined;
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(o.text) as Record<string, unknown>;
    } catch {
      return `${o.status} body is not JSON`;
    }
    if (type === 'application/problem+json' && (typeof body.code !== 'string' || body.status !== o.status))
      return `${o.status} problem without code/status`;
    if (type === 'application/json' && !OAUTH_ERRORS.includes(String(body.error)))
      return `${o.status} OAuth error body without a known error`;
    return undefined;
  }

  async function exercise(opName: string, req: Req): Promise<Outcome | undefined> {
    const money = MONEY_OPS.has(opName);
    const before = money ? await moneyState() : undefined;
    let out: Outcome;
    try {
      out = await send(req);
    } catch (err) {
      failures.push(`${opName} ${req.method} ${show(req.path)}: request failed (${(err as Error).message})`);
      return undefined;
    }
    const s = stats.get(opName) ?? { requests: 0, statuses: new Map<number, number>() };
    s.requests++;
    s.statuses.set(out.status, (s.statuses.get(out.status) ?? 0) + 1);
    stats.set(opName, s);
    if (process.env.HOSTILE_DEBUG === opName)
      console.log(
        `[hostile:debug] ${out.status} ${show(req.path, 120)} ${show(req.body, 200)} -> ${show(out.text, 200)}`,
      );
    const where = `${opName} ${req.method} ${show(req.path, 200)} body=${show(req.body)} [seed ${SEED}]`;
    if (out.status >= 500) failures.push(`${out.status} ${where} -> ${show(out.text, 400)}`);
    const format = errorFormatProblem(opName, out);
    if (format) failures.push(`${format}: ${where} -> ${show(out.text, 300)}`);
    if (before && out.status >= 400 && out.status < 500) {
      const after = await moneyState();
      if (JSON.stringify(after) !== JSON.stringify(before))
        failures.push(
          `state changed on a ${out.status}: ${where} ${JSON.stringify(before)} -> ${JSON.stringify(after)}`,
        );
    }
    return out;
  }

  // ---------------------------------------------------------------- hand-picked cases
  function handPicked(op: SpecOperation): Req[] {
    const method = op.method.toUpperCase();
    const ids: Record<string, string> = { ...FAKE_IDS, transactionId: txns[0] ?? FAKE_IDS.transactionId };
    const path = op.path.replace(/\{([^}]+)\}/g, (_m, name: string) => ids[name] ?? 'x');
    const cases: Req[] = [];
    const q = (s: string) => ({ method, path: `${path}?${s}`, headers: {} });
    for (const raw of [
      '%00=1',
      'limit=%00',
      'limit=1&limit=2',
      'limit[]=1',
      'limit=-0',
      'limit=1e308',
      'limit=9223372036854775808',
      'cursor=%FF%FE',
      'cursor=%ED%A0%80',
      'cursor=%E0%A4%A',
      'cursor=%',
      `cursor=${'A'.repeat(5000)}`,
      'client_id=%00&redirect_uri=https%3A%2F%2Fpartner.test%2Fcallback&response_type=code&scope=balance',
      `client_id=${partner.clientId}%00&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&response_type=code&scope=balance`,
      `client_id=${partner.clientId}&redirect_uri=${encodeURIComponent(REDIRECT_URI)}%00&response_type=code&scope=balance%00&state=%00`,
      `client_id=${partner.clientId}&redirect_uri=${encodeURIComponent(REDIRECT_URI)}&scope=balance&state=${'%F0%9F%99%82'.repeat(2000)}`,
      `client_id=${partner.clientId}&client_id=x&redirect_uri=${encodeURIComponent(REDIRECT_URI)}`,
      'a=1&'.repeat(2000),
    ])
      cases.push(q(raw));
    if (method === 'GET' || method === 'DELETE') return cases;
    const json = (body: string, ct = 'application/json'): Req => ({
      method,
      path,
      headers: { 'content-type': ct },
      body,
    });
    const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    const deepObj = (n: number) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
    cases.push(
      json(deep(5000)),
      json(deepObj(3000)),
      json(`{"amount":${deep(2000)}}`),
      json(`{"amount":1,"description":${deepObj(2000)}}`),
      json(JSON.stringify({ amount: 1, description: 'x'.repeat(17 * 1024) })),
      json(JSON.stringify({ amount: 1, description: 'x'.repeat(1024 * 1024) })),
      json(`[${'1,'.repeat(7000)}1]`),
      json('{"amount":1,"amount":"1"}'),
      json('{"amount":"1","amount":1}'),
      json('{"grant_type":"refresh_token","grant_type":{"$gt":""}}'),
      json(`{"token":"x","token":"\\u0000"}`),
      json(
        `{"client_id":"\\u0000","client_secret":"x","token":"x","grant_type":"refresh_token","refresh_token":"x"}`,
      ),
      json(
        `{"client_id":"${partner.clientId}","client_secret":"\\ud800","token":"\\udfff","grant_type":"refresh_token","refresh_token":"\\u0000"}`,
      ),
      json('{"__proto__":{"amount":1},"amount":1}'),
      json('{"constructor":{"prototype":{"polluted":true}},"amount":1}'),
      json('{"amount":1,"description":"\\u0000"}'),
      json('{"amount":1,"reason":"\\ud800"}'),
      json('{"\\u0000":1}'),
      json('{"\\ud800":"\\udfff"}'),
      json('null'),
      json('[]'),
      json('"amount"'),
      json('123'),
      json('true'),
      json(''),
      json('{'),
      json('{"amount":1}garbage'),
      json('\uFEFF{"amount":1}'),
      json('{"amount":1e400}'),
      json('{"amount":-0}'),
      json('{"amount":NaN}'),
      json('{"amount":1}', 'text/plain'),
      json('{"amount":1}', 'application/xml'),
      json('{"amount":1}', 'application/json; charset=utf-16'),
      json('{"amount":1}', 'application/json; charset=no-such-charset'),
      json('{"amount":1}', 'application/merge-patch+json'),
      json('{"amount":1}', 'multipart/form-data; boundary=x'),
      json('{"amount":1}', 'application/x-www-form-urlencoded'),
      json(
        'amount=1&description=%00&reason=%ED%A0%80&client_id=%00&token=%00',
        'application/x-www-form-urlencoded',
      ),
      json(
        `client_id=${partner.clientId}%00&client_secret=x&token=x&grant_type=refresh_token&refresh_token=x`,
        'application/x-www-form-urlencoded',
      ),
      json('a=1&'.repeat(100), 'application/x-www-form-urlencoded'),
      json('%=%&%%=%ZZ&=&&==', 'application/x-www-form-urlencoded'),
      json('{"amount":1}', 'application/json, text/plain'),
      json('{"amount":1}', ''),
      {
        method,
        path,
        headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
        body: '{"amount":1}',
      },
      {
        method,
        path,
        headers: { 'content-type': 'application/json', 'content-encoding': 'br' },
        body: '{"amount":1}',
      },
      {
        method,
        path,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${partner.clientId}%00:${partner.clientSecret}`).toString('base64')}`,
        },
        body: 'grant_type=refresh_token&refresh_token=x&token=x',
      },
      {
        method,
        path,
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`\u0000:\u0000`).toString('base64')}`,
        },
        body: 'grant_type=refresh_token&refresh_token=x&token=x',
      },
    );
    return cases;
  }

  /** Requests fetch refuses to send: written straight to a socket. */
  const RAW_REQUESTS = [
    'GET /api/v1/points/balance?x=%00 HTTP/1.1\r\nHost: a\r\nX-Privy-Id: \u00ff\u00fe\r\n\r\n',
    'GET /api/v1/points/transactions/txn_\u0000 HTTP/1.1\r\nHost: a\r\n\r\n',
    'GET /api/oauth2/authorize?client_id=\u00ff HTTP/1.1\r\nHost: a\r\n\r\n',
    'POST /api/oauth2/token HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n{"a":1}',
    'POST /api/oauth2/token HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{}',
    'POST /api/v1/points/deduct HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n',
    'POST /api/v1/points/deduct HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}',
    'GET /api/v1/points/balance HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer \u00e9\u00e9\r\nX-API-Key: \u00ff\r\n\r\n',
    'GET /api/oauth2/token/info HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer tcat_a\u0080b\r\n\r\n',
    // Header injection: a folded (obs-fold) continuation line, a NUL and a bare CR inside header values.
    'GET /api/v1/points/balance HTTP/1.1\r\nHost: a\r\nX-API-Key: tcsk_x\r\n X-Injected: 1\r\n\r\n',
    'GET /api/v1/points/balance HTTP/1.1\r\nHost: a\r\nX-API-Key: tcsk_\u0000x\r\n\r\n',
    'GET /api/v1/points/balance HTTP/1.1\r\nHost: a\r\nX-Privy-Id: did:privy:a\rX-Injected: 1\r\n\r\n',
  ];

  function rawRequest(text: string): Promise<number> {
    const { port } = new URL(target);
    rawSent++;
    return new Promise((resolve) => {
      const socket = net.connect(Number(port), '127.0.0.1');
      let data = '';
      socket.setTimeout(3_000, () => socket.destroy());
      socket.on('data', (d) => {
        data += d.toString('latin1');
        if (/\r\n\r\n/.test(data)) socket.end();
      });
      socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0)));
      socket.on('error', () => resolve(0));
      socket.write(Buffer.from(text, 'latin1'));
    });
  }

  return {
    seed: SEED,
    runs: RUNS,
    operations,
    failures,
    requests: () => rawSent + [...stats.values()].reduce((n, s) => n + s.requests, 0),
    async runOperation(op) {
      const samples = fc.sample(inputArbitrary(op), { numRuns: RUNS, seed: SEED });
      for (const g of samples) {
        const out = await exercise(op.operationId, await buildRequest(op, g));
        // rotateClientSecret changes the key that authenticates it: follow it.
        if (op.operationId === 'rotateClientSecret' && out?.status === 200) {
          const secret = (JSON.parse(out.text) as { clientSecret?: string }).clientSecret;
          if (secret) rotating = { ...rotating, clientSecret: secret };
        }
      }
      for (const req of handPicked(op)) {
        const auth = await authHeaders(op, authKinds(op)[0] ?? 'none', [
          partner.clientId,
          partner.clientSecret,
        ]);
        await exercise(op.operationId, { ...req, headers: { ...auth, ...req.headers } });
      }
      const s = stats.get(op.operationId);
      const seen = [...(s?.statuses ?? [])].sort(([a], [b]) => a - b).map(([k, n]) => `${k}x${n}`);
      return {
        requests: s?.requests ?? 0,
        line: `${op.operationId.padEnd(32)} ${String(s?.requests ?? 0).padStart(4)} requests  ${seen.join(' ')}`,
      };
    },
    async runRaw() {
      for (const text of RAW_REQUESTS) {
        const status = await rawRequest(text);
        if (status >= 500) failures.push(`${status} raw ${show(text)}`);
      }
      return RAW_REQUESTS.length;
    },
    ledgerMismatches: async () =>
      (
        await t.db.query<{ id: string; balance: number; sum: string }>(
          `select u.id, u.balance, coalesce(sum(l.amount), 0)::text as sum
         from users u left join ledger_entries l on l.user_id = u.id group by u.id, u.balance`,
        )
      ).filter((r) => String(r.balance) !== r.sum),
  };
}
