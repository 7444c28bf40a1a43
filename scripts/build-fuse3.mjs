// Builds the libfuse 3 low-level mount (native/fuse/*.c) into build/Release/jvs_fuse3.node
// with node-gyp. Run by `npm install` after build-native.mjs (whose `node-gyp rebuild`
// clears build/). Without it, `jvs mount` reports what is missing; JVS_REQUIRE_NATIVE=1
// makes a failed build fatal. No header download: node-gyp gets --nodedir of the running
// Node, as build-native.mjs.
//
// Which libfuse: 3.18 (FUSE over io_uring, kernel passthrough) built here as a static
// library from Debian's own source tarball (deb.debian.org, pinned by its SHA-256), when
// meson, liburing and libnuma headers are installed (Debian: meson liburing-dev
// libnuma-dev; `npm test` installs them as root). Debian 12 ships libfuse 3.14, which has
// neither. Anything missing (no network, no meson) falls back to the system libfuse 3
// (libfuse3-dev) with a loud note; the mount works the same, only without io_uring.
// fusermount3 (Debian fuse3) is needed at run time either way (auto_unmount).
// JVS_LIBFUSE=system skips the 3.18 build.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
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

const LIBFUSE = {
  version: '3.18.3',
  url: 'http://deb.debian.org/debian/pool/main/f/fuse3/fuse3_3.18.3.orig.tar.gz',
  sha256: 'bcd19582c5e30f7fe45dd86a5540e998590aa01903afc7ebcbeea6c8ac5421ee',
};
const note = (msg) => console.error(`jvs: ${msg}`);
const has = (cmd) => spawnSync('/bin/sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

// --if-stale (run by `npm run build`): nothing to do when the addon is newer than its sources
// and was built against the libfuse this machine can have now (a system-libfuse build is
// redone once meson and the headers are there, unless the 3.18 download failed before).
const out = path.join(root, 'build/Release/jvs_fuse3.node');
const cacheRoot = path.join(root, 'node_modules/.cache/jvs-libfuse');
if (process.argv.includes('--if-stale') && fs.existsSync(out)) {
  const built = fs.statSync(out).mtimeMs;
  const srcs = fs.readdirSync(path.join(root, 'native/fuse')).map((f) => path.join(root, 'native/fuse', f));
  const fresh = [...srcs, fileURLToPath(import.meta.url)].every((f) => fs.statSync(f).mtimeMs <= built);
  let against = '';
  try {
    against = fs.readFileSync(path.join(root, 'build/Release/jvs_fuse3.libfuse'), 'utf8');
  } catch { /* built before the marker existed */ }
  const upgradable = !against.startsWith(LIBFUSE.version) && process.env.JVS_LIBFUSE !== 'system' && has('meson') && !fs.existsSync(path.join(cacheRoot, 'download-failed'));
  if (fresh && !upgradable) process.exit(0);
}

/** Build (or reuse) a static libfuse 3.18 below node_modules/.cache; compile/link flags, or a reason. */
async function libfuse318() {
  if (process.env.JVS_LIBFUSE === 'system') return { why: 'JVS_LIBFUSE=system' };
  if (!has('meson') || !has('ninja')) return { why: 'meson or ninja missing (Debian: meson)' };
  if (!fs.existsSync('/usr/include/liburing.h') || !fs.existsSync('/usr/include/numa.h')) return { why: 'liburing or libnuma headers missing (Debian: liburing-dev libnuma-dev)' };
  const cache = path.join(cacheRoot, LIBFUSE.version);
  const src = path.join(cache, `fuse-${LIBFUSE.version}`);
  const out = path.join(cache, 'build');
  const lib = path.join(out, 'lib/libfuse3.a');
  if (!fs.existsSync(lib)) {
    fs.mkdirSync(cache, { recursive: true });
    const tarball = path.join(cache, path.basename(LIBFUSE.url));
    if (!fs.existsSync(tarball)) {
      let body;
      try {
        const res = await fetch(LIBFUSE.url, { signal: AbortSignal.timeout(60_000) });
        if (!res.ok) return { why: `download of ${LIBFUSE.url} answered ${res.status}` };
        body = Buffer.from(await res.arrayBuffer());
      } catch (e) {
        fs.mkdirSync(cacheRoot, { recursive: true });
        fs.writeFileSync(path.join(cacheRoot, 'download-failed'), `${new Date().toISOString()} ${e.message}\n`);
        return { why: `download of ${LIBFUSE.url} failed (${e.message}); remove ${path.join(cacheRoot, 'download-failed')} to try again` };
      }
      const sum = createHash('sha256').update(body).digest('hex');
      if (sum !== LIBFUSE.sha256) return { why: `${LIBFUSE.url} has SHA-256 ${sum}, expected ${LIBFUSE.sha256}` };
      fs.writeFileSync(tarball + '.part', body);
      fs.renameSync(tarball + '.part', tarball);
    }
    fs.rmSync(src, { recursive: true, force: true });
    fs.rmSync(out, { recursive: true, force: true });
    const steps = [
      ['tar', ['xzf', tarball, '-C', cache]],
      ['meson', ['setup', out, src, '--default-library=static', '-Db_staticpic=true', '-Dexamples=false', '-Dutils=false', '-Dtests=false', '-Denable-io-uring=true', '-Ddisable-libc-symbol-version=true', '--buildtype=release']],
      ['ninja', ['-C', out, 'lib/libfuse3.a']],
    ];
    for (const [cmd, args] of steps) {
      const r = spawnSync(cmd, args, { encoding: 'utf8' });
      if (r.status !== 0) {
        process.stderr.write((r.stdout ?? '') + (r.stderr ?? ''));
        return { why: `\`${cmd} ${args[0]}\` failed building libfuse ${LIBFUSE.version}` };
      }
    }
  }
  // io_uring is on only when libfuse's meson found liburing and libnuma.
  const config = fs.readFileSync(path.join(out, 'fuse_config.h'), 'utf8');
  const uring = /#define HAVE_URING\b/.test(config);
  return {
    version: LIBFUSE.version,
    uring,
    includes: [path.join(src, 'include'), out],
    defines: [],
    libs: [lib, ...(uring ? ['-luring', '-lnuma'] : []), '-lpthread', '-ldl', '-lrt'],
  };
}

function systemLibfuse() {
  const pkg = (args) => {
    const r = spawnSync('pkg-config', ['fuse3', ...args], { encoding: 'utf8' });
    if (r.status !== 0) fail('pkg-config cannot find libfuse 3 (install libfuse3-dev and fuse3)');
    return r.stdout.trim().split(/\s+/).filter(Boolean);
  };
  const cflags = pkg(['--cflags']);
  return {
    version: pkg(['--modversion'])[0],
    uring: false,
    includes: cflags.filter((f) => f.startsWith('-I')).map((f) => f.slice(2)),
    defines: cflags.filter((f) => f.startsWith('-D')).map((f) => f.slice(2)),
    libs: pkg(['--libs']),
  };
}

let fuse = await libfuse318();
if (!fuse.version) {
  note(`libfuse ${LIBFUSE.version} not built (${fuse.why}); using the system libfuse 3: the mount works, without FUSE over io_uring`);
  fuse = systemLibfuse();
}

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
    include_dirs: fuse.includes,
    defines: fuse.defines,
    libraries: fuse.libs,
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
fs.writeFileSync(path.join(dest, 'jvs_fuse3.libfuse'), `${fuse.version}${fuse.uring ? ' io_uring' : ''}\n`);
console.error(`jvs: libfuse 3 mount built → build/Release/jvs_fuse3.node (libfuse ${fuse.version}${fuse.uring ? ', io_uring' : ''})`);
