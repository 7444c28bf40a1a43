// Builds native/jvs_native.c with node-gyp against the headers of the running Node.js
// (no download: this machine reaches package registries only). JVS works without the
// addon; a failed build is reported loudly, and JVS_REQUIRE_NATIVE=1 makes it fatal.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const nodeDir = path.resolve(path.dirname(process.execPath), '..');
let gyp;
for (const candidate of [
  () => require.resolve('node-gyp/bin/node-gyp.js'),
  () => path.join(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js'),
]) {
  try {
    const p = candidate();
    if (existsSync(p)) { gyp = p; break; }
  } catch { /* next */ }
}
const fail = (why) => {
  const msg = `jvs: native addon NOT built (${why}); atomic exchange, syncfs and ns mtimes fall back to slower paths`;
  console.error('\n' + '!'.repeat(msg.length > 100 ? 100 : msg.length) + '\n' + msg + '\n');
  process.exit(process.env.JVS_REQUIRE_NATIVE === '1' ? 1 : 0);
};
if (!gyp) fail('node-gyp not found');
const args = [gyp, 'rebuild', '--release'];
if (existsSync(path.join(nodeDir, 'include/node/node_api.h'))) args.push(`--nodedir=${nodeDir}`);
const r = spawnSync(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
if (r.status !== 0) {
  process.stderr.write(r.stdout + r.stderr);
  fail(`node-gyp exited ${r.status}`);
}
console.error('jvs: native addon built (build/Release/jvs_native.node)');
