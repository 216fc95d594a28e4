import type { NextFunction, Request, Response } from 'express';
import { Problem } from '../errors/index.js';
import { derefIn, loadSpec, type OpenApiDocument, type SpecOperation } from './spec.js';

/**
 * The request-input check of the API shell, run before authentication and the spec validator.
 *
 * Refuses, with one 400 `validation_failed` naming the field, what the spec validator lets through
 * but no layer below can hold:
 * - a NUL character or an unpaired UTF-16 surrogate anywhere in a string of the JSON or form body
 *   (keys included, at any depth), the query, the path parameters, or the client credentials of HTTP
 *   Basic (form-decoded, as RFC 6749 §2.3.1 reads them). PostgreSQL text cannot store U+0000 and
 *   json/jsonb refuse `\u0000` and unpaired surrogate escapes, so these otherwise surface as 500s
 *   from wherever the string first reaches SQL.
 * - an integer or number query/path parameter that is not a plain finite decimal: the validator's
 *   type coercion reads `Infinity` and `1e309` as numbers that pass `integer`.
 * On /api/oauth2/* the error renderer turns the problem into `{error: 'invalid_request', ...}`.
 */
export function inputGuard(op: SpecOperation) {
  const check = inputCheck(op);
  return (req: Request, _res: Response, next: NextFunction) => {
    next(
      check({
        params: req.params,
        query: req.query,
        body: req.body,
        authorization: req.get('authorization'),
      }),
    );
  };
}

/** What the input check reads of a request. */
export type CheckedInput = {
  params: unknown;
  query: unknown;
  body: unknown;
  authorization: string | undefined;
};

/** inputGuard's check as a function (the direct routes call it): the 400 to answer, or undefined. */
export function inputCheck(op: SpecOperation): (input: CheckedInput) => Problem | undefined {
  const numericParams = numericParameters(op);
  const basicAuth = op.security.some((r) => 'clientBasic' in r);

  return (input) => {
    const found =
      findBadString(input.params, '/path') ??
      findBadString(input.query, '/query') ??
      findBadString(input.body, '/body') ??
      (basicAuth ? badBasicCredentials(input.authorization) : undefined) ??
      findBadNumber(input, numericParams);
    if (!found) return undefined;
    return new Problem(400, 'validation_failed', 'Invalid request', `${found.path} ${found.message}`, {
      param: found.path.split('/').filter(Boolean).pop() ?? found.path,
      errors: [found],
    });
  };
}

type Issue = { path: string; message: string };

const BAD_CHARACTERS = 'must not contain NUL characters or unpaired UTF-16 surrogates';
// A NUL, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one.
const BAD = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether a string can travel to PostgreSQL (text and json) as it is. */
export function isStorableText(s: string): boolean {
  return !BAD.test(s);
}

/** The first string (or key) in `value` that PostgreSQL cannot store, with a JSON-pointer-ish path. */
function findBadString(value: unknown, path: string, depth = 0): Issue | undefined {
  if (typeof value === 'string') return BAD.test(value) ? { path, message: BAD_CHARACTERS } : undefined;
  // Bodies are capped at 16 KiB and parsed by JSON.parse, so depth is bounded; stop well before a stack issue.
  if (value === null || typeof value !== 'object' || depth > 256) return undefined;
  for (const [key, v] of Object.entries(value)) {
    const at = `${path}/${escapePointer(key)}`;
    if (BAD.test(key)) return { path: `${path}/${escapePointer(sanitise(key))}`, message: BAD_CHARACTERS };
    const found = findBadString(v, at, depth + 1);
    if (found) return found;
  }
  return undefined;
}

function badBasicCredentials(header: string | undefined): Issue | undefined {
  const m = /^Basic +([A-Za-z0-9+/=]+)$/i.exec(header ?? '');
  if (!m?.[1]) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const parts = colon < 0 ? [decoded] : [decoded.slice(0, colon), decoded.slice(colon + 1)];
  for (const part of parts) {
    let text = part;
    try {
      text = decodeURIComponent(part.replace(/\+/g, ' '));
    } catch {
      // Not form-encoded: client authentication refuses it on its own.
    }
    if (BAD.test(text)) return { path: '/header/authorization', message: BAD_CHARACTERS };
  }
  return undefined;
}

type NumericParam = { in: 'query' | 'path'; name: string; integer: boolean };

function numericParameters(op: SpecOperation): NumericParam[] {
  const spec = loadSpec();
  const item = spec.paths?.[op.path] ?? {};
  const params: OpenApiDocument[] = [...(item.parameters ?? []), ...(item[op.method]?.parameters ?? [])];
  const out: NumericParam[] = [];
  for (const p of params.map((x) => derefIn(spec, x))) {
    if (p?.in !== 'query' && p?.in !== 'path') continue;
    const schema = derefIn(spec, p.schema ?? {});
    const types = ([] as string[]).concat(schema?.type ?? []);
    if (types.includes('integer')) out.push({ in: p.in, name: p.name, integer: true });
    else if (types.includes('number')) out.push({ in: p.in, name: p.name, integer: false });
  }
  return out;
}

const INTEGER = /^[+-]?\d{1,16}$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d{1,3})?$/;

function findBadNumber(input: CheckedInput, params: NumericParam[]): Issue | undefined {
  for (const p of params) {
    const source = (p.in === 'query' ? input.query : input.params) as Record<string, unknown> | undefined;
    const raw = source?.[p.name];
    if (raw === undefined) continue;
    // Repeated or empty parameters are the validator's to report.
    for (const v of Array.isArray(raw) ? raw : [raw]) {
      if (typeof v !== 'string' || v === '') continue;
      const ok = p.integer ? INTEGER.test(v) : DECIMAL.test(v) && Number.isFinite(Number(v));
      if (!ok) {
        return {
          path: `/${p.in}/${p.name}`,
          message: p.integer ? 'must be a plain decimal integer' : 'must be a finite decimal number',
        };
      }
    }
  }
  return undefined;
}

const escapePointer = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');
/** A key quoted in an error: the offending characters shown as escapes, never echoed raw. */
const sanitise = (key: string) =>
  key.replace(/[\u0000\uD800-\uDFFF]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
