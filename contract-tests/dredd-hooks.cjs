// Dredd hooks for TIAN Points (CommonJS: Dredd's Node hooks are require()d).
// The runner (contract-tests/run-dredd.ts) seeds the database and writes credentials to the JSON file
// named by TIAN_DREDD_SEED. Every transaction is either driven for real (credentials, real resource
// ids, unique idempotency keys, a request that provokes the documented status) or skipped with a
// reason that the runner prints. The spec-driven suite (npm run test:contract) covers every error
// status; Dredd's job is proving each operation's documented success path end to end.
const fs = require('node:fs');
const { randomUUID } = require('node:crypto');
const hooks = require('hooks');

const seed = JSON.parse(fs.readFileSync(process.env.TIAN_DREDD_SEED, 'utf8'));
const report = { seen: 0, skipped: [], problems: [] };
const seenNames = new Set();
const uniq = (p) => `${p}_${randomUUID().replace(/-/g, '')}`;

function setHeader(t, name, value) {
  for (const k of Object.keys(t.request.headers))
    if (k.toLowerCase() === name.toLowerCase()) delete t.request.headers[k];
  if (value !== undefined) t.request.headers[name] = value;
}
function legacy(t, user) {
  setHeader(t, 'X-API-Key', seed.apiKey);
  setHeader(t, 'X-Privy-Id', user.privyId);
  setHeader(t, 'X-Privy-Session-Token', user.sessionToken);
}
function bearer(t, token) {
  setHeader(t, 'X-API-Key');
  setHeader(t, 'X-Privy-Id');
  setHeader(t, 'X-Privy-Session-Token');
  setHeader(t, 'Authorization', `Bearer ${token}`);
}
function setPath(t, path) {
  t.fullPath = path;
  t.request.uri = path;
}
function jsonBody(t) {
  try {
    return t.request.body ? JSON.parse(t.request.body) : {};
  } catch {
    return {};
  }
}
function setJson(t, body) {
  t.request.body = JSON.stringify(body);
  setHeader(t, 'Content-Type', 'application/json');
}
function skip(t, reason) {
  t.skip = true;
  report.skipped.push({ name: t.name, reason });
}
const legacyHeaders = (user) => ({
  'x-api-key': seed.apiKey,
  'x-privy-id': user.privyId,
  'x-privy-session-token': user.sessionToken,
  'content-type': 'application/json',
});
async function call(method, path, headers, body) {
  const res = await fetch(new URL(path, seed.baseUrl), {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = await res.json().catch(() => undefined);
  if (res.status >= 300) throw new Error(`${method} ${path} -> ${res.status} ${JSON.stringify(json)}`);
  return json;
}
const deduct = (user, amount) =>
  call('POST', '/api/v1/points/deduct', legacyHeaders(user), { amount, description: 'dredd setup' });
const partnerHeaders = () => ({ 'x-api-key': seed.apiKey, 'content-type': 'application/json' });
const newEndpoint = () =>
  call('POST', '/api/v1/partner/webhook-endpoints', partnerHeaders(), {
    url: 'https://partner.test/hooks',
    events: ['points.deducted'],
  });
const newSubscription = () =>
  call('POST', '/api/v1/subscriptions', legacyHeaders(seed.users.main), {
    planName: 'Dredd plan',
    amount: 1,
    idempotencyKey: uniq('sub'),
  });
const withQuery = (path, q) => `${path.split('?')[0]}?${new URLSearchParams(q)}`;

/** Replaces the {id} segment of the spec path with `id`. */
function pathWithId(specPath, id) {
  return specPath.replace(/\{[^}]+\}/, id);
}
// test/support/fake-ids.ts, handed over in the seed file.
function fakeIdPath(specPath) {
  return specPath.replace(/\{([^}]+)\}/, (_, name) => seed.fakeIds[name] ?? 'x_0000000000');
}

