import fs from 'node:fs';
import path from 'node:path';
import { hashFile } from '../fsutil/fileHash.js';
import { statRecord, walkTree } from '../fsutil/walk.js';
import { READY_FILE, type Layout } from '../repo/layout.js';
import { IndexDb, snapshotOwner, worktreeOwner, type StoredList } from './indexDb.js';
import type { IndexedEntry } from './manifestCodec.js';

export type { IndexedEntry } from './manifestCodec.js';

/** A manifest by path. */
export type ManifestMap = Map<string, IndexedEntry>;

export function byRel(entries: readonly IndexedEntry[]): ManifestMap {
  return new Map(entries.map((e) => [e.rel, e]));
}

/** Hashes of snapshot files by inode: snapshots share unchanged files as hard links, so each is read once. */
export type InodeHashCache = Map<string, string>;

/**
 * Describe a published snapshot from its payload (every file hashed; files hard-linked
 * between snapshots hashed once through `cache`). Used when the index lacks the
 * snapshot's manifest: after the index was deleted, or for snapshots made by another
 * implementation. Stats are the snapshot files' own (no source is known).
 */
export function manifestFromPayload(dir: string, cache: InodeHashCache = new Map()): IndexedEntry[] {
  const walk = walkTree(dir, { include: (rel) => path.posix.basename(rel) !== READY_FILE });
  const firstOfInode = new Map<string, string>();
  return walk.entries.map((e) => {
    const abs = path.join(dir, e.rel);
    const m: IndexedEntry = statRecord(e);
    if (e.type === 'symlink') m.target = fs.readlinkSync(abs);
    if (e.type === 'file') {
      const key = `${e.stat.dev}:${e.stat.ino}:${e.stat.size}:${e.stat.mtimeNs}:${e.stat.ctimeNs}`;
      const first = e.stat.nlink > 1n ? firstOfInode.get(key) : undefined;
      if (first !== undefined) m.linkOf = first;
      else if (e.stat.nlink > 1n) firstOfInode.set(key, e.rel);
      let h = cache.get(key);
      if (h === undefined) {
        h = hashFile(abs);
        if (e.stat.nlink > 1n) cache.set(key, h);
      }
      m.contentHash = h;
    }
    return m;
  });
}

export function getSnapshotManifest(idx: IndexDb | undefined, id: string): IndexedEntry[] | undefined {
  return idx?.getList(snapshotOwner(id))?.entries;
}

/**
 * The manifest of a snapshot, from the index or, when the index lacks it, by hashing
 * its payload once and caching the result.
 */
export function ensureSnapshotManifest(idx: IndexDb | undefined, layout: Layout, id: string): IndexedEntry[] {
  const have = getSnapshotManifest(idx, id);
  if (have) return have;
  const entries = manifestFromPayload(layout.snapshotDir(id));
  idx?.putList(snapshotOwner(id), { entries, probeNs: 0n });
  return entries;
}

export function putSnapshotManifest(idx: IndexDb | undefined, id: string, entries: readonly IndexedEntry[]): void {
  idx?.putList(snapshotOwner(id), { entries: entries as IndexedEntry[], probeNs: 0n });
}

export function getWorktreeState(idx: IndexDb | undefined, name: string): StoredList | undefined {
  return idx?.getList(worktreeOwner(name));
}

export function putWorktreeState(idx: IndexDb | undefined, name: string, state: StoredList): void {
  idx?.putList(worktreeOwner(name), state);
}
