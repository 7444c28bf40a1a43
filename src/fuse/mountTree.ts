import type { DirtyWalk } from './dirtyWalk.js';
import fs from 'node:fs';
import { VIRTUAL_INO, virtualAttr, type Attr } from './attrs.js';
import type { ControlFiles } from './control.js';
import { CtlMessage, MAX_CTL_REQUEST } from './ctlMessage.js';
import { fsErr } from './errno.js';
import { JvsError } from '../errors.js';
import type { WriteGate } from './gate.js';
import type { Passthrough, TimeSpec } from './passthrough.js';
import { CONTROL, CTL, CTL_FILES, CURRENT, route, SNAPSHOTS, type CtlName, type Route } from './router.js';
import type { SnapshotView } from './snapshotView.js';

/** Per-file flags for the kernel (replyOpen's flags in native/fuse/virtual.c). */
export const OPEN_DIRECT_IO = 1;
export const OPEN_KEEP_CACHE = 2;

type Handle =
  | { kind: 'current'; fd: number }
  | { kind: 'snapshot'; fd: number }
  | { kind: 'ctl'; name: CtlName; content: Buffer; message: CtlMessage; refused?: unknown };

export interface Opened {
  fh: number;
  flags: number;
}

const { O_RDONLY, O_TRUNC } = fs.constants;
const O_ACCMODE = 3;

