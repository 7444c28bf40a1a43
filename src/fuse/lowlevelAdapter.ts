import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { JvsError } from '../errors.js';
import type { Attr } from './attrs.js';
import { errnoOf } from './errno.js';
import type { MountTree } from './mountTree.js';
import { DirtyWalk } from './dirtyWalk.js';
import { CONTROL, CTL, CTL_FILES, SNAPSHOTS } from './router.js';
import os from 'node:os';

/**
 * The mount on libfuse 3's low-level API (native/fuse/): C serves current/ and the
 * snapshot trees by inode on its own threads; this file answers the virtual inodes
 * (root, .jvs/, the snapshot name table, control files) from MountTree, which keeps
 * their semantics in one place, testable without a kernel.
 *
 * Virtual nodeids are small fixed numbers (C treats everything below 2^32 as virtual):
 * 1 the root, 2 .jvs, 3 .jvs/snapshots (C serves the id folders in it), 4 .jvs/ctl,
 * 5.. the control files, 16.. names of the snapshot table (tags, HEAD) as they are met.
 */
export interface FuseMountOptions {
  allowOther?: boolean;
  /**
   * Serve extended attributes. Off by default: once a server answers getxattr, the
   * kernel asks it for security.capability before every write(2) (one more round trip
   * each; see docs/mount.md).
   */
  xattrs?: boolean;
  debug?: boolean;
}

export interface FuseMount {
  /** Unmount and release the session. */
  unmount(): Promise<void>;
}

interface LowLevelAddon {
  mount(mountpoint: string, currentRoot: string, snapshotsRoot: string, handler: (m: Msg) => void, options: Record<string, unknown>): void;
  unmount(): void;
  gateHold(): void;
  gateRelease(): void;
  syncfs(): Promise<void>;
  invalidateCurrent(): Promise<void>;
  openFds(): number;
  transport(): { libfuse: string; uring: boolean; ringRequests: number; ringDeferred: number; devChanges: number };
  dirtyStart(root: string): boolean;
  dirtyTake(): { all: boolean; dirs: string[]; trees: string[] };
  dirtyStop(): void;
  replyErr(req: object, errno: number): void;
  replyEntry(req: object, nodeid: number, attr: Float64Array, timeout: number): void;
  replyAttr(req: object, attr: Float64Array, timeout: number): void;
  replyReadlink(req: object, target: string): void;
  replyOpen(req: object, fh: number, flags: number): void;
  replyBuf(req: object, data: Buffer): void;
  replyWrite(req: object, n: number): void;
  replyDirents(req: object, names: string[], inos: Float64Array, modes: Uint32Array, off: number, size: number, plus: boolean): void;
}

/** The fuse module's enable_uring parameter is on (kernels with CONFIG_FUSE_IO_URING). */
export function kernelUringEnabled(): boolean {
  try {
    return /^[Y1]/.test(fs.readFileSync('/sys/module/fuse/parameters/enable_uring', 'utf8'));
  } catch {
    return false;
  }
}

/** One request for a virtual inode, as native/fuse/virtual.c hands it over. */
interface Msg {
  op: string;
  req: object;
  ino: number;
  name?: string;
  data?: Buffer;
  a: number;
  b: number;
  fh: number;
  flags: number;
}

const FUSE_SET_ATTR_MODE = 1 << 0;
const FUSE_SET_ATTR_UID = 1 << 1;
const FUSE_SET_ATTR_GID = 1 << 2;
const FUSE_SET_ATTR_SIZE = 1 << 3;
const FUSE_SET_ATTR_TIMES = (1 << 4) | (1 << 5) | (1 << 7) | (1 << 8);
const UTIME_OMIT = { sec: 0, nsec: (1 << 30) - 2 };

/** The addon, or a JvsError saying how to build it. */
export function loadLowLevel(): LowLevelAddon {
  const here = path.dirname(fileURLToPath(import.meta.url));
  try {
    return createRequire(import.meta.url)(path.resolve(here, '../../build/Release/jvs_fuse3.node')) as LowLevelAddon;
  } catch (e) {
    throw new JvsError('E_ENGINE_UNAVAILABLE', `the libfuse 3 mount is not built: ${(e as Error).message}`, {
      hint: 'install fuse3 and libfuse3-dev, then run `npm run build:fuse3` in the JVS folder',
      cause: e,
    });
  }
}

