/**
 * Part of `npm run generate`: keeps the SDK package's version equal to the API version in
 * openapi.yaml (`info.version`), so `@tian/points-sdk@X` is the client for API X. The package's other
 * fields are hand-written in packages/sdk/package.json; this script rewrites only the version there
 * and in package-lock.json's entry for the workspace (so `npm ci` stays in step), and only when it
 * differs (so `npm run generate:check` sees no change otherwise).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';

const SPEC = new URL('../openapi.yaml', import.meta.url);
const PACKAGE = new URL('../packages/sdk/package.json', import.meta.url);
const LOCK = new URL('../package-lock.json', import.meta.url);

const version: unknown = parse(readFileSync(SPEC, 'utf8'))?.info?.version;
if (typeof version !== 'string' || !/^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?$/.test(version)) {
  throw new Error(
    `openapi.yaml info.version must be a semantic version (x.y.z), not ${JSON.stringify(version)}`,
  );
}

const pkg = JSON.parse(readFileSync(PACKAGE, 'utf8')) as { version?: string };
if (pkg.version !== version) {
  pkg.version = version;
  writeFileSync(PACKAGE, `${JSON.stringify(pkg, null, 2)}\n`);
  console.log(`packages/sdk/package.json: version ${version}`);
}

const lock = JSON.parse(readFileSync(LOCK, 'utf8')) as { packages?: Record<string, { version?: string }> };
const entry = lock.packages?.['packages/sdk'];
if (entry && entry.version !== version) {
  entry.version = version;
  writeFileSync(LOCK, `${JSON.stringify(lock, null, 2)}\n`);
  console.log(`package-lock.json: packages/sdk version ${version}`);
}
