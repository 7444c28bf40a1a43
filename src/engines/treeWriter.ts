import fs from 'node:fs';
import path from 'node:path';
import { JvsError } from '../errors.js';
import { native } from '../native/native.js';
import { fsPath } from '../format/nameBytes.js';
import { under, type EntryStat } from '../fsutil/walk.js';
import { applyMetadata } from './metadata.js';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * The changes a restore makes inside a worktree, by names relative to its root. With
 * the addon every call goes through a directory fd of the root opened once
 * (native/jvs_beneath.c): the entry's folder is resolved with openat2(RESOLVE_BENEATH |
 * RESOLVE_NO_SYMLINKS) and the entry itself is never followed, so a folder that someone
 * swaps for a symlink while the restore runs fails the call (ELOOP) instead of sending
 * it outside the repository. Without the addon, paths below the root (nothing on the
 * way is checked: docs/integrity.md §12 says what that leaves open).
 */
export interface TreeWriter {
  /** The root folder's absolute path. */
  readonly root: string;
  /** Remove the entry whatever it is (a folder with its content); false when it was absent. */
  remove(rel: string): boolean;
  mkdir(rel: string, mode: number): void;
  /** Rename `from` (below `src`'s root, this tree's by default) to `to` in this tree. */
  rename(from: string, to: string, src?: TreeWriter): void;
  symlink(target: string, rel: string): void;
  /** A hard link at `to` of the tree's file `from`. */
  link(from: string, to: string): void;
  /** Owner (as root, best effort), permission bits (not for symlinks) and times of `stat`. */
  setMetadata(rel: string, stat: EntryStat, isSymlink: boolean): void;
  close(): void;
}

const OWNER = 1;
const MODE = 2;
const TIMES = 4;
const fds = new WeakMap<TreeWriter, number>();

/** A TreeWriter for the folder `root` (which must be a real folder: with the addon a symlink is refused, ELOOP). */
export function treeWriter(root: string): TreeWriter {
  const abs = path.resolve(root);
  const n = native();
  if (n?.openRoot && n.removeBeneath && n.mkdirBeneath && n.renameBeneath && n.symlinkBeneath && n.linkBeneath && n.metaBeneath) {
    const fd = guarded(abs, () => n.openRoot!(abs));
    const { removeBeneath, mkdirBeneath, renameBeneath, symlinkBeneath, linkBeneath, metaBeneath } = n;
    const w: TreeWriter = {
      root: abs,
      remove: (rel) => guarded(abs, () => removeBeneath(fd, rel)),
      mkdir: (rel, mode) => guarded(abs, () => mkdirBeneath(fd, rel, mode)),
      rename: (from, to, src) => guarded(abs, () => renameBeneath(src ? fdOf(src) : fd, from, fd, to)),
      symlink: (target, rel) => guarded(abs, () => symlinkBeneath(fd, target, rel)),
      link: (from, to) => guarded(abs, () => linkBeneath(fd, from, fd, to)),
      setMetadata: (rel, st, isSymlink) =>
        guarded(abs, () => metaBeneath(fd, rel, (isRoot ? OWNER : 0) | (isSymlink ? 0 : MODE) | TIMES, Number(st.mode) & 0o7777, st.uid, st.gid, st.atimeNs, st.mtimeNs)),
      close: () => fs.closeSync(fd),
    };
    fds.set(w, fd);
    return w;
  }
  const at = (rel: string) => fsPath(under(abs, rel));
  return {
    root: abs,
    remove: (rel) => {
      const there = exists(at(rel));
      fs.rmSync(at(rel), { recursive: true, force: true });
      return there;
    },
    mkdir: (rel, mode) => fs.mkdirSync(at(rel), { mode }),
    rename: (from, to, src) => fs.renameSync(fsPath(under(src ? src.root : abs, from)), at(to)),
    symlink: (target, rel) => fs.symlinkSync(fsPath(target), at(rel)),
    link: (from, to) => fs.linkSync(at(from), at(to)),
    setMetadata: (rel, st, isSymlink) => applyMetadata(under(abs, rel), st, isSymlink),
    close: () => {},
  };
}

/**
 * The addon's ELOOP (a symlink where a folder was) and EXDEV (a name leaving the tree)
 * as E_PATH_ESCAPE: someone changed the tree while JVS was changing it.
 */
function guarded<T>(root: string, call: () => T): T {
  try {
    return call();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err?.code !== 'ELOOP' && err?.code !== 'EXDEV') throw e;
    const where = err.path ? `${JSON.stringify(err.path)} in ${root}` : root;
    throw new JvsError('E_PATH_ESCAPE', `${where} is, or passes through, a symbolic link (it was swapped while JVS was changing the folder); JVS never follows it, and nothing outside the folder was touched`, {
      hint: 'find out who else writes into this folder and remove the link; then `jvs doctor --repair-runtime` finishes an interrupted restore',
      cause: e,
    });
  }
}

function fdOf(w: TreeWriter): number {
  const fd = fds.get(w);
  if (fd === undefined) throw new Error('both trees of a rename must be opened with the addon');
  return fd;
}

function exists(p: string | Buffer): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}
