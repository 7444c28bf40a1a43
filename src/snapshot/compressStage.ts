import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { storedName } from '../format/compression.js';
import { fsyncDir } from '../fsutil/atomic.js';
import type { IndexedEntry } from '../index/manifestCodec.js';

/** node:zlib on first use (only compressed snapshots need it; loading it costs every snapshot and restore ~0.4 ms). */
const zlib = () => createRequire(import.meta.url)('node:zlib') as typeof import('node:zlib');

/**
 * Turn a staged snapshot into the reference's compressed layout (src/format/compression.ts):
 * each regular file becomes `<name>.gz` and the original name goes. Unlike the
 * reference, which writes every `.gz` with mode 0600, each `.gz` keeps its file's mode
 * and mtime (the reference reads only the bytes), so restore needs no mode search; and
 * a user's hard-link group stays one inode (`.gz` files linked together).
 *
 * Files are taken in reverse name order so that a user's own `x.gz` becomes `x.gz.gz`
 * before `x` needs the name `x.gz`: every stored file has exactly one `.gz` added, and
 * both tools strip exactly one. Stage files that are hard links into the parent snapshot
 * are only unlinked here, never written through.
 */
export function compressStage(stage: string, entries: readonly IndexedEntry[], level: number): void {
  // Folders already carry their final mode and times: each one written into is opened
  // for writing if it is read-only, and gets both back afterwards.
  const dirs = new Map<string, fs.Stats>();
  const enter = (rel: string) => {
    const d = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
    if (dirs.has(d)) return;
    const abs = path.join(stage, d);
    const st = fs.lstatSync(abs);
    dirs.set(d, st);
    if ((st.mode & 0o300) !== 0o300) fs.chmodSync(abs, (st.mode & 0o7777) | 0o300);
  };
  const files = entries.filter((e) => e.type === 'file');
  for (let i = files.length - 1; i >= 0; i--) {
    const e = files[i]!;
    if (e.linkOf !== undefined) continue;
    enter(e.rel);
    const src = path.join(stage, e.rel);
    const st = fs.lstatSync(src);
    const gz = zlib().gzipSync(fs.readFileSync(src), { level });
    const fd = fs.openSync(storedName(src), 'wx', 0o600);
    try {
      // One write(2) moves at most ~2 GiB: loop until all is written.
      for (let off = 0; off < gz.length; ) off += fs.writeSync(fd, gz, off, gz.length - off);
      fs.fchmodSync(fd, st.mode & 0o7777);
      fs.futimesSync(fd, st.atime, st.mtime);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.unlinkSync(src);
  }
  for (const e of files) {
    if (e.linkOf === undefined) continue;
    enter(e.rel);
    const src = path.join(stage, e.rel);
    fs.linkSync(storedName(path.join(stage, e.linkOf)), storedName(src));
    fs.unlinkSync(src);
  }
  for (const [d, st] of dirs) {
    const abs = path.join(stage, d);
    fs.chmodSync(abs, st.mode & 0o7777);
    fs.utimesSync(abs, st.atime, st.mtime);
    fsyncDir(abs);
  }
}

/** `.READY.gz`: the marker's JSON, gzip-compressed like every file of the snapshot. */
export function compressedReady(json: string, level: number): Buffer {
  return zlib().gzipSync(Buffer.from(json), { level });
}
