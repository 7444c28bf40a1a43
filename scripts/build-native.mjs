// Builds native/jvs_native.c with node-gyp against the headers of the running Node.js
// (no download: this machine reaches package registries only). JVS works without the
// addon; a failed build is reported loudly, and JVS_REQUIRE_NATIVE=1 makes it fatal.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gypRebuild } from './lib/nodeGyp.mjs';

const fail = (why) => {
  const msg = `jvs: native addon NOT built (${why}); atomic exchange, syncfs and ns mtimes fall back to slower paths`;
  console.error('\n' + '!'.repeat(msg.length > 100 ? 100 : msg.length) + '\n' + msg + '\n');
  process.exit(process.env.JVS_REQUIRE_NATIVE === '1' ? 1 : 0);
};
const error = gypRebuild(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'));
if (error) fail(error);
console.error('jvs: native addon built (build/Release/jvs_native.node)');