const WEBHOOK_OPS = new Set([
  'createWebhookEndpoint',
  'updateWebhookEndpoint',
  'sendTestWebhook',
  'recoverWebhookDeliveries',
  'resendWebhookDelivery',
]);
const disableEndpoint = (endpointId) =>
  call('PATCH', `/api/v1/partner/webhook-endpoints/${endpointId}`, partnerHeaders(), { enabled: false });

/** 422: a URL the SSRF rules refuse, or a recovery window in the future. */
async function prepareWebhookRefusal(t, op, specPath) {
  if (op === 'createWebhookEndpoint')
    return setJson(t, { url: 'http://partner.test/plain-http', events: ['points.deducted'] });
  setPath(t, pathWithId(specPath, (await newEndpoint()).endpointId));
  if (op === 'updateWebhookEndpoint') return setJson(t, { url: 'https://169.254.169.254/latest/meta-data' });
  return setJson(t, { since: '2999-01-01T00:00:00.000Z' });
}

/** 409: the endpoint (of the delivery) is disabled. */
async function prepareWebhookConflict(t, op, specPath) {
  const ep = await newEndpoint();
  if (op === 'resendWebhookDelivery') {
    const delivery = await call(
      'POST',
      `/api/v1/partner/webhook-endpoints/${ep.endpointId}/test`,
      partnerHeaders(),
    );
    await disableEndpoint(ep.endpointId);
    return setPath(t, pathWithId(specPath, delivery.deliveryId));
  }
  await disableEndpoint(ep.endpointId);
  return setPath(t, pathWithId(specPath, ep.endpointId));
}

