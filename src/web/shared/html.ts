import type { Response } from 'express';

/** Markup that is already safe; everything else interpolated into `html` is escaped. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"'`=]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function render(v: unknown): string {
  if (v instanceof SafeHtml) return v.value;
  if (Array.isArray(v)) return v.map(render).join('');
  if (v === undefined || v === null || v === false) return '';
  return escapeHtml(String(v));
}

/** Tagged template: every interpolated value is HTML-escaped unless it is SafeHtml (or a list of it). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}

/**
 * Headers of every wallet page (login, consent, error, settings): no framing (RFC 9700 §4.16, both
 * X-Frame-Options and CSP frame-ancestors), no third-party anything, no Referer (§4.2), no caching.
 * `formTargets` are the extra origins a form may end up at: Chromium applies form-action to the
 * redirect after the POST, so the consent page must allow the partner's redirect URI origin.
 */
export function setPageHeaders(res: Response, formTargets: string[] = []): void {
  res.set({
    'Content-Type': 'text/html; charset=utf-8',
    'X-Frame-Options': 'DENY',
    'Content-Security-Policy': [
      "default-src 'none'",
      "style-src 'unsafe-inline'",
      `form-action 'self'${formTargets.map((o) => ` ${o}`).join('')}`,
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
    Pragma: 'no-cache',
    'X-Content-Type-Options': 'nosniff',
  });
}

export function sendPage(res: Response, status: number, page: SafeHtml, formTargets: string[] = []): void {
  setPageHeaders(res, formTargets);
  res.status(status).send(page.value);
}
