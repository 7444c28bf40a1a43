import path from 'node:path';
import type { HashedEntry } from '../format/payloadHash.js';
import { rootHashOf } from '../fsutil/rootHash.js';
import { hashFile, hashFiles, nativeHashMany } from '../fsutil/fileHash.js';
import { permBits, readLink, walkTree } from '../fsutil/walk.js';
import { READY_FILE } from '../repo/layout.js';
import { runParallel, worthParallel, type ParallelJob } from '../engines/parallelCopy.js';
import { probeJuicefs } from '../engines/detect.js';
import { RUNS_PROBE_MIN } from '../engines/juicefsRuns.js';

/** Recompute a payload root hash from the bytes on disk (skipping `.READY` entries). */
export function hashPayloadTree(root: string, onProgress?: (done: number, total: number) => void): { hash: string; files: number; bytes: number } {
  const walk = walkTree(root, { include: (rel) => path.posix.basename(rel) !== READY_FILE });
  const total = walk.entries.reduce((n, e) => n + (e.type === 'file' ? Number(e.stat.size) : 0), 0);
  let done = 0;
  let files = 0;
  const hashed: HashedEntry[] = walk.entries.map((e) => {
    const abs = path.join(root, e.rel);
    const h: HashedEntry = { rel: e.rel, type: e.type, mode: permBits(e.stat), size: e.type === 'file' ? Number(e.stat.size) : 0 };
    if (e.type === 'symlink') h.target = readLink(abs);
    if (e.type === 'file') files++;
    return h;
  });
  // Large trees: every core; hashing is CPU-bound on cached data. The addon hashes in
  // native batches (fsutil/fileHash.ts hashFiles), else engines/parallelCopy.ts's worker.
  const fileEntries = hashed.filter((h) => h.type === 'file');
  const hashOne = (abs: string, size: number, hash: (abs: string, size: number) => string = hashFile) => {
    const digest = hash(abs, size);
    done += size;
    onProgress?.(done, total);
    return digest;
  };
  // On JuiceFS (no SEEK_DATA) large files are hashed from the data runs its metadata
  // lists, holes as zeros (engines/juicefsRuns.ts): a sparse file costs its data, not its size.
  const probe = fileEntries.some((h) => h.size >= RUNS_PROBE_MIN) ? probeJuicefs(root) : undefined;
  const juicefs = probe && 'engine' in probe ? probe.engine : undefined;
  if (juicefs) {
    for (const h of fileEntries) if (h.size >= RUNS_PROBE_MIN) h.contentHash = hashOne(h.rel, h.size, (rel, size) => juicefs.hashFileBelow(root, rel, size));
  }
  const rest = fileEntries.filter((h) => h.contentHash === undefined);
  if (nativeHashMany()) {
    const base = done;
    const digests = hashFiles(rest.map((h) => h.rel), (bytes) => onProgress?.(base + bytes, total), root);
    rest.forEach((h, i) => (h.contentHash = digests[i]!));
  } else if (worthParallel(fileEntries.length, total)) {
    const jobs: ParallelJob[] = rest.map((h) => ({ kind: 'hash', src: path.join(root, h.rel) }));
    const sizes = new Map(rest.map((h) => [path.join(root, h.rel), h.size]));
    const out = runParallel(jobs, 'copy', (job) => ({ hash: hashOne(job.src, sizes.get(job.src) ?? 0), size: 0 }));
    rest.forEach((h, i) => (h.contentHash = out[i]!.hash));
  } else {
    for (const h of rest) h.contentHash = hashOne(path.join(root, h.rel), h.size);
  }
  return { hash: rootHashOf(hashed), files, bytes: total };
}
