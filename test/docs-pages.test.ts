import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSpec, SPEC_PATH } from '../src/http/spec.js';
import { startTestServer, type TestServer } from './support/harness.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t?.stop());

const spec = loadSpec();
const errorCodes: string[] = spec.components.schemas.ErrorCode.enum;
/** The status each code's line in the ErrorCode description gives it. */
const statusOf = new Map(
  [...String(spec.components.schemas.ErrorCode.description).matchAll(/- `([a-z_]+)` \((\d{3})\)/g)].map(
    (m) => [m[1], m[2]],
  ),
);

describe('the first ten minutes: landing page, spec, docs', () => {
  it('/ is a landing page linking to the docs, the spec, wallet sign-in and the partner dashboard', async () => {
    const res = await fetch(`${t.url}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    const page = await res.text();
    for (const href of [
      '/docs',
      '/openapi.yaml',
      '/wallet/login',
      '/dashboard',
      '/docs/errors',
      '/docs/webhooks',
    ]) {
      expect(page).toContain(`href="${href}"`);
    }
    expect(page).toContain('npm run demo');
  });

  it('/openapi.yaml serves the very file the server validates against, as application/yaml', async () => {
    const res = await fetch(`${t.url}/openapi.yaml`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/yaml/);
    expect(await res.text()).toBe(readFileSync(SPEC_PATH, 'utf8'));
  });

  it('/docs loads only scripts served by this server, under a CSP without inline script or eval', async () => {
    const res = await fetch(`${t.url}/docs`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/unsafe-eval|https?:|\*/);
    expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
    const page = await res.text();
    const srcs = [...page.matchAll(/<(?:script|link)[^>]+(?:src|href)="([^"]+)"/g)].map((m) => m[1] ?? '');
    expect(srcs).toEqual(
      expect.arrayContaining([
        '/docs/assets/swagger-ui.css',
        '/docs/assets/swagger-ui-bundle.js',
        '/docs/assets/swagger-init.js',
      ]),
    );
    expect(page).not.toMatch(/<script>|<script [^>]*>[^<]/);
    for (const src of srcs.filter((s) => s.startsWith('/docs/assets/'))) {
      const asset = await fetch(`${t.url}${src}`);
      expect(asset.status, src).toBe(200);
      expect(asset.headers.get('content-type'), src).toMatch(/^text\/(css|javascript)/);
      await asset.arrayBuffer();
    }
    expect((await fetch(`${t.url}/docs/assets/index.html`)).status).toBe(404);
    expect((await fetch(`${t.url}/docs/assets/..%2fpackage.json`)).status).toBe(404);
  });

  it('/docs/webhooks lists every webhook event of openapi.yaml with its payload, and how to verify a signature', async () => {
    const res = await fetch(`${t.url}/docs/webhooks`);
    expect(res.status).toBe(200);
    const page = await res.text();
    for (const event of Object.keys(spec.webhooks)) expect(page).toContain(`id="${event}"`);
    for (const header of ['webhook-id', 'webhook-timestamp', 'webhook-signature'])
      expect(page).toContain(header);
    expect(page).toContain('standardwebhooks');
    expect(page).toContain('revokedBy');
  });
});

describe('every problem type resolves to a page explaining the code', () => {
  it('each ErrorCode of openapi.yaml has a page with its status, when it happens and what to do', async () => {
    expect(errorCodes.length).toBeGreaterThan(30);
    for (const code of errorCodes) {
      const res = await fetch(`${t.url}/docs/errors/${code}`);
      expect(res.status, code).toBe(200);
      const page = await res.text();
      expect(page, code).toContain(`<h1><code>${code}</code></h1>`);
      expect(page, code).toContain(`HTTP ${statusOf.get(code)}`);
      expect(page, code).toContain('When it happens');
      expect(page, code).toContain('What to do');
    }
  });

  it("a code's page shows the spec's example problem for it", async () => {
    const page = await (await fetch(`${t.url}/docs/errors/insufficient_points`)).text();
    expect(page).toContain('<h2>Example</h2>');
    expect(page).toContain('&#34;balance&#34;: 5');
  });

  it('the index lists every code and links to its page; an unknown code is an HTML 404', async () => {
    const index = await (await fetch(`${t.url}/docs/errors`)).text();
    for (const code of errorCodes) expect(index).toContain(`href="/docs/errors/${code}"`);
    expect(index).toContain('invalid_grant');
    const unknown = await fetch(`${t.url}/docs/errors/no_such_code`);
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toMatch(/^text\/html/);
  });

  it('the type of a real 401 and a real 404 from the API is a page on this server', async () => {
    for (const path of ['/api/v1/points/balance', '/api/v1/no-such-thing']) {
      const res = await fetch(`${t.url}${path}`);
      expect(res.status).toBeGreaterThanOrEqual(400);
      const problem = (await res.json()) as { type: string; code: string };
      expect(problem.type).toBe(`${t.url}/docs/errors/${problem.code}`);
      const page = await fetch(problem.type);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain(`<code>${problem.code}</code>`);
    }
  });
});
