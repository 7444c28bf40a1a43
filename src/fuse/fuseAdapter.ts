import { createRequire } from 'node:module';
import path from 'node:path';
import { JvsError } from '../errors.js';
import type { Attr } from './attrs.js';
import { negErrno } from './errno.js';
import type { MountTree } from './mountTree.js';

/**
 * The only file that knows fuse-native: it converts the kernel's arguments into
 * MountTree calls and results or errors into what the binding expects (byte counts or
 * `-errno`, stat arrays). It relies on JVS's patched build of the binding
 * (scripts/build-fuse.mjs), which fixes utimens, carries nanosecond times and per-file
 * direct_io/keep_cache flags; without that patch the mount refuses to start.
 */
export const REQUIRED_PATCH_LEVEL = 3;

export interface FuseMountOptions {
  allowOther?: boolean;
  /**
   * Serve extended attributes (libfuse 3 mount only). Off by default: once a server
   * answers getxattr, the kernel asks it for security.capability before every write(2)
   * (one more round trip each; see docs/mount.md).
   */
  xattrs?: boolean;
  debug?: boolean;
  /** Serve current/ and snapshot folders in JS too (slow; for comparison and debugging). */
  jsPassthrough?: boolean;
}

interface PatchedBinding {
  jvs_patch_level?: number;
  jvs_fastpath_configure(currentRoot: string, snapshotsRoot: string): void;
  jvs_gate_hold(): void;
  jvs_gate_release(): void;
}

export interface FuseMount {
  /** Unmount (fusermount -uz) and release the binding. */
  unmount(): Promise<void>;
}

type Cb = (...a: any[]) => void;

/** fuse-native's 18-word stat array plus sub-millisecond nanoseconds and the inode's high word. */
export function statArray(a: Attr): Uint32Array {
  const ints = new Uint32Array(22);
  const setDouble = (i: number, n: number) => {
    const v = Math.max(0, Math.floor(n));
    ints[i] = v % 4294967296;
    ints[i + 1] = Math.floor(v / 4294967296);
  };
  ints[0] = a.mode;
  ints[1] = a.uid;
  ints[2] = a.gid;
  setDouble(3, a.size);
  ints[5] = 0;
  ints[6] = a.nlink;
  ints[7] = a.ino % 4294967296;
  ints[21] = Math.floor(a.ino / 4294967296);
  ints[8] = a.rdev;
  ints[9] = a.blksize;
  setDouble(10, a.blocks);
  const times = [a.atimeNs, a.mtimeNs, a.ctimeNs];
  times.forEach((ns, k) => {
    const t = ns < 0n ? 0n : ns;
    setDouble(12 + 2 * k, Number(t / 1_000_000n));
    ints[18 + k] = Number(t % 1_000_000n);
  });
  return ints;
}

/** Load fuse-native and check that the patched binding is the one it loaded. */
async function loadFuse(): Promise<{ Fuse: any; binding: PatchedBinding }> {
  const { default: Fuse } = await import('fuse-native');
  const require = createRequire(import.meta.url);
  const dir = path.dirname(require.resolve('fuse-native/package.json'));
  // The same module object fuse-native loaded (require caches addons by path).
  const binding = (require('node-gyp-build') as (d: string) => PatchedBinding)(dir);
  if ((binding.jvs_patch_level ?? 0) < REQUIRED_PATCH_LEVEL) {
    throw new JvsError('E_ENGINE_UNAVAILABLE', 'the FUSE binding is the unpatched fuse-native build, which loses file times (utimens defect)', {
      hint: 'install libfuse-dev, then run `npm run build:fuse` in the JVS folder (it rebuilds fuse-native with the JVS patch)',
    });
  }
  return { Fuse, binding };
}

