import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { OperationId } from './operations.js';

export const SPEC_PATH = fileURLToPath(new URL('../../openapi.yaml', import.meta.url));

export type SecurityRequirement = Record<string, string[]>;
export type SpecOperation = {
  operationId: OperationId;
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  path: string;
  /** The path in express syntax (`/transactions/:transactionId`). */
  expressPath: string;
  security: SecurityRequirement[];
  responses: string[];
  /** False for operations openapi.yaml marks `x-rate-limited: false` (the health probes). */
  rateLimited: boolean;
};

export type OpenApiDocument = any;

let cached: OpenApiDocument | undefined;
export function loadSpec(): OpenApiDocument {
  cached ??= parse(readFileSync(SPEC_PATH, 'utf8'));
  return cached;
}

/** Follows local `$ref`s (`#/components/...`) in `doc` until it reaches an object that is not one. */
export function derefIn(doc: OpenApiDocument, o: OpenApiDocument): OpenApiDocument {
  let cur = o;
  while (cur && typeof cur.$ref === 'string') {
    cur = (cur.$ref as string)
      .replace(/^#\//, '')
      .split('/')
      .reduce((acc: OpenApiDocument, k: string) => acc?.[k], doc);
  }
  return cur;
}

/** derefIn openapi.yaml; one argument, so it can be handed to `map`. */
export const deref = (o: OpenApiDocument): OpenApiDocument => derefIn(loadSpec(), o);

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

export function listOperations(spec: OpenApiDocument = loadSpec()): SpecOperation[] {
  const ops: SpecOperation[] = [];
  for (const [path, item] of Object.entries<Record<string, OpenApiDocument>>(spec.paths ?? {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      ops.push({
        operationId: op.operationId,
        method,
        path,
        expressPath: path.replace(/\{([^}]+)\}/g, ':$1'),
        security: op.security ?? spec.security ?? [],
        responses: Object.keys(op.responses ?? {}),
        rateLimited: op['x-rate-limited'] !== false,
      });
    }
  }
  return ops;
}
