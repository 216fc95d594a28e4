import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumAvailable, launchChromium } from './support/browser.js';
import { startTestServer, type TestServer } from './support/harness.js';
import { expectAccessible, saveScreenshot } from './support/page-checks.js';

const run = chromiumAvailable();
let t: TestServer;
let browser: Browser;

beforeAll(async () => {
  if (!run) return;
  t = await startTestServer();
  browser = await launchChromium();
}, 60_000);
afterAll(async () => {
  await browser?.close();
  await t?.stop();
});

/**
 * A page whose network is limited to the server itself: any request elsewhere is aborted and
 * recorded, and so is every CSP violation or page error the browser reports.
 */
async function openLocalOnly(path: string): Promise<{ page: Page; offsite: string[]; problems: string[] }> {
  const page = await browser.newPage();
  const offsite: string[] = [];
  const problems: string[] = [];
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${t.url}/`) || url.startsWith('data:')) return route.continue();
    offsite.push(url);
    return route.abort();
  });
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(`${t.url}${path}`);
  return { page, offsite, problems };
}

describe.runIf(run)('docs pages in Chromium', () => {
  it('the landing page says what this is and links to the docs, spec, wallet sign-in and dashboard', async () => {
    const { page, offsite, problems } = await openLocalOnly('/');
    await page.getByRole('heading', { name: 'TIAN Points', level: 1 }).waitFor();
    for (const name of ['API reference', 'openapi.yaml', 'Sign in to your wallet', 'Partner dashboard']) {
      expect(await page.getByRole('link', { name, exact: true }).first().isVisible(), name).toBe(true);
    }
    await saveScreenshot(page, 'docs-landing');
    await expectAccessible(page);
    await page.getByRole('link', { name: 'Sign in to your wallet' }).click();
    await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
    expect([offsite, problems]).toEqual([[], []]);
    await page.close();
  });

  it('/docs renders the API reference, webhooks included, with the network limited to the server itself', async () => {
    const { page, offsite, problems } = await openLocalOnly('/docs');
    // Swagger UI has fetched /openapi.yaml and rendered its operations.
    await page.locator('.opblock-summary-path', { hasText: '/api/v1/points/deduct' }).first().waitFor();
    await page.getByText('Webhooks', { exact: true }).first().waitFor();
    const text = await page.locator('#swagger-ui').innerText();
    for (const event of ['token.revoked', 'points.deducted', 'subscription.renewed'])
      expect(text).toContain(event);
    await saveScreenshot(page, 'docs-reference');
    await expectAccessible(page);
    // A webhook event opens to its payload schema, like any operation.
    await page.locator('#operations-webhooks-onTokenRevoked .opblock-summary-control').click();
    await page.locator('#operations-webhooks-onTokenRevoked').getByText('revokedBy').first().waitFor();
    await saveScreenshot(page, 'docs-reference-webhook-open');
    await expectAccessible(page);
    expect(offsite).toEqual([]);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('/docs/webhooks shows each event payload and the signature check', async () => {
    const { page, offsite, problems } = await openLocalOnly('/docs/webhooks');
    await page.getByRole('heading', { name: 'Verify a signature' }).waitFor();
    await page.getByRole('heading', { name: /token\.revoked/ }).waitFor();
    await saveScreenshot(page, 'docs-webhooks');
    await expectAccessible(page);
    expect([offsite, problems]).toEqual([[], []]);
    await page.close();
  });

  it('the error index leads to a page explaining a code', async () => {
    const { page, offsite, problems } = await openLocalOnly('/docs/errors');
    await saveScreenshot(page, 'docs-errors-index');
    await expectAccessible(page);
    await page.getByRole('link', { name: 'insufficient_points', exact: true }).click();
    await page.getByRole('heading', { name: 'insufficient_points', level: 1 }).waitFor();
    await page.getByRole('heading', { name: 'What to do' }).waitFor();
    await saveScreenshot(page, 'docs-error-insufficient_points');
    await expectAccessible(page);
    expect([offsite, problems]).toEqual([[], []]);
    await page.close();
  });
});