async function prepare(t) {
  const [specPath] = t.name.split(' > ');
  const method = t.request.method.toUpperCase();
  const meta = seed.operations[`${method} ${specPath}`];
  const status = String(t.expected.statusCode);
  if (!meta) return skip(t, 'no such operation in openapi.yaml (hook bug)');
  const op = meta.operationId;
  const reqType =
    Object.entries(t.request.headers).find(([k]) => k.toLowerCase() === 'content-type')?.[1] ?? '';
  // Conditional headers (`Idempotent-Replayed` only on replays, `WWW-Authenticate` only after HTTP
  // Basic) are optional in the spec, but Dredd treats every documented response header as required.
  for (const h of Object.keys(t.expected.headers ?? {})) {
    if (['idempotent-replayed', 'www-authenticate'].includes(h.toLowerCase())) delete t.expected.headers[h];
  }
  const key = `${t.name} [${reqType}]`;
  if (seenNames.has(key)) {
    return skip(
      t,
      'duplicate Dredd transaction (Dredd names every status of a shared response $ref after the last one: OAuthBadRequest under 400/413/415 all become "415")',
    );
  }
  seenNames.add(key);

  if (status === '429')
    return skip(
      t,
      'rate limit (6000/min) not reachable here: covered by the spec-driven suite (second server, RATE_LIMIT_PER_MINUTE=1)',
    );
  if (status === '503')
    return skip(
      t,
      'needs a database outage: covered by the spec-driven suite (a server whose database refuses connections) and test/outage.test.ts',
    );
  if (status === '409' && op !== 'cancelSubscription' && !WEBHOOK_OPS.has(op))
    return skip(
      t,
      'needs an idempotency key held in flight: covered by the spec-driven suite (advisory lock held from a second connection)',
    );

  // Credentials by operation kind.
  const oauthOp = [
    'authorize',
    'createToken',
    'revokeToken',
    'introspectToken',
    'getTokenInfo',
    'getAuthorizationServerMetadata',
  ].includes(op);
  if (oauthOp) return prepareOAuth(t, op, status, specPath, reqType);
  if (meta.auth === 'user') legacy(t, seed.users.main);
  if (meta.auth === 'partner')
    setHeader(t, 'X-API-Key', op === 'rotateClientSecret' ? seed.rotatingApiKey : seed.apiKey);
  if (t.request.body && /json/.test(reqType)) {
    const b = jsonBody(t);
    if ('idempotencyKey' in b) b.idempotencyKey = uniq('dredd');
    setJson(t, b);
  }
  setHeader(t, 'Idempotency-Key');

  switch (status) {
    case '400': {
      if (/\{[^}]+\}/.test(specPath)) setPath(t, pathWithId(specPath, 'not-an-id'));
      else if (method === 'GET' || !t.request.body)
        setPath(t, withQuery(specPath, { unexpected_param: '1' }));
      else setJson(t, { ...jsonBody(t), unexpected_field: true });
      return;
    }
    case '401':
      setHeader(t, 'X-API-Key', op === 'getBalance' || meta.auth === 'partner' ? undefined : seed.apiKey);
      setHeader(t, 'X-Privy-Session-Token');
      setHeader(t, 'X-API-Key');
      return;
    case '403': {
      const needsBalance = ['getBalance', 'listTransactions', 'getTransaction'].includes(op);
      bearer(t, seed.oauthTokens[needsBalance ? 'deductOnly' : 'balanceOnly'].access_token);
      return;
    }
    case '404':
      if (meta.notFound === 'user') legacy(t, seed.users.ghost);
      else setPath(t, fakeIdPath(specPath));
      return;
    case '402':
      legacy(t, seed.users.poor);
      setJson(t, { ...jsonBody(t), amount: 1000 });
      return;
    case '413':
      setJson(t, { ...jsonBody(t), description: 'x'.repeat(17 * 1024) });
      return;
    case '415':
      t.request.body = 'amount=10';
      setHeader(t, 'Content-Type', 'text/plain');
      return;
    case '422':
      if (WEBHOOK_OPS.has(op)) return prepareWebhookRefusal(t, op, specPath);
      if (op === 'refundTransaction') {
        const d = await deduct(seed.users.main, 3);
        setPath(t, pathWithId(specPath, d.transactionId));
        setJson(t, { amount: 4, reason: 'more than deducted' });
      } else {
        const k = uniq('reused');
        const first = { ...jsonBody(t), idempotencyKey: k };
        await call(method, specPath, legacyHeaders(seed.users.main), first);
        setJson(t, { ...first, amount: first.amount + 1 });
      }
      return;
    case '409': {
      if (WEBHOOK_OPS.has(op)) return prepareWebhookConflict(t, op, specPath);
      // cancelSubscription: a subscription that has already ended.
      const sub = await newSubscription();
      await call(
        'POST',
        `/api/v1/subscriptions/${sub.subscriptionId}/cancel`,
        legacyHeaders(seed.users.main),
      );
      return setPath(t, pathWithId(specPath, sub.subscriptionId));
    }
    default:
      return prepareSuccess(t, op, specPath);
  }
}

async function prepareSuccess(t, op, specPath) {
  switch (op) {
    case 'getTransaction': {
      const d = await deduct(seed.users.main, 10);
      return setPath(t, pathWithId(specPath, d.transactionId));
    }
    case 'refundTransaction': {
      const d = await deduct(seed.users.main, 10);
      return setPath(t, pathWithId(specPath, d.transactionId));
    }
    case 'getSubscription':
    case 'cancelSubscription':
      return setPath(t, pathWithId(specPath, (await newSubscription()).subscriptionId));
    case 'getWebhookEndpoint':
    case 'updateWebhookEndpoint':
    case 'deleteWebhookEndpoint':
    case 'sendTestWebhook':
    case 'rotateWebhookSecret':
    case 'recoverWebhookDeliveries':
      return setPath(t, pathWithId(specPath, (await newEndpoint()).endpointId));
    case 'getWebhookDelivery':
    case 'resendWebhookDelivery': {
      const ep = await newEndpoint();
      const delivery = await call(
        'POST',
        `/api/v1/partner/webhook-endpoints/${ep.endpointId}/test`,
        partnerHeaders(),
      );
      return setPath(t, pathWithId(specPath, delivery.deliveryId));
    }
    default:
      return undefined;
  }
}

