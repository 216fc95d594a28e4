import { createRequire } from 'node:module';
import { loadSpec, type OpenApiDocument } from '../../src/http/spec.js';

// ajv ships CommonJS with `export default` typings; createRequire sidesteps the ESM interop.
const require = createRequire(import.meta.url);
const Ajv2020 = require('ajv/dist/2020').default as typeof import('ajv/dist/2020.js').default;
const addFormats = require('ajv-formats').default as typeof import('ajv-formats').default;

// OpenAPI 3.1 schemas are JSON Schema 2020-12. The components are registered under one id so that a
// schema's `#/components/...` references resolve wherever the schema came from.
const SPEC_ID = 'https://contract.tian.test/openapi';
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
addFormats(ajv);
ajv.addSchema({ $id: SPEC_ID, components: { schemas: loadSpec().components.schemas } });

const absolutise = (schema: OpenApiDocument): OpenApiDocument =>
  JSON.parse(JSON.stringify(schema).replace(/"#\/components\//g, `"${SPEC_ID}#/components/`));

/** What is wrong with `value` as an instance of `schema` (a schema from openapi.yaml); undefined when it conforms. */
export function schemaErrors(schema: OpenApiDocument, value: unknown, name = 'value'): string | undefined {
  const validate = ajv.compile(absolutise(schema));
  return validate(value) ? undefined : ajv.errorsText(validate.errors, { dataVar: name });
}