/**
 * The whole mount as a tree of paths, independent of the kernel: the libfuse 3 adapter
 * (lowlevelAdapter.ts) only converts arguments and errors. Methods throw FsError (or Node
 * system errors) for failures; every write outside `current/` and the control files is EROFS.
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
  /** Dirty tracking of current/ for control-file snapshots (libfuse 3 session only). */
  dirtyWalk: DirtyWalk | undefined;

  constructor(
    readonly current: Passthrough,
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
        return this.current.getattr(r.rel);
      case 'snapshot':
        if (!r.rel) return this.snapshots.nameAttr(r.name);
        return this.snapshots.attr(this.snapshots.dirOf(r.name), r.rel);
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

  async fgetattr(p: string, fh: number): Promise<Attr> {
    const h = this.handles.get(fh);
    if (h?.kind === 'current') return this.current.fgetattr(h.fd);
    return this.getattr(p);
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
      case 'current':
        return [...dots, ...this.current.readdir(r.rel)];
      case 'snapshot':
        return [...dots, ...this.snapshots.readdir(this.snapshots.dirOf(r.name), r.rel)];
      default:
        throw r.kind === 'ctl' ? fsErr('ENOTDIR') : fsErr('ENOENT');
    }
  }

  async readlink(p: string): Promise<string> {
    const r = route(p);
    if (r.kind === 'current') return this.current.readlink(r.rel);
    if (r.kind === 'snapshot') return r.rel ? this.snapshots.readlinkIn(this.snapshots.dirOf(r.name), r.rel) : this.snapshots.readlink(r.name);
    throw fsErr(r.kind === 'none' ? 'ENOENT' : 'EINVAL');
  }

  // --- files ----------------------------------------------------------------------

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
      case 'current': {
        const open = () => this.current.open(r.rel, flags);
        return this.add({ kind: 'current', fd: writing ? await this.gate.shared(open) : open() });
      }
      case 'snapshot': {
        if (writing) throw fsErr('EROFS');
        // Files below an id never change: the kernel may keep their pages across opens.
        return this.add({ kind: 'snapshot', fd: this.snapshots.open(this.snapshots.dirOf(r.name), r.rel) }, OPEN_KEEP_CACHE);
      }
      case 'ctl':
        if (writing && !this.control.writable(r.name)) throw fsErr('EACCES');
        return this.add({ kind: 'ctl', name: r.name, content: this.control.content(r.name), message: new CtlMessage() }, OPEN_DIRECT_IO);
      case 'none':
        throw fsErr('ENOENT');
      default:
        throw writing ? fsErr('EROFS') : fsErr('EISDIR');
    }
  }

  async create(p: string, mode: number): Promise<Opened> {
    const r = route(p);
    if (r.kind !== 'current') throw this.readOnly(r);
    return this.add({ kind: 'current', fd: await this.gate.shared(() => this.current.create(r.rel, mode)) });
  }

  async read(fh: number, buf: Buffer, len: number, pos: number): Promise<number> {
    const h = this.handle(fh);
    if (h.kind === 'ctl') {
      if (pos >= h.content.length) return 0;
      return h.content.copy(buf, 0, pos, Math.min(h.content.length, pos + len));
    }
    return this.current.read(h.fd, buf, len, pos);
  }

  async write(fh: number, buf: Buffer, len: number, pos: number): Promise<number> {
    const h = this.handle(fh);
    switch (h.kind) {
      case 'current':
        return this.gate.shared(() => this.current.write(h.fd, buf, len, pos));
      case 'snapshot':
        throw fsErr('EROFS');
      case 'ctl': {
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
    }
  }

  private async runCtl(h: Extract<Handle, { kind: 'ctl' }>, text: string): Promise<void> {
    try {
      await this.control.request(h.name, text);
    } finally {
      h.content = this.control.content(h.name);
    }
  }

  /** Close of one descriptor: a control-file message without its final newline runs now. */
  async flush(fh: number): Promise<void> {
    const h = this.handles.get(fh);
    if (h?.kind !== 'ctl' || h.refused) return;
    const text = h.message.takeRest();
    if (text !== undefined) await this.runCtl(h, text);
  }

  async fsync(fh: number, datasync: boolean): Promise<void> {
    const h = this.handle(fh);
    if (h.kind === 'current') this.current.fsync(h.fd, datasync);
  }

  async release(fh: number): Promise<void> {
    // Without a flush before (the kernel always sends one on close), run what is left.
    await this.flush(fh).catch(() => {});
    const h = this.handles.get(fh);
    this.handles.delete(fh);
    if (h && h.kind !== 'ctl') this.current.close(h.fd);
  }

  async truncate(p: string, size: number): Promise<void> {
    const r = route(p);
    if (r.kind === 'current') return this.gate.shared(() => this.current.truncate(r.rel, size));
    // `echo … > ctl/snapshot` truncates first; control files have nothing to cut.
    if (r.kind === 'ctl' && this.control.writable(r.name)) return;
    throw this.readOnly(r);
  }

  async ftruncate(p: string, fh: number, size: number): Promise<void> {
    const h = this.handles.get(fh);
    if (h?.kind === 'current') return this.gate.shared(() => this.current.ftruncate(h.fd, size));
    return this.truncate(p, size);
  }

  // --- metadata and names ---------------------------------------------------------

  private readOnly(r: Route) {
    return r.kind === 'none' ? fsErr('ENOENT') : fsErr('EROFS');
  }

  /**
   * A change inside current/. `onRoot`: the payload folder itself may take it (times,
   * modes, owner), unlike removal or creation at its own name.
   */
  private currentOnly(p: string, fn: (rel: string) => void, onRoot = false): Promise<void> {
    const r = route(p);
    if (r.kind !== 'current') {
      // Control files ignore times (`touch ctl/snapshot` must not fail).
      if (r.kind === 'ctl') return Promise.resolve();
      return Promise.reject(this.readOnly(r));
    }
    if (!r.rel && !onRoot) return Promise.reject(fsErr('EBUSY'));
    return this.gate.shared(() => fn(r.rel));
  }

  async utimens(p: string, atime: TimeSpec, mtime: TimeSpec): Promise<void> {
    return this.currentOnly(p, (rel) => this.current.utimens(rel, atime, mtime), true);
  }

  async chmod(p: string, mode: number): Promise<void> {
    if (route(p).kind === 'ctl') throw fsErr('EPERM');
    return this.currentOnly(p, (rel) => this.current.chmod(rel, mode), true);
  }

  async chown(p: string, uid: number, gid: number): Promise<void> {
    if (route(p).kind === 'ctl') throw fsErr('EPERM');
    return this.currentOnly(p, (rel) => this.current.chown(rel, uid, gid), true);
  }

  async unlink(p: string): Promise<void> {
    return this.currentOnly(p, (rel) => this.current.unlink(rel));
  }

  async rmdir(p: string): Promise<void> {
    return this.currentOnly(p, (rel) => this.current.rmdir(rel));
  }

  async mkdir(p: string, mode: number): Promise<void> {
    return this.currentOnly(p, (rel) => this.current.mkdir(rel, mode));
  }

  async symlink(target: string, p: string): Promise<void> {
    return this.currentOnly(p, (rel) => this.current.symlink(target, rel));
  }

  async rename(from: string, to: string): Promise<void> {
    const a = route(from);
    const b = route(to);
    if (a.kind === 'current' && b.kind === 'current' && a.rel && b.rel) return this.gate.shared(() => this.current.rename(a.rel, b.rel));
    if (a.kind === 'current' || b.kind === 'current') throw fsErr(a.kind === 'current' && b.kind === 'current' ? 'EBUSY' : 'EXDEV');
    throw this.readOnly(a);
  }

  async link(existing: string, created: string): Promise<void> {
    const a = route(existing);
    const b = route(created);
    if (a.kind === 'current' && b.kind === 'current' && a.rel && b.rel) return this.gate.shared(() => this.current.link(a.rel, b.rel));
    throw b.kind === 'current' ? fsErr('EXDEV') : this.readOnly(b);
  }

  async statfs(p: string): Promise<fs.StatsFs> {
    const r = route(p);
    return r.kind === 'snapshot' || r.kind === 'snapshots' ? this.snapshots.statfs() : this.current.statfs();
  }
}