export async function mountFuse(tree: MountTree, mountpoint: string, opts: FuseMountOptions = {}): Promise<FuseMount> {
  const { Fuse, binding } = await loadFuse();
  if (!opts.jsPassthrough) {
    // current/ and snapshot folders are served by C on libfuse's threads; JS keeps the
    // root, the snapshot name table and the control files.
    binding.jvs_fastpath_configure(tree.current.root, tree.snapshots.root);
    tree.gate.attachNative({ hold: () => binding.jvs_gate_hold(), release: () => binding.jvs_gate_release() });
  }
  const run = <T>(p: Promise<T>, ok: (v: T) => void, fail: (errno: number) => void) => {
    p.then(ok, (e) => {
      if (opts.debug && !(e as { errno?: string })?.errno) process.stderr.write(`jvs mount: ${(e as Error)?.stack ?? String(e)}\n`);
      fail(negErrno(e));
    });
  };
  const done = (cb: Cb) => (p: Promise<void>) => run(p, () => cb(0), (n) => cb(n));

  // Operations whose argument layout the patch changed (or whose results carry more)
  // are handled by overriding the binding's dispatch methods.
  class JvsFuse extends Fuse {
    constructor(...a: unknown[]) {
      super(...a);
    }
    _fuseOptions(): string {
      const base: string = super._fuseOptions();
      // big_writes: 128 KiB writes instead of 4 KiB (DESIGN section 6: 34 → ~300 MB/s).
      // use_ino: real inode numbers, so hard links look like hard links (tar, rsync -H, git).
      return (base ? `${base},` : '-o') + 'big_writes,use_ino,fsname=jvs,subtype=jvs,default_permissions';
    }
    _op_getattr(signal: Cb, p: string) {
      run(tree.getattr(p), (a) => signal(0, statArray(a)), (n) => signal(n));
    }
    _op_fgetattr(signal: Cb, p: string, fh: number) {
      run(tree.fgetattr(p, fh), (a) => signal(0, statArray(a)), (n) => signal(n));
    }
    _op_readdir(signal: Cb, p: string) {
      run(tree.readdir(p), (names) => signal(0, names, []), (n) => signal(n));
    }
    _op_open(signal: Cb, p: string, flags: number) {
      run(tree.open(p, flags), (o) => signal(0, o.fh, o.flags), (n) => signal(n, 0, 0));
    }
    _op_create(signal: Cb, p: string, mode: number) {
      run(tree.create(p, mode), (o) => signal(0, o.fh, o.flags), (n) => signal(n, 0, 0));
    }
    _op_utimens(signal: Cb, p: string, aSec: number, aNsec: number, mSec: number, mNsec: number) {
      run(tree.utimens(p, { sec: aSec, nsec: aNsec }, { sec: mSec, nsec: mNsec }), () => signal(0), (n) => signal(n));
    }
  }

  const ops = {
    getattr: true,
    fgetattr: true,
    readdir: true,
    open: true,
    create: true,
    utimens: true,
    readlink: (p: string, cb: Cb) => run(tree.readlink(p), (t) => cb(0, t), (n) => cb(n)),
    read: (_p: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) => run(tree.read(fh, buf, len, pos), (k) => cb(k), (n) => cb(n)),
    write: (_p: string, fh: number, buf: Buffer, len: number, pos: number, cb: Cb) => run(tree.write(fh, buf, len, pos), (k) => cb(k), (n) => cb(n)),
    release: (_p: string, fh: number, cb: Cb) => done(cb)(tree.release(fh)),
    flush: (_p: string, fh: number, cb: Cb) => done(cb)(tree.flush(fh)),
    fsync: (_p: string, datasync: number, fh: number, cb: Cb) => done(cb)(tree.fsync(fh, !!datasync)),
    truncate: (p: string, size: number, cb: Cb) => done(cb)(tree.truncate(p, size)),
    ftruncate: (p: string, fh: number, size: number, cb: Cb) => done(cb)(tree.ftruncate(p, fh, size)),
    chown: (p: string, uid: number, gid: number, cb: Cb) => done(cb)(tree.chown(p, uid, gid)),
    chmod: (p: string, mode: number, cb: Cb) => done(cb)(tree.chmod(p, mode)),
    unlink: (p: string, cb: Cb) => done(cb)(tree.unlink(p)),
    rename: (a: string, b: string, cb: Cb) => done(cb)(tree.rename(a, b)),
    link: (a: string, b: string, cb: Cb) => done(cb)(tree.link(a, b)),
    symlink: (target: string, p: string, cb: Cb) => done(cb)(tree.symlink(target, p)),
    mkdir: (p: string, mode: number, cb: Cb) => done(cb)(tree.mkdir(p, mode)),
    rmdir: (p: string, cb: Cb) => done(cb)(tree.rmdir(p)),
    statfs: (p: string, cb: Cb) =>
      run(tree.statfs(p), (s) => cb(0, { bsize: s.bsize, frsize: s.bsize, blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, favail: s.ffree, fsid: 0, flag: 0, namemax: 255 }), (n) => cb(n)),
  };

  const fuse = new JvsFuse(mountpoint, ops, {
    // A long snapshot through the control file must not fail with ETIMEDOUT after 15 s.
    timeout: false,
    autoUnmount: true,
    force: true,
    autoCache: true,
    allowOther: !!opts.allowOther,
    debug: !!opts.debug,
  });
  await new Promise<void>((resolve, reject) =>
    fuse.mount((err: Error | null) => (err ? reject(new JvsError('E_IO', `mounting ${mountpoint} failed: ${err.message}`, { hint: 'check that /dev/fuse exists, libfuse2 and fusermount are installed, and the folder is empty', cause: err })) : resolve())),
  );
  return {
    unmount: () => new Promise<void>((resolve, reject) => fuse.unmount((err: Error | null) => (err ? reject(err) : resolve()))),
  };
}
