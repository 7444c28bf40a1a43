import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { native, type NativeAddon } from '../native/native.js';
import { fsPath } from '../format/nameBytes.js';

/**
 * SHA-256 of files. With the native addon (native/jvs_hash.c) files are read with
 * pread into a 256 KiB buffer that stays in L2 and hashed by OpenSSL, on several threads
 * for batches; without it (JVS_DISABLE_NATIVE=1, addon not built) a JavaScript loop
 * does the same on one thread with one reused 1 MiB buffer (~1.5 GB/s per core against
 * ~0.5 GB/s for 64 KiB stream chunks).
 */
const CHUNK = 1 << 20;
let shared: Buffer | undefined;
function buffer(): Buffer {
  return (shared ??= Buffer.allocUnsafe(CHUNK));
}

/** Modes of the addon's hashMany. */
export const HashMode = { hash: 0, reflink: 1, copy: 2, copyNoClone: 3 } as const;
export type HashModeValue = (typeof HashMode)[keyof typeof HashMode];
/** Values per job in hashMany's `pre` (walked ctime, mtime, size, ino; mode; atime, mtime, uid, gid). */
export const PRE_PER_JOB = 9;

/** The addon's hashMany, or undefined (not built, disabled, or an older build without it). */
export function nativeHashMany(): NativeAddon['hashMany'] | undefined {
  const n = native();
  return n && typeof n.hashMany === 'function' ? n.hashMany.bind(n) : undefined;
}

/** Threads for batches: every core, or one when JVS_NO_WORKERS=1. */
export function hashThreads(): number {
  return process.env.JVS_NO_WORKERS === '1' ? 1 : Math.max(1, Math.min(os.availableParallelism(), 16));
}

export function hashFile(file: string): string {
  const many = nativeHashMany();
  if (many) return many(file + '\0', 1, HashMode.hash, null, 1).hashes;
  return hashFileJs(file).hash;
}

function hashFileJs(file: string): { hash: string; size: number } {
  const h = createHash('sha256');
  const fd = fs.openSync(fsPath(file), 'r');
  let size = 0;
  try {
    const buf = buffer();
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
      size += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return { hash: h.digest('hex'), size };
}

/**
 * Hashes of many files, in order, using every core when the addon is present. Calls
 * `onBatch(bytesSoFar)` after each batch (for progress bars). Throws the first error
 * (an errno-coded Error naming the path); no partial results. With `root`, paths are
 * relative to it and the addon opens each below a directory fd of it without following
 * any symlink on the way (a snapshot folder swapped for a link is ELOOP, not read).
 */
export function hashFiles(paths: readonly string[], onBatch?: (bytesDone: number) => void, root?: string): string[] {
  const out = new Array<string>(paths.length);
  const many = nativeHashMany();
  let bytes = 0;
  if (!many) {
    for (let i = 0; i < paths.length; i++) {
      const r = hashFileJs(root === undefined ? paths[i]! : path.join(root, paths[i]!));
      out[i] = r.hash;
      bytes += r.size;
    }
    onBatch?.(bytes);
    return out;
  }
  const threads = hashThreads();
  for (let start = 0; start < paths.length; start += HASH_BATCH) {
    const end = Math.min(paths.length, start + HASH_BATCH);
    const r = many(paths.slice(start, end).join('\0') + '\0', end - start, HashMode.hash, null, threads, root === undefined ? null : [root, root]);
    for (let i = start; i < end; i++) {
      out[i] = r.hashes.slice(64 * (i - start), 64 * (i - start) + 64);
      bytes += r.sizes[i - start]!;
    }
    onBatch?.(bytes);
  }
  return out;
}

/** Files per native call when sizes are unknown: small enough for progress, large enough that the tail wait is noise. */
export const HASH_BATCH = 2048;

/**
 * Copy `src` to a new file `dst`, hashing the bytes as they pass: one read of the
 * source serves both the copy and the payload hash. Returns hash and bytes copied.
 */
export function copyAndHash(src: string, dst: string, mode: number): { hash: string; size: number } {
  const many = nativeHashMany();
  if (many) {
    const pre = new BigInt64Array(PRE_PER_JOB);
    pre[4] = BigInt(mode & 0o7777);
    const r = many(`${src}\0${dst}\0`, 1, HashMode.copyNoClone, pre, 1);
    return { hash: r.hashes, size: r.sizes[0]! };
  }
  const h = createHash('sha256');
  const fin = fs.openSync(fsPath(src), 'r');
  let size = 0;
  try {
    const fout = fs.openSync(fsPath(dst), fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode & 0o777);
    try {
      const buf = buffer();
      for (;;) {
        const n = fs.readSync(fin, buf, 0, CHUNK, null);
        if (n === 0) break;
        h.update(buf.subarray(0, n));
        let off = 0;
        while (off < n) off += fs.writeSync(fout, buf, off, n - off);
        size += n;
      }
    } finally {
      fs.closeSync(fout);
    }
  } finally {
    fs.closeSync(fin);
  }
  return { hash: h.digest('hex'), size };
}
