import path from 'node:path';
import { hashFile } from '../fsutil/fileHash.js';
import { readLink, statRecord, walkTree } from '../fsutil/walk.js';
import { JvsError, type ErrorClass } from '../errors.js';
import type { Descriptor } from '../format/descriptor.js';
import { rootHashOf, rootHashOfRecords } from '../fsutil/rootHash.js';
import { READY_FILE, type Layout } from '../repo/layout.js';
import { relProblem } from '../repo/names.js';
import { IndexDb, snapshotOwner, worktreeOwner, type StoredList } from './indexDb.js';
import type { IndexedEntry } from './manifestCodec.js';
import { compressedManifest } from '../verify/compressedPayload.js';

export type { IndexedEntry } from './manifestCodec.js';

/** A manifest by path. */
export type ManifestMap = Map<string, IndexedEntry>;

export function byRel(entries: readonly IndexedEntry[]): ManifestMap {
  return new Map(entries.map((e) => [e.rel, e]));
}

/** A list's entries by path (a Map, or a lookupOf). */
export interface RelLookup {
  get(rel: string): IndexedEntry | undefined;
}

/** Each decoded chunk's entries by path, made on first need and kept with the chunk (chunks are shared and never mutated). */
const chunkMaps = new WeakMap<object, ManifestMap>();
/** Lookups answered chunk by chunk before one map of the whole list is cheaper. */
const CHUNKWISE_LOOKUPS = 256;

/**
 * The entries of a stored list by path. A process that reads lists again and again (an
 * agent loop through the mount) mostly meets chunks it has seen: their maps are reused,
 * and a lookup asks each chunk's map in turn. Callers that look up most of the list
 * get one map of all of it after the first few hundred lookups.
 */
export function lookupOf(list: StoredList): RelLookup {
  const parts = list.parts as ReadonlyArray<{ entries: readonly IndexedEntry[] }> | undefined;
  if (!parts) return byRel(list.entries);
  let whole: ManifestMap | undefined;
  let asked = 0;
  // Lookups tend to come in the list's own (walk) order: start at the chunk of the last hit.
  let at = 0;
  return {
    get(rel) {
      if (whole) return whole.get(rel);
      if (++asked > CHUNKWISE_LOOKUPS) return (whole = byRel(list.entries)).get(rel);
      for (let k = 0; k < parts.length; k++) {
        const i = (at + k) % parts.length;
        const p = parts[i]!;
        let m = chunkMaps.get(p);
        if (!m) chunkMaps.set(p, (m = byRel(p.entries)));
        const e = m.get(rel);
        if (e) {
          at = i;
          return e;
        }
      }
      return undefined;
    },
  };
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
    if (e.type === 'symlink') m.target = readLink(abs);
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
  // A compressed snapshot is described by the tree it decompresses to (real names and modes).
  const entries = compressedManifest(layout, id) ?? manifestFromPayload(layout.snapshotDir(id));
  idx?.putList(snapshotOwner(id), { entries, probeNs: 0n });
  return entries;
}

/**
 * Why a stored manifest cannot be taken as snapshot `d`'s (undefined: it can): a path
 * that is not clean and relative (`..`, absolute, empty components, NUL), or entries
 * whose payload root hash is not the descriptor's. The root hash covers every path,
 * type, mode, size, content hash and link target, and the descriptor is checksummed:
 * a manifest that passes describes exactly what was published.
 */
export function manifestProblem(entries: readonly IndexedEntry[], d: Pick<Descriptor, 'payload_root_hash'>, records?: readonly Buffer[]): { why: string; errorClass: ErrorClass } | undefined {
  // Earlier entries by path, made only once a hard-link group's member shows up.
  let earlier: Map<string, IndexedEntry> | undefined;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const p = relProblem(e.rel);
    if (p) return { why: p, errorClass: 'E_PATH_ESCAPE' };
    if (e.linkOf !== undefined) {
      // A member is restored as a link to its group's first path: that must be an
      // earlier file of the same content (the root hash does not cover linkOf).
      if (!earlier) earlier = byRel(entries.slice(0, i));
      const first = earlier.get(e.linkOf);
      if (!first || first.type !== 'file' || first.contentHash !== e.contentHash || first.size !== e.size) {
        return { errorClass: 'E_PAYLOAD_HASH_MISMATCH', why: `${JSON.stringify(e.rel)} names ${JSON.stringify(e.linkOf)} as its hard-link group's first file, which is not an earlier file of the same content` };
      }
    }
    earlier?.set(e.rel, e);
  }
  let hash: string;
  try {
    // `records`: the stored chunks `entries` were decoded from, hashed where they lie.
    hash = (records && rootHashOfRecords(records)) ?? rootHashOf(entries);
  } catch (e) {
    return { errorClass: 'E_PAYLOAD_HASH_MISMATCH', why: `it cannot be hashed (${(e as Error).message})` };
  }
  return hash === d.payload_root_hash ? undefined : { errorClass: 'E_PAYLOAD_HASH_MISMATCH', why: 'its root hash is not the descriptor\'s' };
}

/**
 * The manifest of snapshot `d`, checked against its descriptor before anything acts on
 * it (restore). The index is a cache: a stored manifest that fails manifestProblem is
 * dropped and rebuilt from the payload; a payload that does not match its descriptor
 * either is E_PAYLOAD_HASH_MISMATCH.
 */
export function checkedSnapshotManifest(idx: IndexDb | undefined, layout: Layout, d: Descriptor): IndexedEntry[] {
  const id = d.snapshot_id;
  const have = storedCheckedManifest(idx, d);
  if (have) return have;
  const entries = manifestFromPayload(layout.snapshotDir(id));
  const p = manifestProblem(entries, d);
  if (p) {
    throw new JvsError('E_PAYLOAD_HASH_MISMATCH', `snapshot ${id}: its payload does not match its descriptor (${p.why})`, {
      hint: '`jvs verify --all` lists the damaged snapshots; restore another snapshot',
    });
  }
  idx?.putList(snapshotOwner(id), { entries, probeNs: 0n });
  return entries;
}

/**
 * Snapshot `d`'s manifest as the index stores it, when it passes manifestProblem against
 * `d`; undefined when the index lacks it or it fails (a failing one is dropped from the
 * index, which rebuilds it on the next need). Reads nothing of the payload.
 */
export function storedCheckedManifest(idx: IndexDb | undefined, d: Descriptor): IndexedEntry[] | undefined {
  const owner = snapshotOwner(d.snapshot_id);
  const list = idx?.getList(owner);
  const have = list?.entries;
  if (!have) return undefined;
  // A process that restores the same snapshot again (an agent loop through the mount)
  // checks its manifest once: the same decoded chunk objects hold the same entries.
  const key = `${d.snapshot_id}\0${d.payload_root_hash}`;
  if (list.parts && sameObjects(checkedParts.get(key), list.parts)) return have;
  if (manifestProblem(have, d, list.records)) {
    idx?.deleteList(owner);
    return undefined;
  }
  if (list.parts) rememberChecked(key, list.parts);
  return have;
}

/** Manifests that passed manifestProblem in this process, as their decoded chunk objects, by snapshot id and root hash (a few kept). */
const checkedParts = new Map<string, readonly object[]>();
const CHECKED_KEPT = 16;

function rememberChecked(key: string, parts: readonly object[]): void {
  checkedParts.delete(key);
  if (checkedParts.size >= CHECKED_KEPT) checkedParts.delete(checkedParts.keys().next().value!);
  checkedParts.set(key, parts);
}

function sameObjects(a: readonly object[] | undefined, b: readonly object[]): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
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
