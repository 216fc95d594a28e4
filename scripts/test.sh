#!/usr/bin/env bash
# The whole test suite: unit + integration (+ browser), the spec-driven contract suite, and Dredd.
# Uses the real PostgreSQL at 127.0.0.1:5432 when it is reachable (CI: required), else the embedded
# database, and says which. Ends with one summary line: "tests: N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0

npx vitest run --reporter=default --reporter=json --outputFile="$out/integration.json" || status=1
npx vitest run --config contract-tests/vitest.config.ts --reporter=default --reporter=json --outputFile="$out/contract.json" || status=1
DREDD_SUMMARY_FILE="$out/dredd.json" npx tsx contract-tests/run-dredd.ts || status=1

node --input-type=module -e '
import { existsSync, readFileSync } from "node:fs";
const dir = process.argv[1];
let passed = 0, failed = 0, skipped = 0;
for (const f of ["integration.json", "contract.json", "dredd.json"]) {
  const p = `${dir}/${f}`;
  if (!existsSync(p)) { console.log(`[tests] ${f.replace(".json", "")}: no results (the run crashed)`); failed++; continue; }
  const r = JSON.parse(readFileSync(p, "utf8"));
  for (const file of r.testResults ?? []) {
    const n = (file.assertionResults ?? []).filter((a) => a.status === "skipped" || a.status === "pending").length;
    if (n > 0) console.log(`[tests] skipped ${n} in ${file.name.replace(process.cwd() + "/", "")} (the reason is printed above)`);
  }
  passed += r.numPassedTests ?? r.passing ?? 0;
  failed += (r.numFailedTests ?? r.failing ?? 0) + (r.errors ?? 0);
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0) + (r.skipped ?? 0);
}
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
if (failed > 0) process.exitCode = 1;
' "$out" || status=1
exit $status
