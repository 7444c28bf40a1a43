import { createHash } from 'node:crypto';
import fs from 'node:fs';

/**
 * One reused 1 MiB buffer: SHA-256 through OpenSSL runs at ~1.5 GB/s per core with
 * it, against ~0.5 GB/s for 64 KiB stream chunks (DESIGN section 6).
 */
const CHUNK = 1 << 20;
let shared: Buffer | undefined;
function buffer(): Buffer {
  return (shared ??= Buffer.allocUnsafe(CHUNK));
}

export function hashFile(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = buffer();
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/**
 * Copy `src` to a new file `dst`, hashing the bytes as they pass: one read of the
 * source serves both the copy and the payload hash. Returns hash and bytes copied.
 */
export function copyAndHash(src: string, dst: string, mode: number): { hash: string; size: number } {
  const h = createHash('sha256');
  const fin = fs.openSync(src, 'r');
  let size = 0;
  try {
    const fout = fs.openSync(dst, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, mode & 0o777);
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
