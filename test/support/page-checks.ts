import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Page } from 'playwright-core';

/** Where browser tests leave their screenshots (git-ignored; CI can keep it as an artifact). */
export const ARTIFACTS_DIR = join(process.cwd(), 'test-artifacts', 'screenshots');

/** Saves a full-page screenshot as test-artifacts/screenshots/<name>.png and returns its path. */
export async function saveScreenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name.replace(/[^a-z0-9._-]+/gi, '-')}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

type AxeViolation = { id: string; impact: string | null; help: string; nodes: { target: unknown[] }[] };

const axeSource: string = createRequire(import.meta.url)('axe-core').source;

/**
 * Runs axe-core (WCAG 2.x A and AA rules) on the page as it is now and fails the test on any serious
 * or critical violation, naming each. axe is injected through the DevTools protocol (playwright's
 * addScriptTag with content is an inline script, which our pages' CSP would block), so the page's
 * own CSP stays as strict as it is in production.
 */
export async function expectAccessible(page: Page): Promise<void> {
  const session = await page.context().newCDPSession(page);
  await session.send('Runtime.evaluate', { expression: axeSource });
  const { result } = await session.send('Runtime.evaluate', {
    expression: `axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
      .then(r => JSON.stringify(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => ({ target: n.target })) }))))`,
    awaitPromise: true,
    returnByValue: true,
  });
  await session.detach();
  const violations = JSON.parse(String(result.value)) as AxeViolation[];
  const serious = violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map(
      (v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => JSON.stringify(n.target)).join(', ')})`,
    );
  if (serious.length > 0) {
    throw new Error(`accessibility violations on ${page.url()}:\n${serious.join('\n')}`);
  }
}