function prepareOAuth(t, op, status, specPath, reqType) {
  const form = /x-www-form-urlencoded/.test(reqType);
  const setBody = (obj) => {
    if (form) {
      t.request.body = new URLSearchParams(obj).toString();
      setHeader(t, 'Content-Type', 'application/x-www-form-urlencoded');
    } else setJson(t, obj);
  };
  const tokens = seed.oauthTokens;
  const client = { client_id: seed.clientId, client_secret: seed.apiKey };
  switch (`${op} ${status}`) {
    case 'getAuthorizationServerMetadata 200':
      return;
    case 'authorize 200':
      return setPath(
        t,
        withQuery(specPath, {
          response_type: 'code',
          client_id: seed.clientId,
          redirect_uri: seed.redirectUri,
          scope: 'balance',
          state: 'dredd',
        }),
      );
    case 'authorize 302':
      return setPath(
        t,
        withQuery(specPath, {
          response_type: 'code',
          client_id: seed.clientId,
          redirect_uri: seed.redirectUri,
          scope: 'no_such_scope',
          state: 'dredd',
        }),
      );
    case 'authorize 400':
      return setPath(
        t,
        withQuery(specPath, {
          response_type: 'code',
          client_id: 'tc_live_unknown',
          redirect_uri: seed.redirectUri,
          scope: 'balance',
        }),
      );
    case 'createToken 200':
      return setBody({
        grant_type: 'refresh_token',
        refresh_token: tokens[form ? 'refreshForm' : 'refreshJson'].refresh_token,
        ...client,
      });
    case 'createToken 401':
      return setBody({
        grant_type: 'refresh_token',
        refresh_token: 'tcrt_unknown',
        client_id: seed.clientId,
        client_secret: 'tcsk_wrong',
      });
    case 'createToken 415':
    case 'revokeToken 415':
    case 'introspectToken 415':
      t.request.body = 'token=x';
      return setHeader(t, 'Content-Type', 'text/plain');
    case 'revokeToken 200':
      return setBody({ token: tokens[form ? 'revokeForm' : 'revokeJson'].access_token, ...client });
    case 'revokeToken 401':
    case 'introspectToken 401':
      return setBody({ token: 'tcat_unknown', client_id: seed.clientId, client_secret: 'tcsk_wrong' });
    case 'introspectToken 200':
      return setBody({ token: tokens.full.access_token, ...client });
    case 'getTokenInfo 200':
      return setHeader(t, 'Authorization', `Bearer ${tokens.full.access_token}`);
    case 'getTokenInfo 401':
      return setHeader(t, 'Authorization', 'Bearer tcat_not_a_real_token');
    default:
      // Dredd runs each operation's success path: one without a driver here is a gap, not a skip.
      if (status.startsWith('2')) throw new Error(`no driver for ${op} ${status} in the Dredd hooks`);
      return skip(t, `no driver for ${op} ${status} in the Dredd hooks (covered by the spec-driven suite)`);
  }
}

hooks.beforeEach((t, done) => {
  report.seen++;
  prepare(t).then(
    () => done(),
    (err) => {
      report.problems.push(`${t.name}: ${err.message}`);
      t.fail = `setup failed: ${err.message}`;
      done();
    },
  );
});

// Dredd compares Content-Type exactly; express adds "; charset=utf-8".
hooks.beforeEachValidation((t, done) => {
  for (const k of Object.keys(t.real.headers ?? {})) {
    if (k.toLowerCase() === 'content-type')
      t.real.headers[k] = String(t.real.headers[k]).replace(/;\s*charset=[^;]+/i, '');
  }
  done();
});

hooks.afterAll((_transactions, done) => {
  fs.writeFileSync(seed.reportFile, JSON.stringify(report, null, 2));
  done();
});
