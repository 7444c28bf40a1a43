import fs from 'node:fs';
import { native } from '../native/native.js';
import type { EntryStat } from '../fsutil/walk.js';

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/** Set the modification and access times of `p` (not following symlinks), to the nanosecond when the addon is present. */
export function setTimes(p: string, stat: EntryStat): void {
  const n = native();
  if (n) {
    n.lutimesNs(p, stat.atimeNs, stat.mtimeNs);
    return;
  }
  // Fallback: seconds as doubles keep sub-microsecond precision for present-day dates.
  fs.lutimesSync(p, Number(stat.atimeNs) / 1e9, Number(stat.mtimeNs) / 1e9);
}

/**
 * Apply mode, owner (when running as root) and times of `stat` to `p`. Symlinks get
 * owner and times only (Linux has no symlink modes).
 */
export function applyMetadata(p: string, stat: EntryStat, isSymlink: boolean): void {
  if (isRoot) {
    try {
      fs.lchownSync(p, Number(stat.uid), Number(stat.gid));
    } catch {
      /* ownership is best effort (e.g. an id not mapped in this namespace) */
    }
  }
  if (!isSymlink) fs.chmodSync(p, Number(stat.mode) & 0o7777);
  setTimes(p, stat);
}
