import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { entryType } from '../fsutil/walk.js';
import type { IndexedEntry } from './manifestCodec.js';

/**
 * Change detection without reading unchanged files.
 *
 * A recorded entry vouches for a file's content while the file's lstat still shows
 * the same type, permission bits, size, mtime, ctime, inode and device. ctime is the
 * field that makes this sound: user space cannot set it, and writing, chmod, chown,
 * utimes, link and unlink all move it. What remains is the "racy clean" case Git
 * knows: timestamps have a granularity (a kernel tick, ~1–4 ms on ext4; coarser on
 * some filesystems), so a write that lands in the same tick as the recording stat
 * can leave every field unchanged. Hence the rule: an entry is trusted only if its
 * recorded ctime and mtime are strictly older than a clock reading taken from the
 * same filesystem *before* the recording stat walk began (`probeNs`). A later write
 * then necessarily gets a ctime ≥ probeNs > recorded ctime. Entries that fail the
 * rule are re-read (hashed) next time — still correct, just not free.
 */

/** The filesystem's own clock, read by creating a file in `dir` (same clock as the files' ctimes). */
export function fsClockNs(dir: string): bigint {
  const p = path.join(dir, `.clock-${process.pid}-${randomBytes(4).toString('hex')}`);
  fs.mkdirSync(dir, { recursive: true });
  const fd = fs.openSync(p, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o600);
  try {
    return fs.fstatSync(fd, { bigint: true }).ctimeNs;
  } finally {
    fs.closeSync(fd);
    fs.rmSync(p, { force: true });
  }
}

export type StatLike = Pick<fs.BigIntStats, 'mode' | 'size' | 'mtimeNs' | 'ctimeNs' | 'ino' | 'dev'> & { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean };

/** True when the recorded entry still vouches for the file `now` describes (see above). */
export function isUnchanged(rec: IndexedEntry | undefined, probeNs: bigint, now: StatLike): boolean {
  return (
    !!rec &&
    rec.type === entryType(now) &&
    rec.ctimeNs < probeNs &&
    rec.mtimeNs < probeNs &&
    rec.ctimeNs === now.ctimeNs &&
    rec.mtimeNs === now.mtimeNs &&
    rec.ino === now.ino &&
    rec.dev === now.dev &&
    rec.size === Number(now.size) &&
    rec.mode === (Number(now.mode) & 0o7777)
  );
}

/** Same stat apart from trust: worth hashing to compare before copying (a racy or unknown file). */
export function looksSame(rec: IndexedEntry | undefined, now: StatLike): boolean {
  return !!rec && rec.type === entryType(now) && rec.size === Number(now.size) && rec.mtimeNs === now.mtimeNs && rec.mode === (Number(now.mode) & 0o7777);
}
