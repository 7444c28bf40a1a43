// Rebuilds fuse-native's addon from its own C source with JVS's patch applied, against
// the system libfuse 2 (libfuse-dev), and installs it where fuse-native loads its addon
// from (node_modules/fuse-native/build/Release/fuse.node; node-gyp-build prefers it to
// the prebuilt one). Run by `npm install` after the native addon. What the patch changes
// and why (DESIGN section 6):
//   1. utimens: the stock binding passes atime twice (mtime is lost) and in milliseconds;
//      ours passes both times as seconds + nanoseconds, and declares flag_utime_omit_ok so
//      libfuse 2 forwards one-sided updates (UTIME_OMIT / UTIME_NOW) instead of dropping
//      them. Without it `touch -m`, `cp -p`, `tar x`, `rsync -t` lose mtimes.
//   2. getattr/readdir stats: optional 4 more words carry the sub-millisecond part of
//      atime/mtime/ctime (times round-trip with nanosecond precision) and the high 32
//      bits of the inode number (the mount runs with use_ino; XFS has 64-bit inodes).
//   3. open/create: an optional second value from JS sets direct_io (bit 0) or keep_cache
//      (bit 1) per file (control files need direct_io: their size changes under the
//      kernel's attribute cache).
//   4. exports jvs_patch_level so the mount refuses to run on an unpatched binding.
//   5. includes native/jvs_fuse_fastpath.c: current/ and snapshot folders served by C on
//      libfuse's threads (no JS round trip), with the write gate for consistent cuts.
//   6. the descriptors fuse_mount() opens are close-on-exec (hooks must not inherit them).
//   7. JVS_MOUNT_SINGLE_THREAD=1 selects libfuse's single-threaded loop (see below).
// Idempotent; the pristine source is kept as fuse-native.c.orig beside the package.
// No header download: node-gyp gets --nodedir of the running Node, as build-native.mjs.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { gypRebuild } from './lib/nodeGyp.mjs';

export const PATCH_LEVEL = 3;
const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const require = createRequire(import.meta.url);

const fail = (why) => {
  const msg = `jvs: patched FUSE binding NOT built (${why}); \`jvs mount\` will refuse to start`;
  console.error('\n' + '!'.repeat(Math.min(msg.length, 100)) + '\n' + msg + '\n');
  process.exit(process.env.JVS_REQUIRE_NATIVE === '1' ? 1 : 0);
};

let pkgDir;
try {
  pkgDir = path.dirname(require.resolve('fuse-native/package.json'));
} catch {
  fail('fuse-native is not installed');
}
const srcFile = path.join(pkgDir, 'fuse-native.c');
const origFile = `${srcFile}.orig`;
if (!fs.existsSync(origFile)) fs.copyFileSync(srcFile, origFile);
let c = fs.readFileSync(origFile, 'utf8');

/** Replace exactly one occurrence; a moved anchor (new fuse-native) fails loudly. */
function sub(anchor, replacement) {
  const n = c.split(anchor).length - 1;
  if (n !== 1) fail(`patch anchor found ${n} times: ${anchor.slice(0, 60)}`);
  c = c.replace(anchor, () => replacement);
}

// Thread locals: room for two full timespecs.
sub('  size_t mtime;\n  int32_t res;', '  size_t mtime;\n  struct timespec jvs_ts[2];\n  int32_t res;');

