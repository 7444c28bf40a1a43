import type { DirtyWalk } from './dirtyWalk.js';
import fs from 'node:fs';
import { attrOf, VIRTUAL_INO, virtualAttr, type Attr } from './attrs.js';
import type { ControlFiles } from './control.js';
import { CtlMessage, MAX_CTL_REQUEST } from './ctlMessage.js';
import { fsErr } from './errno.js';
import { JvsError } from '../errors.js';
import type { WriteGate } from './gate.js';
import { CONTROL, CTL, CTL_FILES, CURRENT, route, SNAPSHOTS, type CtlName, type Route } from './router.js';
import type { SnapshotView } from './snapshotView.js';

/** Per-file flag for the kernel (replyOpen's flags in native/fuse/virtual.c): no page cache. */
export const OPEN_DIRECT_IO = 1;

type Handle = { kind: 'ctl'; name: CtlName; content: Buffer; message: CtlMessage; refused?: unknown };

export interface Opened {
  fh: number;
  flags: number;
}

/** A time as utimensat takes it; nsec may be UTIME_NOW or UTIME_OMIT. */
export interface TimeSpec {
  sec: number;
  nsec: number;
}

const { O_RDONLY, O_TRUNC } = fs.constants;
const O_ACCMODE = 3;

/**
 * The mount's virtual nodes as a tree of paths, independent of the kernel: the root,
 * `.jvs/`, the snapshot name table (ids, tags, HEAD) and the control files. The libfuse 3
 * adapter (lowlevelAdapter.ts) only converts arguments and errors. Methods throw FsError
 * (or Node system errors) for failures; every change outside the control files is EROFS.
 *
 * Everything below `current/` and below a snapshot id folder is the C session's
 * (native/fuse/ops.c, by inode): the kernel never brings those paths here, so they are
 * ENOENT. The tree still gives the attributes of `current/` itself and of each id folder,
 * which the listings of the root and of `.jvs/snapshots/` carry.
 */
export class MountTree {
  private readonly handles = new Map<number, Handle>();
  private nextFh = 1;
  private readonly mountedNs = BigInt(Date.now()) * 1_000_000n;
  /**
   * Called after current/ changed behind the kernel's back (a restore), before the
   * request returns: the libfuse 3 binding drops the kernel's entries, attributes and
   * pages for it.
   */
  onCurrentChanged: () => Promise<void> = async () => {};
  /** Dirty tracking of current/ for control-file snapshots (set by the adapter). */
  dirtyWalk: DirtyWalk | undefined;

  constructor(
    /** The served worktree's payload folder, which the C session serves as `current/`. */
    readonly current: { readonly root: string },
    readonly snapshots: SnapshotView,
    readonly control: ControlFiles,
    readonly gate: WriteGate,
  ) {}

  // --- lookup and listing -------------------------------------------------------

  async getattr(p: string): Promise<Attr> {
    const r = route(p);
    switch (r.kind) {
      case 'root':
        return virtualAttr('dir', 0o755, 4096, this.mountedNs, VIRTUAL_INO + 1);
      case 'control':
        return virtualAttr('dir', 0o555, 4096, this.mountedNs, VIRTUAL_INO + 2);
      case 'snapshots':
        return virtualAttr('dir', 0o555, 4096, this.mountedNs, VIRTUAL_INO + 3);
      case 'ctlDir':
        return virtualAttr('dir', 0o555, 4096, this.mountedNs, VIRTUAL_INO + 4);
      case 'current':
        if (r.rel) throw fsErr('ENOENT');
        return attrOf(fs.lstatSync(this.current.root, { bigint: true }));
      case 'snapshot':
        if (r.rel) throw fsErr('ENOENT');
        return this.snapshots.nameAttr(r.name);
      case 'ctl': {
        const s = this.control.stat(r.name);
        // Owner only: the results and the status list names inside the worktree, which
        // may sit in folders other users cannot read (with --allow-other).
        return virtualAttr('file', this.control.writable(r.name) ? 0o600 : 0o400, s.size, s.mtimeNs, VIRTUAL_INO + 5 + CTL_FILES.indexOf(r.name));
      }
      case 'none':
        throw fsErr('ENOENT');
    }
  }

  async readdir(p: string): Promise<string[]> {
    const r = route(p);
    const dots = ['.', '..'];
    switch (r.kind) {
      case 'root':
        return [...dots, CURRENT, CONTROL];
      case 'control':
        return [...dots, SNAPSHOTS, CTL];
      case 'snapshots':
        return [...dots, ...this.snapshots.list()];
      case 'ctlDir':
        return [...dots, ...CTL_FILES];
      default:
        throw r.kind === 'ctl' ? fsErr('ENOTDIR') : fsErr('ENOENT');
    }
  }

