/**
 * Summarises `node --cpu-prof` profiles of the project (`npm run bench -- --profile dir`): where the
 * busy CPU time went, by layer (validator, express, pg driver, ORM, our code, ...) and by function
 * (self time), as a share of the busy samples and, given the number of requests served, in µs per
 * request. Idle time is left out, and so is start-up: only samples from the first HTTP request on
 * (the first stack through node's HTTP parser) count. Give the main thread's profiles only
 * (CPU.*.0.001.cpuprofile; the others are tsx's module loader thread).
 *
 *   npx tsx scripts/bench/profile-summary.ts [--requests N] [--top 25] [--json out.json] file.cpuprofile...
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

type CallFrame = { functionName: string; url: string; lineNumber: number };
type ProfileNode = { id: number; callFrame: CallFrame; children?: number[] };
type CpuProfile = { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] };

const { values: argv, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    requests: { type: 'string' },
    top: { type: 'string', default: '25' },
    json: { type: 'string' },
  },
});

/** The layer a function belongs to, from its script URL. */
export function layerOf(url: string, name: string): string {
  if (!url) {
    if (name === '(garbage collector)') return 'GC';
    if (name === '(program)') return 'V8/native (program)';
    if (name === '(idle)') return 'idle';
    return `native: ${name || '(anonymous)'}`;
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm?.[1]) {
    const pkg = nm[1];
    if (['express-openapi-validator', 'ajv', 'ajv-formats', 'path-to-regexp', 'media-typer'].includes(pkg))
      return `validator (${pkg})`;
    if (['pg', 'pg-protocol', 'pg-pool', 'pg-types', 'postgres-array', 'pg-connection-string'].includes(pkg))
      return `pg driver (${pkg})`;
    if (pkg === 'kysely' || pkg.startsWith('@mikro-orm')) return `ORM (${pkg})`;
    return `npm: ${pkg}`;
  }
  const src = /\/(src|scripts|generated)\/(.+)$/.exec(url);
  if (src) return `ours: ${src[1]}/${src[2]}`;
  if (url.startsWith('node:')) return `node core: ${url.slice(5).split('/')[0]}`;
  return url;
}

function summarise(files: string[]) {
  const self = new Map<string, number>();
  const layers = new Map<string, number>();
  /** Inclusive: a sample counts for every package or file on its stack (each once). */
  const inclusive = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const servesHttp = (id: number): boolean => {
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const f = byId.get(at)?.callFrame;
        if (f?.functionName === 'parserOnHeadersComplete' || f?.functionName === 'parserOnIncoming')
          return true;
      }
      return false;
    };
    const ticks = new Map<number, number>();
    // Samples before the first HTTP request are start-up (module loading, migrations, spec compile).
    const first = profile.samples.findIndex((id) => servesHttp(id));
    // timeDeltas[i] is the time before sample i; the time a sample stands for is the next delta.
    for (let i = Math.max(0, first); i < profile.samples.length; i++) {
      const id = profile.samples[i] as number;
      const dt = profile.timeDeltas[i + 1] ?? 0;
      ticks.set(id, (ticks.get(id) ?? 0) + Math.max(0, dt));
    }
    for (const [id, us] of ticks) {
      const node = byId.get(id);
      if (!node) continue;
      const { functionName, url, lineNumber } = node.callFrame;
      const layer = layerOf(url, functionName);
      if (layer === 'idle') {
        idle += us;
        continue;
      }
      busy += us;
      layers.set(layer, (layers.get(layer) ?? 0) + us);
      const onStack = new Set<string>();
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const f = byId.get(at)?.callFrame;
        if (f?.url) onStack.add(layerOf(f.url, f.functionName));
      }
      for (const l of onStack) inclusive.set(l, (inclusive.get(l) ?? 0) + us);
      const where = url ? `${url.replace(/^.*\/(node_modules|src|scripts)\//, '$1/')}:${lineNumber + 1}` : '';
      const key = `${functionName || '(anonymous)'} ${where}`.trim();
      self.set(key, (self.get(key) ?? 0) + us);
    }
  }
  return { busy, idle, self, layers, inclusive };
}

const files = positionals;
if (files.length === 0) {
  console.error('usage: profile-summary.ts [--requests N] [--top 25] file.cpuprofile...');
  process.exit(2);
}
const { busy, idle, self, layers, inclusive } = summarise(files);
const requests = argv.requests ? Number(argv.requests) : undefined;
const top = Number(argv.top);
const fmt = (us: number) =>
  `${((100 * us) / busy).toFixed(1).padStart(5)} %${requests ? `  ${(us / requests).toFixed(1).padStart(7)} µs/req` : ''}`;
console.log(
  `${files.length} profile(s): busy ${(busy / 1e6).toFixed(2)} s, idle ${(idle / 1e6).toFixed(2)} s${requests ? `, ${requests} requests: ${(busy / requests).toFixed(0)} µs busy per request` : ''}`,
);
// Layers, grouped coarsely (e.g. every "ours: src/..." file together), then finely.
const coarse = new Map<string, number>();
for (const [layer, us] of layers) {
  const group = layer.startsWith('ours:')
    ? 'ours (src/)'
    : layer.startsWith('node core:')
      ? 'node core'
      : layer.startsWith('native:')
        ? 'native builtins'
        : layer.replace(/ \(.*\)$/, '');
  coarse.set(group, (coarse.get(group) ?? 0) + us);
}
const sorted = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]);
console.log('\nby layer:');
for (const [k, us] of sorted(coarse)) console.log(`  ${fmt(us)}  ${k}`);
console.log('\nby package / file:');
for (const [k, us] of sorted(layers).slice(0, top)) console.log(`  ${fmt(us)}  ${k}`);
console.log('\ninclusive (time with the package or file anywhere on the stack):');
for (const [k, us] of sorted(inclusive).slice(0, top)) console.log(`  ${fmt(us)}  ${k}`);
console.log(`\ntop ${top} functions by self time:`);
for (const [k, us] of sorted(self).slice(0, top)) console.log(`  ${fmt(us)}  ${k}`);
if (argv.json) {
  writeFileSync(
    argv.json,
    `${JSON.stringify(
      {
        files,
        busyUs: busy,
        idleUs: idle,
        requests,
        layers: Object.fromEntries(sorted(coarse)),
        packages: Object.fromEntries(sorted(layers)),
        inclusive: Object.fromEntries(sorted(inclusive).slice(0, top)),
        functions: Object.fromEntries(sorted(self).slice(0, top)),
      },
      null,
      2,
    )}\n`,
  );
}