export function attrArray(a: Attr): Float64Array {
  const s = (ns: bigint) => Number((ns < 0n ? 0n : ns) / 1_000_000_000n);
  const n = (ns: bigint) => Number((ns < 0n ? 0n : ns) % 1_000_000_000n);
  return Float64Array.from([a.ino, a.mode, a.nlink, a.uid, a.gid, a.size, a.blocks, a.blksize, a.rdev, s(a.atimeNs), n(a.atimeNs), s(a.mtimeNs), n(a.mtimeNs), s(a.ctimeNs), n(a.ctimeNs)]);
}

/** Nodeids of virtual paths: the fixed ones, then names of the snapshot table as met. */
class VirtualIds {
  private readonly byPath = new Map<string, number>();
  private readonly byId = new Map<number, string>();
  private next = 16;

  constructor() {
    const fixed = ['/', `/${CONTROL}`, `/${CONTROL}/${SNAPSHOTS}`, `/${CONTROL}/${CTL}`, ...CTL_FILES.map((f) => `/${CONTROL}/${CTL}/${f}`)];
    fixed.forEach((p, i) => this.set(p, i + 1));
  }

  private set(p: string, id: number): void {
    this.byPath.set(p, id);
    this.byId.set(id, p);
  }

  idOf(p: string): number {
    let id = this.byPath.get(p);
    if (id === undefined) this.set(p, (id = this.next++));
    return id;
  }

  pathOf(id: number): string | undefined {
    return this.byId.get(id);
  }
}

/** Entry and attribute timeouts of virtual nodes: the name table and control files change. */
function timeoutOf(p: string): number {
  if (p.startsWith(`/${CONTROL}/${SNAPSHOTS}/`) || p.startsWith(`/${CONTROL}/${CTL}/`)) return 0;
  return 1;
}

