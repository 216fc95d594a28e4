import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { derefIn, loadSpec, type OpenApiDocument } from '../src/http/spec.js';

/**
 * Dredd 14 reads the spec through an old YAML 1.1 / OAS 3.0 parser. Three things in openapi.yaml
 * (all valid OpenAPI 3.1) stop it from compiling any transaction, so Dredd gets an equivalent view:
 * 1. `[https://...]` flow sequences ("found unexpected ':'"): re-serialising with `yaml` writes them
 *    as block sequences.
 * 2. A parameter whose example is only `schema.example` ("Required URI parameter ... has no example"):
 *    the example is copied to the parameter.
 * 3. A parameter schema that is a `$ref` (IdempotencyKeyHeader: "Cannot read properties of undefined
 *    (reading 'toValue')"): the schema is inlined.
 * The server still validates against openapi.yaml itself; only what Dredd reads changes.
 */
export function dreddView(spec: OpenApiDocument = loadSpec()): OpenApiDocument {
  const doc = structuredClone(spec);
  const fix = (param: OpenApiDocument) => {
    const p = derefIn(doc, param);
    if (!p) return;
    if (p.schema?.$ref) p.schema = structuredClone(derefIn(doc, p.schema));
    if (p.example === undefined && p.schema?.example !== undefined) p.example = p.schema.example;
  };
  for (const p of Object.values<OpenApiDocument>(doc.components?.parameters ?? {})) fix(p);
  for (const item of Object.values<OpenApiDocument>(doc.paths ?? {})) {
    for (const p of item.parameters ?? []) fix(p);
    for (const op of Object.values<OpenApiDocument>(item)) {
      if (op && typeof op === 'object' && Array.isArray(op.parameters)) for (const p of op.parameters) fix(p);
    }
  }
  return doc;
}

export function writeDreddSpec(file: string): string {
  writeFileSync(file, stringify(dreddView(), { lineWidth: 0 }));
  return file;
}
