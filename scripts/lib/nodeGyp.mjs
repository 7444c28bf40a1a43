// Runs node-gyp against the headers of the running Node.js (no download: this machine
// reaches package registries only). Shared by build-native.mjs and build-fuse3.mjs.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** Path of a node-gyp entry script: the project's, else the one bundled with npm. */
export function findNodeGyp() {
  for (const candidate of [
    () => require.resolve('node-gyp/bin/node-gyp.js'),
    () => path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
  ]) {
    try {
      const p = candidate();
      if (existsSync(p)) return p;
    } catch { /* next */ }
  }
  return undefined;
}

/**
 * `node-gyp rebuild --release` in `cwd`; returns an error string, or undefined on success
 * (output is shown only on failure).
 */
export function gypRebuild(cwd) {
  const gyp = findNodeGyp();
  if (!gyp) return 'node-gyp not found';
  const nodeDir = path.resolve(path.dirname(process.execPath), '..');
  const args = [gyp, 'rebuild', '--release'];
  if (existsSync(path.join(nodeDir, 'include/node/node_api.h'))) args.push(`--nodedir=${nodeDir}`);
  const r = spawnSync(process.execPath, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(r.stdout + r.stderr);
    return `node-gyp exited ${r.status}`;
  }
  return undefined;
}
