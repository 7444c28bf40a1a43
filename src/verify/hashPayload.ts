import fs from 'node:fs';
import path from 'node:path';
import { payloadRootHash, type HashedEntry } from '../format/payloadHash.js';
import { hashFile } from '../fsutil/fileHash.js';
import { permBits, walkTree } from '../fsutil/walk.js';
import { READY_FILE } from '../repo/layout.js';

/** Recompute a payload root hash from the bytes on disk (skipping `.READY` entries). */
export function hashPayloadTree(root: string, onProgress?: (done: number, total: number) => void): { hash: string; files: number; bytes: number } {
  const walk = walkTree(root, { include: (rel) => path.posix.basename(rel) !== READY_FILE });
  const total = walk.entries.reduce((n, e) => n + (e.type === 'file' ? Number(e.stat.size) : 0), 0);
  let done = 0;
  let files = 0;
  const hashed: HashedEntry[] = walk.entries.map((e) => {
    const abs = path.join(root, e.rel);
    const h: HashedEntry = { rel: e.rel, type: e.type, mode: permBits(e.stat), size: e.type === 'file' ? Number(e.stat.size) : 0 };
    if (e.type === 'symlink') h.target = fs.readlinkSync(abs);
    if (e.type === 'file') {
      h.contentHash = hashFile(abs);
      files++;
      done += h.size;
      onProgress?.(done, total);
    }
    return h;
  });
  return { hash: payloadRootHash(hashed), files, bytes: total };
}