  async readlink(p: string): Promise<string> {
    const r = route(p);
    if (r.kind === 'snapshot' && !r.rel) return this.snapshots.readlink(r.name);
    throw fsErr(r.kind === 'none' || r.kind === 'current' || r.kind === 'snapshot' ? 'ENOENT' : 'EINVAL');
  }

  // --- control files ----------------------------------------------------------------

  private add(h: Handle, flags = 0): Opened {
    const fh = this.nextFh++;
    if (this.nextFh > 0x7fffffff) this.nextFh = 1;
    this.handles.set(fh, h);
    return { fh, flags };
  }

  private handle(fh: number): Handle {
    const h = this.handles.get(fh);
    if (!h) throw fsErr('EBADF');
    return h;
  }

  async open(p: string, flags: number): Promise<Opened> {
    const r = route(p);
    const writing = (flags & O_ACCMODE) !== O_RDONLY || (flags & O_TRUNC) !== 0;
    switch (r.kind) {
      case 'ctl':
        if (writing && !this.control.writable(r.name)) throw fsErr('EACCES');
        return this.add({ kind: 'ctl', name: r.name, content: this.control.content(r.name), message: new CtlMessage() }, OPEN_DIRECT_IO);
      default:
        // Folders and the name table's links; what is not ours is ENOENT (readOnly).
        throw writing ? this.readOnly(r) : r.kind === 'none' || r.kind === 'current' || (r.kind === 'snapshot' && r.rel) ? fsErr('ENOENT') : fsErr('EISDIR');
    }
  }

  async read(fh: number, buf: Buffer, len: number, pos: number): Promise<number> {
    const h = this.handle(fh);
    if (pos >= h.content.length) return 0;
    return h.content.copy(buf, 0, pos, Math.min(h.content.length, pos + len));
  }

  async write(fh: number, buf: Buffer, len: number, _pos: number): Promise<number> {
    const h = this.handle(fh);
    // A message too large for one request fails this write and every later one on
    // the handle (the rest of it must not become requests of their own).
    if (h.refused) throw h.refused;
    // add() copies: the kernel's buffer is only valid until this call returns.
    if (!h.message.add(buf.subarray(0, len))) {
      h.message.clear();
      h.refused = this.control.refuse(
        h.name,
        new JvsError(h.name === 'snapshot' ? 'E_NOTE_INVALID' : 'E_USAGE', `the ${h.name} request is larger than ${MAX_CTL_REQUEST / 1024} KiB`, {
          hint: h.name === 'snapshot' ? 'notes are limited to 64 KiB; write one line (or one JSON object) per request' : 'write one ref per request',
        }),
      );
      h.content = this.control.content(h.name);
      throw h.refused;
    }
    const text = h.message.takeComplete();
    if (text !== undefined) await this.runCtl(h, text);
    return len;
  }

  private async runCtl(h: Handle, text: string): Promise<void> {
    try {
      await this.control.request(h.name, text);
    } finally {
      h.content = this.control.content(h.name);
    }
  }

  /** Close of one descriptor: a control-file message without its final newline runs now. */
  async flush(fh: number): Promise<void> {
    const h = this.handles.get(fh);
    if (!h || h.refused) return;
    const text = h.message.takeRest();
    if (text !== undefined) await this.runCtl(h, text);
  }

  async release(fh: number): Promise<void> {
    // Without a flush before (the kernel always sends one on close), run what is left.
    await this.flush(fh).catch(() => {});
    this.handles.delete(fh);
  }

  // --- attribute changes (setattr) ----------------------------------------------------

  private readOnly(r: Route) {
    return r.kind === 'none' || ((r.kind === 'current' || r.kind === 'snapshot') && r.rel) ? fsErr('ENOENT') : fsErr('EROFS');
  }

  async truncate(p: string, _size: number): Promise<void> {
    const r = route(p);
    // `echo … > ctl/snapshot` truncates first; control files have nothing to cut.
    if (r.kind === 'ctl' && this.control.writable(r.name)) return;
    throw this.readOnly(r);
  }

  async utimens(p: string, _atime: TimeSpec, _mtime: TimeSpec): Promise<void> {
    const r = route(p);
    // Control files ignore times (`touch ctl/snapshot` must not fail).
    if (r.kind === 'ctl') return;
    throw this.readOnly(r);
  }

  async chmod(p: string, _mode: number): Promise<void> {
    const r = route(p);
    throw r.kind === 'ctl' ? fsErr('EPERM') : this.readOnly(r);
  }

  async chown(p: string, _uid: number, _gid: number): Promise<void> {
    const r = route(p);
    throw r.kind === 'ctl' ? fsErr('EPERM') : this.readOnly(r);
  }
}
