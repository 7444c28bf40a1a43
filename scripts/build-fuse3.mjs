// Builds the libfuse 3 low-level mount (native/fuse/*.c) into build/Release/jvs_fuse3.node
// with node-gyp against the system libfuse 3 (Debian libfuse3-dev; fusermount3 from
// fuse3 is needed at run time for auto_unmount). Run by `npm install` after
// build-native.mjs (whose `node-gyp rebuild` clears build/). Without it, `jvs mount`
// reports what is missing; JVS_REQUIRE_NATIVE=1 makes a failed build fatal.
// No header download: node-gyp gets --nodedir of the running Node, as build-native.mjs.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gypRebuild } from './lib/nodeGyp.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const fail = (why) => {
  const msg = `jvs: libfuse 3 mount NOT built (${why}); \`jvs mount\` will refuse to start`;
  console.error('\n' + '!'.repeat(Math.min(msg.length, 100)) + '\n' + msg + '\n');
  process.exit(process.env.JVS_REQUIRE_NATIVE === '1' ? 1 : 0);
};

// --if-stale (run by `npm run build`): nothing to do when the addon is newer than its sources,
// so every checkout that builds gets the mount without compiling on each build.
const out = path.join(root, 'build/Release/jvs_fuse3.node');
if (process.argv.includes('--if-stale') && fs.existsSync(out)) {
  const built = fs.statSync(out).mtimeMs;
  const srcs = fs.readdirSync(path.join(root, 'native/fuse')).map((f) => path.join(root, 'native/fuse', f));
  if ([...srcs, fileURLToPath(import.meta.url)].every((f) => fs.statSync(f).mtimeMs <= built)) process.exit(0);
}

const pkg = (args) => {
  const r = spawnSync('pkg-config', ['fuse3', ...args], { encoding: 'utf8' });
  if (r.status !== 0) fail('pkg-config cannot find libfuse 3 (install libfuse3-dev and fuse3)');
  return r.stdout.trim().split(/\s+/).filter(Boolean);
};
const cflags = pkg(['--cflags']);
const libs = pkg(['--libs']);

const work = path.join(root, 'build/fuse3');
fs.rmSync(work, { recursive: true, force: true });
fs.mkdirSync(work, { recursive: true });
const srcDir = path.join(root, 'native/fuse');
const sources = fs.readdirSync(srcDir).filter((f) => /\.[ch]$/.test(f)).sort();
// node-gyp wants sources below its folder: build copies.
for (const f of sources) fs.copyFileSync(path.join(srcDir, f), path.join(work, f));
fs.writeFileSync(path.join(work, 'binding.gyp'), JSON.stringify({
  targets: [{
    target_name: 'jvs_fuse3',
    sources: sources.filter((f) => f.endsWith('.c')),
    include_dirs: [...cflags.filter((f) => f.startsWith('-I')).map((f) => f.slice(2))],
    defines: cflags.filter((f) => f.startsWith('-D')).map((f) => f.slice(2)),
    libraries: libs,
    cflags: ['-O2', '-Wall', '-Wextra', '-Wno-unused-parameter', '-Wno-missing-field-initializers'],
  }],
}, null, 2));

const gypError = gypRebuild(work);
if (gypError) fail(gypError);
const dest = path.join(root, 'build/Release');
fs.mkdirSync(dest, { recursive: true });
// A new inode (copy, then rename): a running mount keeps its mapped copy intact.
fs.copyFileSync(path.join(work, 'build/Release/jvs_fuse3.node'), path.join(dest, 'jvs_fuse3.node.tmp'));
fs.renameSync(path.join(dest, 'jvs_fuse3.node.tmp'), path.join(dest, 'jvs_fuse3.node'));
console.error('jvs: libfuse 3 mount built → build/Release/jvs_fuse3.node');
