import type { IncomingHttpHeaders } from 'node:http';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import * as OpenApiValidator from 'express-openapi-validator';
import { derefIn, type OpenApiDocument, type SpecOperation } from './spec.js';

/**
 * The direct routes' request and response checks, compiled from openapi.yaml once at start-up (ajv,
 * the JSON Schema 2020-12 dialect of OpenAPI 3.1, as express-openapi-validator compiles it).
 *
 * A request check is a gate, not the validator: it answers whether the request is certainly valid.
 * `true` lets the direct route go on; `false` sends the request to express-openapi-validator itself,
 * which words the 400 (or, should it find the request valid after all, lets it go on). So the check
 * may be stricter than the validator, never laxer: it uses the same schemas, and the direct routes
 * take only requests without a query string or path parameters (see directRouteShape).
 */
export type RequestCheck = (headers: IncomingHttpHeaders, body: unknown) => boolean;
/** Throws the validator's kind of 500 when a reply breaks its documented schema (VALIDATE_RESPONSES). */
export type ResponseCheck = (status: number, body: unknown) => void;

const SPEC_ID = 'openapi.yaml';

export class DirectChecks {
  private readonly ajv: Ajv2020;

  constructor(private readonly spec: OpenApiDocument) {
    // strict: false, as the validator: openapi.yaml's schemas carry `example`, which JSON Schema does not define.
    this.ajv = new Ajv2020({ strict: false, allErrors: false, coerceTypes: false, useDefaults: false });
    addFormats.default(this.ajv);
    this.ajv.addSchema({ $id: SPEC_ID, components: { schemas: spec.components?.schemas ?? {} } });
  }

  /** The request check of one operation: its header parameters and its JSON body. */
  request(op: SpecOperation): RequestCheck {
    const operation = this.operation(op);
    const headerProps: Record<string, unknown> = {};
    const requiredHeaders: string[] = [];
    for (const ref of [...(this.spec.paths[op.path].parameters ?? []), ...(operation.parameters ?? [])]) {
      const p = derefIn(this.spec, ref);
      if (p.in === 'path' || (p.in === 'query' && p.required)) {
        throw new Error(`${op.operationId}: a direct route takes no path or required query parameters`);
      }
      if (p.in !== 'header') continue;
      headerProps[p.name.toLowerCase()] = this.local(p.schema ?? {});
      if (p.required) requiredHeaders.push(p.name.toLowerCase());
    }
    const requestBody = derefIn(this.spec, operation.requestBody ?? {});
    const bodySchema = requestBody?.content?.['application/json']?.schema;
    const validate = this.ajv.compile({
      type: 'object',
      properties: {
        headers: { type: 'object', properties: headerProps, required: requiredHeaders },
        ...(bodySchema ? { body: this.local(bodySchema) } : {}),
      },
      required: ['headers', ...(requestBody?.required ? ['body'] : [])],
    });
    return (headers, body) => validate(body === undefined ? { headers } : { headers, body });
  }

  /** The response check of one operation: each documented JSON (or problem+json) response's schema, by status. */
  response(op: SpecOperation): ResponseCheck {
    const byStatus = new Map<number, ReturnType<Ajv2020['compile']>>();
    for (const [status, ref] of Object.entries<OpenApiDocument>(this.operation(op).responses ?? {})) {
      const content = derefIn(this.spec, ref)?.content ?? {};
      const schema = (content['application/json'] ?? content['application/problem+json'])?.schema;
      if (schema && /^\d+$/.test(status)) byStatus.set(Number(status), this.ajv.compile(this.local(schema)));
    }
    return (status, body) => {
      const validate = byStatus.get(status);
      if (!validate) {
        throw new OpenApiValidator.error.InternalServerError({
          path: '.response',
          message: `no schema defined for status code '${status}' in the openapi spec`,
        });
      }
      if (validate(body)) return;
      // Worded as the validator words it: `/response/balance must be >= 0`.
      const first = validate.errors?.[0];
      const path = `/response${first?.instancePath ?? ''}`;
      throw new OpenApiValidator.error.InternalServerError({
        path,
        message: `${path} ${first?.message ?? 'is invalid'}`,
      });
    };
  }

  private operation(op: SpecOperation): OpenApiDocument {
    return this.spec.paths[op.path][op.method];
  }

  /** A copy of a spec schema whose `#/components/...` references point into the registered spec. */
  private local(schema: OpenApiDocument): OpenApiDocument {
    return JSON.parse(JSON.stringify(schema), (key, value) =>
      key === '$ref' && typeof value === 'string' && value.startsWith('#/') ? `${SPEC_ID}${value}` : value,
    );
  }
}
