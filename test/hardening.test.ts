import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { securityHeaders } from '../src/http/hardening.js';
import { startTestServer, type TestServer } from './support/harness.js';

// Security headers on every response, a strict CORS policy (none unless CORS_ORIGINS lists the
// origin, and then only on the browser-facing operations), and body limits everywhere.

const PARTNER_ORIGIN = 'https://app.partner.test';
let plain: TestServer;
let withCors: TestServer;

beforeAll(async () => {
  [plain, withCors] = await Promise.all([
    startTestServer(),
    startTestServer({ CORS_ORIGINS: `${PARTNER_ORIGIN}, https://other.partner.test:8443` }),
  ]);
});
afterAll(async () => {
  await Promise.all([plain?.stop(), withCors?.stop()]);
});

const preflight = (url: string, origin: string, method: string, headers = 'authorization') =>
  fetch(url, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers },
  });

describe('security headers', () => {
  it('API responses: nosniff, no-referrer, never framed, load nothing; no HSTS outside production', async () => {
    const res = await fetch(`${plain.url}/api/v1/points/balance`);
    expect(res.status).toBe(401);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(res.headers.get('cross-origin-resource-policy')).toBe('same-origin');
    expect(res.headers.get('strict-transport-security')).toBeNull();
    expect(res.headers.get('x-powered-by')).toBeNull();
  });

  it("pages keep their own Content-Security-Policy (forms to 'self', no framing) and gain the other headers", async () => {
    const res = await fetch(`${plain.url}/wallet/login`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("form-action 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-eval');
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  });

  it('production adds HSTS (one year, subdomains)', async () => {
    const app = express();
    app.use(securityHeaders({ production: true } as Parameters<typeof securityHeaders>[0]));
    app.get('/', (_req, res) => res.json({}));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      const res = await fetch(`http://127.0.0.1:${port}/`);
      expect(res.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
    } finally {
      server.close();
    }
  });
});

describe('CORS', () => {
  it('without CORS_ORIGINS no response allows any origin, and a preflight is refused', async () => {
    const res = await fetch(`${plain.url}/api/v1/points/balance`, { headers: { origin: PARTNER_ORIGIN } });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const pre = await preflight(`${plain.url}/api/v1/points/deduct`, PARTNER_ORIGIN, 'POST');
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    expect(pre.status).toBe(405);
  });

  it('a listed origin may call the points API with an access token: preflight 204, then the answer is readable', async () => {
    const pre = await preflight(
      `${withCors.url}/api/v1/points/deduct`,
      PARTNER_ORIGIN,
      'POST',
      'authorization,content-type,idempotency-key',
    );
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(PARTNER_ORIGIN);
    expect(pre.headers.get('access-control-allow-methods')).toBe('POST');
    expect(pre.headers.get('access-control-allow-headers')).toBe(
      'Authorization,Content-Type,Idempotency-Key,X-Request-Id',
    );
    expect(pre.headers.get('access-control-allow-credentials')).toBeNull();
    expect(pre.headers.get('vary')).toContain('Origin');

    const partner = await withCors.partner();
    const user = await withCors.user({ points: 7 });
    const { accessToken } = await withCors.tokens(partner.id, user.id, 'balance');
    const res = await fetch(`${withCors.url}/api/v1/points/balance`, {
      headers: { origin: PARTNER_ORIGIN, authorization: `Bearer ${accessToken}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe(PARTNER_ORIGIN);
    expect(res.headers.get('access-control-expose-headers')).toContain('Retry-After');
    expect(res.headers.get('access-control-expose-headers')).toContain('X-Request-Id');
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    // Errors are readable too, so the page can show why.
    const refused = await fetch(`${withCors.url}/api/v1/points/balance`, {
      headers: { origin: PARTNER_ORIGIN, authorization: 'Bearer tcat_nope' },
    });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('access-control-allow-origin')).toBe(PARTNER_ORIGIN);
  });

  it('a preflight on a path with parameters names only the methods that have CORS', async () => {
    const pre = await preflight(
      `${withCors.url}/api/v1/subscriptions/sub_0123456789ab/cancel`,
      PARTNER_ORIGIN,
      'POST',
    );
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-methods')).toBe('POST');
    const metadata = await fetch(`${withCors.url}/.well-known/oauth-authorization-server`, {
      headers: { origin: 'https://other.partner.test:8443' },
    });
    expect(metadata.headers.get('access-control-allow-origin')).toBe('https://other.partner.test:8443');
  });

  it('an origin not listed gets nothing, on the preflight and on the request', async () => {
    const pre = await preflight(`${withCors.url}/api/v1/points/deduct`, 'https://evil.test', 'POST');
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    const res = await fetch(`${withCors.url}/api/v1/points/balance`, {
      headers: { origin: 'https://evil.test' },
    });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('no CORS on the credential endpoints, the partner API, the authorization endpoint or the wallet pages', async () => {
    for (const path of ['/api/oauth2/token', '/api/oauth2/revoke', '/api/oauth2/introspect']) {
      const pre = await preflight(`${withCors.url}${path}`, PARTNER_ORIGIN, 'POST');
      expect(pre.headers.get('access-control-allow-origin'), path).toBeNull();
      const res = await fetch(`${withCors.url}${path}`, {
        method: 'POST',
        headers: { origin: PARTNER_ORIGIN, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'token=x',
      });
      expect(res.headers.get('access-control-allow-origin'), path).toBeNull();
    }
    const partner = await withCors.partner();
    const gets = [
      ['/api/v1/partner/webhook-endpoints', { 'x-api-key': partner.clientSecret }],
      ['/api/v1/partner', { 'x-api-key': partner.clientSecret }],
      [`/api/oauth2/authorize?response_type=code&client_id=${partner.clientId}`, {}],
      ['/wallet/login', {}],
      ['/healthz', {}],
    ] as const;
    for (const [path, headers] of gets) {
      const res = await fetch(`${withCors.url}${path}`, {
        headers: { origin: PARTNER_ORIGIN, ...headers },
        redirect: 'manual',
      });
      expect(res.headers.get('access-control-allow-origin'), path).toBeNull();
    }
    // The legacy flow's partner API key is not a header a page may send.
    const pre = await preflight(`${withCors.url}/api/v1/points/balance`, PARTNER_ORIGIN, 'GET', 'x-api-key');
    expect(pre.headers.get('access-control-allow-headers')).not.toMatch(/x-api-key/i);
  });

  it("CORS_ORIGINS takes exact origins only: '*', paths and other schemes are refused at start-up", () => {
    for (const bad of ['*', 'https://app.test/', 'https://app.test/path', 'ftp://app.test', 'app.test']) {
      expect(() => loadConfig({ CORS_ORIGINS: bad }), bad).toThrow(ConfigError);
    }
    expect(loadConfig({ CORS_ORIGINS: 'https://a.test, http://127.0.0.1:5173' }).corsOrigins).toEqual([
      'https://a.test',
      'http://127.0.0.1:5173',
    ]);
  });
});

describe('body limits', () => {
  const big = 'x'.repeat(17 * 1024);

  it('a JSON body over 16 KiB is a 413 problem', async () => {
    const res = await fetch(`${plain.url}/api/v1/points/deduct`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer tcat_x' },
      body: JSON.stringify({ amount: 1, description: big }),
    });
    expect(res.status).toBe(413);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(await res.json()).toMatchObject({ status: 413, code: 'payload_too_large' });
  });

  it('a form over 16 KiB on an OAuth endpoint is a 413 in the OAuth error format', async () => {
    const res = await fetch(`${plain.url}/api/oauth2/revoke`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: big }).toString(),
    });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('a form over 16 KiB or over 50 fields on a page is a 413 page', async () => {
    for (const path of ['/wallet/login', '/dashboard/login']) {
      for (const body of [`email=${big}`, Array.from({ length: 60 }, (_, i) => `f${i}=1`).join('&')]) {
        const res = await fetch(`${plain.url}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body,
        });
        expect(res.status, path).toBe(413);
        expect(res.headers.get('content-type'), path).toContain('text/html');
        expect(await res.text()).toContain('Form too large');
      }
    }
  });
});
