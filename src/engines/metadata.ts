import fs from 'node:fs';
import { native } from '../native/native.js';
import type { EntryStat } from '../fsutil/walk.js';
import { fsPath } from '../format/nameBytes.js';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Set the modification and access times of `p` (not following symlinks), to the nanosecond when the addon is present. */
export function setTimes(p: string, stat: Pick<EntryStat, 'atimeNs' | 'mtimeNs'>): void {
  const n = native();
  if (n) {
    n.lutimesNs(p, stat.atimeNs, stat.mtimeNs);
    return;
  }
  // Fallback: seconds as doubles keep sub-microsecond precision for present-day dates.
  fs.lutimesSync(fsPath(p), Number(stat.atimeNs) / 1e9, Number(stat.mtimeNs) / 1e9);
}

/**
 * Apply mode, owner (when running as root) and times of `stat` to `p`. Symlinks get
 * owner and times only (Linux has no symlink modes).
 */
export function applyMetadata(p: string, stat: EntryStat, isSymlink: boolean): void {
  if (isRoot) {
    try {
      fs.lchownSync(fsPath(p), Number(stat.uid), Number(stat.gid));
    } catch {
      /* ownership is best effort (e.g. an id not mapped in this namespace) */
    }
  }
  if (!isSymlink) fs.chmodSync(fsPath(p), Number(stat.mode) & 0o7777);
  setTimes(p, stat);
}

/**
 * applyMetadata for a file this process just created: owner and mode are changed only
 * when they differ (the engines' copies already carry the source's mode, and a root
 * process creates root-owned files), which spares two journaled metadata updates per
 * file on XFS/ext4; times are always set. `mode` is the wanted permission bits.
 */
export function applyCopyMetadata(dst: string, mode: number, want: Pick<EntryStat, 'uid' | 'gid' | 'atimeNs' | 'mtimeNs'>): void {
  const have = fs.lstatSync(fsPath(dst), { bigint: true });
  let chowned = false;
  if (isRoot && (have.uid !== want.uid || have.gid !== want.gid)) {
    try {
      fs.lchownSync(fsPath(dst), Number(want.uid), Number(want.gid));
      chowned = true; // chown clears set-id bits: the mode is set again below
    } catch {
      /* ownership is best effort, as in applyMetadata */
    }
  }
  if (chowned || Number(have.mode & 0o7777n) !== (mode & 0o7777)) fs.chmodSync(fsPath(dst), mode & 0o7777);
  setTimes(dst, want);
}
