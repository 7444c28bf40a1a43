// Bundles the compiled CLI (dist/cli/main.js and every module it reaches, commander
// included) into one file, dist/cli/jvs.mjs, which bin/jvs.js runs. Node 20 spends
// ~0.6 ms per ES module on resolving, reading and linking; a snapshot reached ~80 of
// them (≈ 50 ms before any work). One file loads in about half that. Packages with
// native code or a cost worth deferring stay outside and are loaded on first use.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: [path.join(root, 'dist/cli/main.js')],
  outfile: path.join(root, 'dist/cli/jvs.mjs'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
  external: ['better-sqlite3', 'fuse-native', 'execa', 'lru-cache', 'yaml', 'ignore', 'cli-progress'],
  // commander is CommonJS: its require() calls need a require in an ES module.
  banner: { js: "import { createRequire as __jvsCreateRequire } from 'node:module';\nconst require = __jvsCreateRequire(import.meta.url);" },
});
