// Bundles the compiled CLI (dist/cli/main.js and every module it reaches, commander
// included) into one CommonJS file, dist/cli/jvs.cjs, which bin/jvs.cjs runs. Node 20
// spends ~0.6 ms per ES module on resolving, reading and linking; a snapshot reached ~80
// of them (≈ 50 ms before any work). One file loads in about half that, and as CommonJS
// it can be compiled from V8's code cache (scripts/code-cache.cjs, run here for each set
// of V8 flags bin/jvs uses). Packages with native code or a cost worth deferring stay
// outside and are loaded on first use.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const outfile = path.join(root, 'dist/cli/jvs.cjs');
await build({
  entryPoints: [path.join(root, 'dist/cli/main.js')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
  // better-sqlite3's JavaScript is bundled (src/index/indexDb.ts says why; its addon is
  // loaded from node_modules by path); `bindings`, which it uses only when not given
  // that path, stays outside.
  external: ['bindings', 'lru-cache', 'yaml', 'ignore', 'cli-progress'],
  // The modules locate files next to themselves through import.meta.url: in the bundle
  // that is the bundle's own URL. import() of an outside package becomes a require, so
  // the bundle runs under vm.Script (which has no ES module loader) as it is.
  define: { 'import.meta.url': '__jvsBundleUrl' },
  banner: { js: "const __jvsBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
  supported: { 'dynamic-import': false },
});
// The ES module bundle of earlier builds, if any, is stale.
for (const old of ['dist/cli/jvs.mjs', 'dist/cli/jvs.mjs.map']) fs.rmSync(path.join(root, old), { force: true });
for (const f of fs.readdirSync(path.dirname(outfile))) if (/^jvs\.cjs\..+\.cache$/.test(f)) fs.rmSync(path.join(path.dirname(outfile), f));

// One code cache per set of V8 flags bin/jvs starts Node with: none, and the heap flags
// of the mount daemon (read from bin/jvs itself, so the two cannot drift apart).
const launcher = fs.readFileSync(path.join(root, 'bin/jvs'), 'utf8');
const heap = /heap="([^"]+)"/.exec(launcher)?.[1];
if (!heap) throw new Error('scripts/bundle.mjs: no heap="…" flags found in bin/jvs');
// A cache only speeds start-up: without one the CLI compiles from source, so a failure
// here is reported but does not fail the build (the start-up test checks both caches).
for (const flags of [[], heap.split(' ')]) {
  const r = spawnSync(process.execPath, [...flags, path.join(root, 'scripts/code-cache.cjs')], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) console.warn(`scripts/bundle.mjs: no code cache for V8 flags "${flags.join(' ')}" (scripts/code-cache.cjs exited ${r.status}); jvs starts slower but works`);
}
