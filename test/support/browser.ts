import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Browser, Page } from 'playwright-core';
import type { NewPartner } from '../../src/partners/partners.js';
import { startTestServer, type TestServer } from './harness.js';

export const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Whether the browser suite can run. In CI a missing Chromium is a failure, not a skip: the suite
 * throws. Elsewhere it is skipped with a message saying how to get it.
 */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI === 'true') {
    throw new Error(`${CHROMIUM} is missing; CI must install it (apt-get install -y chromium).`);
  }
  console.warn(`[tests] SKIPPING the browser suite: ${CHROMIUM} is missing (apt-get install -y chromium).`);
  return false;
}

export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/** A partner's loopback redirect URI: a tiny server that records every callback it gets. */
export async function startCallbackServer(): Promise<{
  url: string;
  calls: URL[];
  close(): Promise<void>;
}> {
  const calls: URL[] = [];
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://127.0.0.1');
    calls.push(u);
    res.writeHead(200, { 'content-type': 'text/plain' }).end('partner callback');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}/callback`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export type ChromiumSuite = {
  t: TestServer;
  browser: Browser;
  /** The partner's redirect URI: a loopback server recording every callback. */
  callback: Awaited<ReturnType<typeof startCallbackServer>>;
  partner: Awaited<ReturnType<TestServer['partner']>>;
  /** The absolute authorize URL of a code-flow request by this partner to its callback. */
  authorizeUrl(query: { scope: string; state: string }): string;
  stop(): Promise<void>;
};

/** What a real-browser suite needs: the server, a partner redirecting to a loopback callback, Chromium. */
export async function startChromiumSuite(partnerInput: Partial<NewPartner>): Promise<ChromiumSuite> {
  const t = await startTestServer({ AUTH_RATE_LIMIT_PER_MINUTE: '1000' });
  const callback = await startCallbackServer();
  let browser: Browser | undefined;
  const stop = async () => {
    await browser?.close();
    await callback.close();
    await t.stop();
  };
  try {
    const partner = await t.partner({ ...partnerInput, redirectUris: [callback.url] });
    browser = await launchChromium();
    return {
      t,
      browser,
      callback,
      partner,
      authorizeUrl: (query) =>
        `${t.url}${authorizePath({ client_id: partner.clientId, redirect_uri: callback.url, ...query })}`,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Signs in on the wallet's sign-in page in Chromium and waits for the consent screen. */
export async function signInOnPage(page: Page, user: { email: string; password: string }): Promise<void> {
  await page.getByLabel('Email').fill(user.email);
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('button', { name: 'Allow', exact: true }).waitFor();
}

/** A scripted browser over fetch: keeps cookies, never follows redirects by itself. */
export class ScriptedBrowser {
  private cookies = new Map<string, string>();
  constructor(private readonly base: string) {}

  async get(path: string, headers: Record<string, string> = {}): Promise<Response> {
    return this.send(path, { method: 'GET', headers });
  }

  /** The values of the cookies it holds (session ids, CSRF cookies): secrets a log must never show. */
  cookieValues(): string[] {
    return [...this.cookies.values()];
  }

  async post(path: string, form: Record<string, string>): Promise<Response> {
    return this.send(path, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
  }

  private async send(path: string, init: RequestInit): Promise<Response> {
    const cookie = [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(new URL(path, this.base), {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) },
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair?.indexOf('=') ?? -1;
      if (!pair || eq < 0) continue;
      const value = pair.slice(eq + 1);
      if (value === '' || /expires=Thu, 01 Jan 1970/i.test(c)) this.cookies.delete(pair.slice(0, eq));
      else this.cookies.set(pair.slice(0, eq), value);
    }
    return res;
  }
}

/** The hidden inputs of the first form on a page (CSRF token and the carried request). */
export function formFields(page: string, formIndex = 0): Record<string, string> {
  const form = page.split('<form').slice(1)[formIndex] ?? '';
  const fields: Record<string, string> = {};
  for (const m of form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) {
    fields[m[1] ?? ''] = unescape(m[2] ?? '');
  }
  return fields;
}

function unescape(s: string): string {
  return s.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)));
}

export type AuthorizeQuery = Record<string, string>;

/** The authorize URL of a code-flow request (`response_type=code` unless the query says otherwise). */
export function authorizePath(query: AuthorizeQuery): string {
  return `/api/oauth2/authorize?${new URLSearchParams({ response_type: 'code', ...query })}`;
}

type WalletUser = { email: string; password: string };

/** A scripted browser signed in to the wallet with email + password (from /wallet/login). */
export async function signInToWallet(t: TestServer, user: WalletUser): Promise<ScriptedBrowser> {
  const browser = new ScriptedBrowser(t.url);
  const login = await browser.get('/wallet/login');
  const res = await browser.post('/wallet/login', {
    ...formFields(await login.text()),
    method: 'password',
    email: user.email,
    password: user.password,
  });
  if (res.status !== 303) throw new Error(`login answered ${res.status}: ${await res.text()}`);
  return browser;
}

/**
 * The first half of the code flow with a scripted browser: open the authorize URL and sign in with
 * email + password from its page. Returns the consent page's response (not yet read).
 */
export async function openConsent(
  t: TestServer,
  query: AuthorizeQuery,
  user: WalletUser,
): Promise<{ consent: Response; browser: ScriptedBrowser }> {
  const browser = new ScriptedBrowser(t.url);
  const login = await browser.get(authorizePath(query));
  if (login.status !== 200) throw new Error(`authorize answered ${login.status}: ${await login.text()}`);
  const signedIn = await browser.post('/wallet/login', {
    ...formFields(await login.text()),
    method: 'password',
    email: user.email,
    password: user.password,
  });
  if (signedIn.status !== 303) throw new Error(`login answered ${signedIn.status}`);
  const consent = await browser.get(signedIn.headers.get('location') ?? '');
  if (consent.status !== 200) throw new Error(`consent answered ${consent.status}: ${await consent.text()}`);
  return { consent, browser };
}

/**
 * The user's side of the code flow with a scripted browser: open the authorize URL, sign in with
 * email + password, answer the consent screen. Returns the final redirect to the partner.
 */
export async function authorizeAsUser(
  t: TestServer,
  query: AuthorizeQuery,
  user: WalletUser,
  decision: 'allow' | 'deny' = 'allow',
): Promise<{ location: URL; browser: ScriptedBrowser }> {
  const { consent, browser } = await openConsent(t, query, user);
  const done = await browser.post('/wallet/consent', { ...formFields(await consent.text()), decision });
  if (done.status !== 303) throw new Error(`consent POST answered ${done.status}: ${await done.text()}`);
  return { location: new URL(done.headers.get('location') ?? ''), browser };
}