// Sub-millisecond parts of the three times, when JS sends the extended stat array.
sub('static void populate_statvfs', `#define JVS_STAT_WORDS 22
static void jvs_populate_stat (uint32_t *ints, size_t len_bytes, struct stat *stat) {
  populate_stat(ints, stat);
  if (len_bytes >= JVS_STAT_WORDS * sizeof(uint32_t)) {
    stat->st_atim.tv_nsec += ints[18] % 1000000;
    stat->st_mtim.tv_nsec += ints[19] % 1000000;
    stat->st_ctim.tv_nsec += ints[20] % 1000000;
    stat->st_ino |= ((ino_t) ints[21]) << 32;
  }
}

static void populate_statvfs`);
sub(`}, {
  NAPI_ARGV_BUFFER_CAST(uint32_t*, ints, 2)
  populate_stat(ints, l->stat);
})

FUSE_METHOD(fgetattr`, `}, {
  NAPI_ARGV_BUFFER_CAST(uint32_t*, ints, 2)
  jvs_populate_stat(ints, ints_len, l->stat);
})

FUSE_METHOD(fgetattr`);
sub(`}, {
  NAPI_ARGV_BUFFER_CAST(uint32_t*, ints, 2)
  populate_stat(ints, l->stat);
})

FUSE_METHOD_VOID(access`, `}, {
  NAPI_ARGV_BUFFER_CAST(uint32_t*, ints, 2)
  jvs_populate_stat(ints, ints_len, l->stat);
})

FUSE_METHOD_VOID(access`);
sub('      populate_stat(stats_array, &st);', '      memset(&st, 0, sizeof(st));\n      jvs_populate_stat(stats_array, stats_array_len, &st);');

// open/create: optional per-file flags from JS.
const fileFlags = `  NAPI_ARGV_INT32(fd, 2)
  if (fd != 0) {
    l->info->fh = fd;
  }
  int32_t jvs_flags = 0;
  if (argc > 3) napi_get_value_int32(env, argv[3], &jvs_flags);
  if (jvs_flags & 1) l->info->direct_io = 1;
  if (jvs_flags & 2) l->info->keep_cache = 1;
})`;
sub(`FUSE_METHOD(open, 2, 1, (const char *path, struct fuse_file_info *info), {`, `FUSE_METHOD(open, 2, 2, (const char *path, struct fuse_file_info *info), {`);
sub(`  }
}, {
  NAPI_ARGV_INT32(fd, 2)
  if (fd != 0) {
    l->info->fh = fd;
  }
})

FUSE_METHOD(opendir`, `  }
}, {
${fileFlags}

FUSE_METHOD(opendir`);
sub(`FUSE_METHOD(create, 2, 1, (const char *path, mode_t mode, struct fuse_file_info *info), {`, `FUSE_METHOD(create, 2, 2, (const char *path, mode_t mode, struct fuse_file_info *info), {`);
sub(`  napi_create_uint32(env, l->mode, &(argv[3]));
}, {
  NAPI_ARGV_INT32(fd, 2)
  if (fd != 0) {
    l->info->fh = fd;
  }
})

FUSE_METHOD_VOID(utimens`, `  napi_create_uint32(env, l->mode, &(argv[3]));
}, {
${fileFlags}

FUSE_METHOD_VOID(utimens`);

// utimens: both times, seconds (double) + nanoseconds (UTIME_NOW / UTIME_OMIT kept).
sub(`FUSE_METHOD_VOID(utimens, 5, 0, (const char *path, const struct timespec tv[2]), {
  l->path = path;
  l->atime = timespec_to_uint64(&tv[0]);
  l->mtime = timespec_to_uint64(&tv[1]);
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  FUSE_UINT64_TO_INTS_ARGV(l->atime, 3)
  FUSE_UINT64_TO_INTS_ARGV(l->atime, 5)
})`, `FUSE_METHOD_VOID(utimens, 5, 0, (const char *path, const struct timespec tv[2]), {
  l->path = path;
  l->jvs_ts[0] = tv[0];
  l->jvs_ts[1] = tv[1];
}, {
  napi_create_string_utf8(env, l->path, NAPI_AUTO_LENGTH, &(argv[2]));
  napi_create_double(env, (double) l->jvs_ts[0].tv_sec, &(argv[3]));
  napi_create_uint32(env, (uint32_t) l->jvs_ts[0].tv_nsec, &(argv[4]));
  napi_create_double(env, (double) l->jvs_ts[1].tv_sec, &(argv[5]));
  napi_create_uint32(env, (uint32_t) l->jvs_ts[1].tv_nsec, &(argv[6]));
})`);
sub('  if (implemented[op_utimens]) ops.utimens = fuse_native_utimens;', '  if (implemented[op_utimens]) ops.utimens = fuse_native_utimens;\n  ops.flag_utime_omit_ok = 1;');

