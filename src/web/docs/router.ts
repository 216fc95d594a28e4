import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Response } from 'express';
import { loadSpec, SPEC_PATH } from '../../http/spec.js';
import { type SafeHtml, sendPage, setPageHeaders } from '../shared/html.js';
import { errorCodeDocs } from './error-codes.js';
import {
  errorCodePage,
  errorsIndexPage,
  landingPage,
  notFoundPage,
  referencePage,
  webhooksPage,
} from './pages.js';

const OWN_ASSETS = join(dirname(fileURLToPath(import.meta.url)), 'assets');
// The files only: importing swagger-ui-dist would load its whole browser bundle into the server.
const swaggerFile = (name: string) => createRequire(import.meta.url).resolve(`swagger-ui-dist/${name}`);

/** The files /docs loads, all from this server: Swagger UI from node_modules, and our initializer. */
const ASSETS: Record<string, { file: string; type: string }> = {
  'swagger-ui.css': { file: swaggerFile('swagger-ui.css'), type: 'text/css' },
  'swagger-ui-bundle.js': { file: swaggerFile('swagger-ui-bundle.js'), type: 'text/javascript' },
  'swagger-overrides.css': { file: join(OWN_ASSETS, 'swagger-overrides.css'), type: 'text/css' },
  'swagger-init.js': { file: join(OWN_ASSETS, 'swagger-init.js'), type: 'text/javascript' },
};

/**
 * The API reference page's policy: its scripts are files from this origin (no inline script, no
 * eval), it fetches only /openapi.yaml, and Swagger UI's inline styles and data: icons are allowed.
 * Everything else stays as on every page: no framing, no forms elsewhere, no base tag.
 */
const REFERENCE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

/** Public pages need no session: they are the same for everyone, so they may be cached briefly. */
function sendPublic(res: Response, page: SafeHtml, csp?: string): void {
  setPageHeaders(res);
  res.removeHeader('Pragma');
  res.set('Cache-Control', 'public, max-age=300');
  if (csp) res.set('Content-Security-Policy', csp);
  res.status(200).send(page.value);
}

/**
 * The first ten minutes: `/` (what this is, where to go), `/openapi.yaml` (the file the server
 * validates against), `/docs` (Swagger UI over it), `/docs/webhooks` (events and signature checks)
 * and `/docs/errors/<code>` (every ErrorCode: each problem `type` the API answers with is one of these).
 */
export function docsPages(): express.Router {
  const spec = loadSpec();
  const codes = errorCodeDocs(spec);
  const byCode = new Map(codes.map((c) => [c.code as string, c]));
  const pages = {
    landing: landingPage(spec),
    reference: referencePage(),
    webhooks: webhooksPage(spec),
    errors: errorsIndexPage(codes),
  };
  const router = express.Router({ strict: false });

  router.get('/', (_req, res) => sendPublic(res, pages.landing));

  router.get('/openapi.yaml', (_req, res) => {
    // Public and read-only: other origins' API tools may fetch it.
    res.set({ 'Cache-Control': 'public, max-age=300', 'Access-Control-Allow-Origin': '*' });
    res.type('application/yaml').sendFile(SPEC_PATH);
  });

  router.get('/docs', (_req, res) => sendPublic(res, pages.reference, REFERENCE_CSP));

  router.get('/docs/assets/:name', (req, res, next) => {
    const asset = Object.hasOwn(ASSETS, req.params.name) ? ASSETS[req.params.name] : undefined;
    if (!asset) return next();
    res.set({ 'Cache-Control': 'public, max-age=3600', 'X-Content-Type-Options': 'nosniff' });
    res.type(asset.type).sendFile(asset.file);
  });

  router.get('/docs/webhooks', (_req, res) => sendPublic(res, pages.webhooks));
  router.get('/docs/errors', (_req, res) => sendPublic(res, pages.errors));
  router.get('/docs/errors/:code', (req, res) => {
    const doc = byCode.get(req.params.code);
    if (doc) return sendPublic(res, errorCodePage(doc));
    sendPage(res, 404, notFoundPage(`There is no error code ${req.params.code}.`));
  });
  // Anything else under /docs is a page a person asked for: an HTML 404, not the API's problem+json.
  router.get('/docs/*rest', (req, res) => sendPage(res, 404, notFoundPage(`No page at ${req.path}.`)));

  return router;
}