export async function mountLowLevel(tree: MountTree, mountpoint: string, opts: FuseMountOptions & { loop?: 'hybrid' | 'single' | 'multi'; maxFds?: number } = {}): Promise<FuseMount> {
  const addon = loadLowLevel();
  const ids = new VirtualIds();
  const child = (parent: string, name: string) => (parent === '/' ? `/${name}` : `${parent}/${name}`);

  async function handle(m: Msg, reply: { done: boolean }): Promise<void> {
    const p = ids.pathOf(m.ino);
    if (p === undefined) throw Object.assign(new Error('unknown virtual inode'), { code: 'ENOENT' });
    const r = m.req;
    switch (m.op) {
      case 'lookup': {
        const c = child(p, m.name ?? '');
        const a = await tree.getattr(c);
        reply.done = true;
        return addon.replyEntry(r, ids.idOf(c), attrArray(a), timeoutOf(c));
      }
      case 'getattr': {
        const a = await tree.getattr(p);
        reply.done = true;
        return addon.replyAttr(r, attrArray(a), timeoutOf(p));
      }
      case 'setattr': {
        if (m.a & FUSE_SET_ATTR_MODE) await tree.chmod(p, 0);
        if (m.a & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) await tree.chown(p, 0xffffffff, 0xffffffff);
        if (m.a & FUSE_SET_ATTR_SIZE) await tree.truncate(p, m.b);
        if (m.a & FUSE_SET_ATTR_TIMES) await tree.utimens(p, UTIME_OMIT, UTIME_OMIT);
        const a = await tree.getattr(p);
        reply.done = true;
        return addon.replyAttr(r, attrArray(a), timeoutOf(p));
      }
      case 'readlink': {
        const t = await tree.readlink(p);
        reply.done = true;
        return addon.replyReadlink(r, t);
      }
      case 'open': {
        const o = await tree.open(p, m.flags);
        reply.done = true;
        return addon.replyOpen(r, o.fh, o.flags);
      }
      case 'read': {
        const buf = Buffer.alloc(m.a);
        const n = await tree.read(m.fh, buf, m.a, m.b);
        reply.done = true;
        return addon.replyBuf(r, buf.subarray(0, n));
      }
      case 'write': {
        const data = m.data ?? Buffer.alloc(0);
        const n = await tree.write(m.fh, data, data.length, m.a);
        reply.done = true;
        return addon.replyWrite(r, n);
      }
      case 'flush': {
        await tree.flush(m.fh);
        reply.done = true;
        return addon.replyErr(r, 0);
      }
      case 'release': {
        await tree.release(m.fh);
        reply.done = true;
        return addon.replyErr(r, 0);
      }
      case 'readdir':
      case 'readdirplus': {
        const names = await tree.readdir(p);
        const inos = new Float64Array(names.length);
        const modes = new Uint32Array(names.length);
        const self = await tree.getattr(p);
        for (let i = 0; i < names.length; i++) {
          const n = names[i]!;
          if (n === '.' || n === '..') {
            // Readers skip entries with inode number 0.
            inos[i] = self.ino;
            modes[i] = self.mode;
            continue;
          }
          try {
            const a = await tree.getattr(child(p, n));
            inos[i] = a.ino;
            modes[i] = a.mode;
          } catch {
            modes[i] = 0; /* vanished meanwhile: still listed, typed unknown */
          }
        }
        reply.done = true;
        return addon.replyDirents(r, names, inos, modes, m.b, m.a, m.op === 'readdirplus');
      }
      default:
        throw Object.assign(new Error(`unsupported ${m.op}`), { code: 'ENOSYS' });
    }
  }

  const handler = (m: Msg) => {
    const reply = { done: false };
    handle(m, reply).catch((e) => {
      if (opts.debug && !(e as { errno?: string })?.errno) process.stderr.write(`jvs mount: ${(e as Error)?.stack ?? String(e)}\n`);
      if (!reply.done) addon.replyErr(m.req, os.constants.errno[errnoOf(e)] ?? os.constants.errno.EIO);
    });
  };

  tree.gate.attachNative({ hold: () => addon.gateHold(), release: () => addon.gateRelease(), flush: () => addon.syncfs() });
  tree.onCurrentChanged = () => addon.invalidateCurrent();
  // FUSE over io_uring: when this build has it (libfuse 3.18, scripts/build-fuse3.mjs)
  // and the kernel allows it (root sets fuse.enable_uring once; see docs/mount.md).
  // JVS_MOUNT_URING=0 keeps /dev/fuse.
  const uring = process.env.JVS_MOUNT_URING !== '0' && addon.transport().uring && kernelUringEnabled();
  tree.control.transport = () => {
    const t = addon.transport();
    // io_uring: asked for at mount; changes_over_io_uring: changes the kernel sent through
    // the ring so far (0 after writes means libfuse fell back to /dev/fuse).
    return { libfuse: t.libfuse, io_uring: uring, changes_over_io_uring: t.ringRequests, changes_deferred: t.ringDeferred, changes_over_dev_fuse: t.devChanges };
  };
  try {
    addon.mount(mountpoint, tree.current.root, tree.snapshots.root, handler, {
      uring,
      allowOther: !!opts.allowOther,
      debug: !!opts.debug,
      loop: opts.loop ?? 'hybrid',
      writeback: true,
      switchCreds: !!opts.allowOther && process.getuid?.() === 0,
      xattrs: !!opts.xattrs,
      ...(opts.maxFds ? { maxFds: opts.maxFds } : {}),
    });
    // Dirty tracking (native/fuse/dirty.c): off with JVS_MOUNT_DIRTY=0, and by itself on
    // network and FUSE backings, where other machines' changes raise no event here.
    if (process.env.JVS_MOUNT_DIRTY !== '0' && addon.dirtyStart(tree.current.root)) {
      tree.dirtyWalk = new DirtyWalk({ take: () => addon.dirtyTake() }, tree.current.root);
      tree.dirtyWalk.rebase();
    }
  } catch (e) {
    throw new JvsError('E_IO', `mounting ${mountpoint} failed: ${(e as Error).message}`, {
      hint: 'check that /dev/fuse exists, fuse3 (fusermount3) is installed and the folder is empty',
      cause: e,
    });
  }
  return {
    unmount: async () => {
      addon.dirtyStop();
      addon.unmount();
    },
  };
}