sub('  NAPI_EXPORT_SIZEOF(fuse_thread_t)', `  NAPI_EXPORT_SIZEOF(fuse_thread_t)
  NAPI_EXPORT_UINT32(jvs_patch_level)
  jvs_fastpath_init();
  NAPI_EXPORT_FUNCTION(jvs_fastpath_configure)
  NAPI_EXPORT_FUNCTION(jvs_gate_hold)
  NAPI_EXPORT_FUNCTION(jvs_gate_release)`);
// The fast path (its own file, included so it shares the binding's types and macros).
sub('NAPI_METHOD(fuse_native_mount) {', '#include "jvs_fuse_fastpath.c"\n\nNAPI_METHOD(fuse_native_mount) {');
sub('  if (implemented[op_init]) ops.init = fuse_native_init;', '  if (implemented[op_init]) ops.init = fuse_native_init;\n  jvs_fastpath_install(&ops);');
sub('  struct fuse_chan *ch = fuse_mount(mnt, &args);', '  static unsigned char jvs_fds[JVS_FD_SCAN];\n  jvs_fds_open(jvs_fds);\n  struct fuse_chan *ch = fuse_mount(mnt, &args);\n  jvs_cloexec_new(jvs_fds);');
// JVS_MOUNT_SINGLE_THREAD=1: libfuse's single-threaded loop. Sequential metadata work
// (untar) runs ~40% faster without the worker hand-offs, but every request then waits
// while a control-file snapshot runs, so it is not the default (docs/mount.md).
sub('  fuse_loop_mt(ft->fuse);', '  if (getenv("JVS_MOUNT_SINGLE_THREAD")) fuse_loop(ft->fuse); else fuse_loop_mt(ft->fuse);');
c = '#define _GNU_SOURCE\n' + c;
sub('static int IS_ARRAY_BUFFER_DETACH_SUPPORTED = 0;', `static int IS_ARRAY_BUFFER_DETACH_SUPPORTED = 0;\nstatic const uint32_t jvs_patch_level = ${PATCH_LEVEL};`);

// Build in build/fuse-native/ against the system libfuse (pkg-config fuse).
const work = path.join(root, 'build/fuse-native');
fs.mkdirSync(work, { recursive: true });
fs.writeFileSync(path.join(work, 'fuse-native.c'), c);
fs.copyFileSync(path.join(root, 'native/jvs_fuse_fastpath.c'), path.join(work, 'jvs_fuse_fastpath.c'));
const pkg = (args) => {
  const r = spawnSync('pkg-config', ['fuse', ...args], { encoding: 'utf8' });
  if (r.status !== 0) fail('pkg-config cannot find libfuse 2 (install libfuse-dev)');
  return r.stdout.trim().split(/\s+/).filter(Boolean);
};
const cflags = pkg(['--cflags']);
const libs = pkg(['--libs']);
let napiMacros;
try {
  napiMacros = path.dirname(require.resolve('napi-macros/napi-macros.h', { paths: [pkgDir] }));
} catch {
  fail('napi-macros (a fuse-native dependency) is missing');
}
fs.writeFileSync(path.join(work, 'binding.gyp'), JSON.stringify({
  targets: [{
    target_name: 'fuse',
    sources: ['fuse-native.c'],
    include_dirs: [napiMacros, ...cflags.filter((f) => f.startsWith('-I')).map((f) => f.slice(2))],
    defines: cflags.filter((f) => f.startsWith('-D')).map((f) => f.slice(2)),
    libraries: libs,
    cflags: ['-O2', '-Wall', '-Wno-unused-function', '-Wno-unused-variable', '-Wno-unused-but-set-variable'],
  }],
}, null, 2));

const gypError = gypRebuild(work);
if (gypError) fail(gypError);
const dest = path.join(pkgDir, 'build/Release');
fs.mkdirSync(dest, { recursive: true });
// A new inode (copy, then rename): a running mount keeps its mapped copy intact.
fs.copyFileSync(path.join(work, 'build/Release/fuse.node'), path.join(dest, 'fuse.node.tmp'));
fs.renameSync(path.join(dest, 'fuse.node.tmp'), path.join(dest, 'fuse.node'));
console.error(`jvs: patched FUSE binding built (patch level ${PATCH_LEVEL}) → ${path.relative(root, path.join(dest, 'fuse.node'))}`);
