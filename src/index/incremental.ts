import fs from 'node:fs';
import path from 'node:path';
import type { KnownContent } from '../engines/materialize.js';
import { entryType, under, type EntryStat, type TreeEntry } from '../fsutil/walk.js';
import type { Layout } from '../repo/layout.js';
import { listSnapshotIds } from '../repo/snapshots.js';
import { listWorktreeNames } from '../repo/worktreeConfig.js';
import { catalogAdd } from './catalog.js';
import { hashFile } from '../fsutil/fileHash.js';
import { isUnchanged } from './changeDetect.js';
import { snapshotOwner, worktreeOwner, type IndexDb, type StoredList } from './indexDb.js';
import { sameEncoding, type IndexedEntry } from './manifestCodec.js';
import { getWorktreeState, lookupOf, putSnapshotManifest, putWorktreeState, type RelLookup } from './manifests.js';
import { fsPath } from '../format/nameBytes.js';
import { EntryRecord } from '../fsutil/entryRecord.js';

/**
 * What a snapshot of `worktree` (whose parent is `parentId`) can take without reading:
 * hashes of files whose stat is unchanged since the worktree state was recorded, and
 * the parent's manifest (to hard-link equal files from it). Undefined when the index
 * knows nothing (every file is then read once, while being copied).
 *
 * Only the lists' encoded chunks are read here. The addon's classify works on those
 * (KnownContent.native), so the links start before any entry is decoded; the decoded
 * entries and their maps are made on first use, while the links run.
 */
export function snapshotKnowledge(layout: Layout, idx: IndexDb | undefined, worktree: string, parentId: string | undefined, link: boolean): KnownContent | undefined {
  const stateRaw = idx?.getListRaw(worktreeOwner(worktree));
  const parentRaw = parentId ? idx?.getListRaw(snapshotOwner(parentId)) : undefined;
  if (!stateRaw && !parentRaw) return undefined;
  // After a snapshot the state is that snapshot's manifest, chunk for chunk (decoded
  // into the same objects): one map serves both.
  const same = !!stateRaw && !!parentRaw && stateRaw.chunks.equals(parentRaw.chunks);
  const parentDir = parentId ? layout.snapshotDir(parentId) : '';
  let decoded: { state?: StoredList; stateMap?: RelLookup; parentMap?: RelLookup; grouped: Set<string> } | undefined;
  const lists = () => {
    if (decoded) return decoded;
    const state = stateRaw ? getWorktreeState(idx, worktree) : undefined;
    const parentList = parentRaw ? idx?.getList(snapshotOwner(parentId!)) : undefined;
    const parent = parentList?.entries;
    const stateMap = state ? lookupOf(state) : undefined;
    const parentMap = parentList ? (same && stateMap ? stateMap : lookupOf(parentList)) : undefined;
    // A parent file in one of the user's hard-link groups shares its inode with other
    // paths of the parent: linking it by path could join paths the user has since
    // separated (e.g. `cp -p` over one of them). Such files are copied instead; groups
    // that still exist are re-formed from the worktree's inodes.
    const grouped = new Set<string>();
    for (const e of parent ?? []) {
      if (e.linkOf !== undefined) {
        grouped.add(e.rel);
        grouped.add(e.linkOf);
      }
    }
    return (decoded = { ...(state ? { state } : {}), ...(stateMap ? { stateMap } : {}), ...(parentMap ? { parentMap } : {}), grouped });
  };
  // Links come only from a parent snapshot folder that is a real folder (not a symlink
  // someone put in `.jvs/snapshots`); the addon also opens it with O_NOFOLLOW.
  const canLink = link && !!parentRaw && isRealDir(parentDir);
  return {
    ...(canLink && stateRaw
      ? {
          native: {
            state: stateRaw.data,
            probeNs: stateRaw.probeNs,
            parent: same ? null : parentRaw!.data,
            stateEntries: () => lists().state?.entries ?? [],
          },
        }
      : {}),
    link: canLink,
    unchanged(rel, stat) {
      const { state, stateMap } = lists();
      const r = stateMap?.get(rel);
      return r && r.type === 'file' && r.contentHash && isUnchanged(r, state!.probeNs, stat) ? r : undefined;
    },
    parent: (rel) => lists().parentMap?.get(rel),
    parentDir,
    linkable: (rel) => !lists().grouped.has(rel),
  };
}

/**
 * After a published snapshot: its manifest, the worktree's state and the catalog row, in
 * one transaction. A partial snapshot (`partial` paths) read only those paths: the
 * state keeps its old records for everything else, so what the snapshot did not read
 * is still vouched for (or not) exactly as before.
 */
export function recordSnapshot(idx: IndexDb | undefined, layout: Layout, id: string, worktree: string, entries: readonly IndexedEntry[], probeNs: bigint, partial: readonly string[] = []): void {
  if (!idx) return;
  idx.transaction(() => {
    putSnapshotManifest(idx, id, entries);
    let state = entries as IndexedEntry[];
    if (partial.length) {
      const taken = new Set(entries.map((e) => e.rel));
      const covered = (rel: string) => taken.has(rel) || partial.some((p) => rel === p || rel.startsWith(`${p}/`));
      // Only records the old probe already trusted: one racy then must stay untrusted now.
      const old = getWorktreeState(idx, worktree);
      const trusted = (e: IndexedEntry) => e.ctimeNs < old!.probeNs && e.mtimeNs < old!.probeNs;
      state = [...entries, ...(old?.entries ?? []).filter((e) => !covered(e.rel) && trusted(e))];
    }
    putWorktreeState(idx, worktree, { entries: state, probeNs, basis: id });
    catalogAdd(idx, layout, id);
    pruneGone(idx, layout);
  });
}

/** Drop manifests of snapshots gc removed and states of worktrees that no longer exist (a readdir each). */
export function pruneGone(idx: IndexDb, layout: Layout): void {
  const snaps = new Set(listSnapshotIds(layout).map(snapshotOwner));
  const wts = new Set(listWorktreeNames(layout).map(worktreeOwner));
  for (const owner of idx.listOwners()) {
    if (owner.startsWith('snapshot:') ? !snaps.has(owner) : !wts.has(owner)) idx.deleteList(owner);
  }
}

/**
 * For restore: a `sameContent` answer for applyTree. A worktree file is known to hold
 * the snapshot's content when the worktree state vouches for its stat and records the
 * hash the snapshot's manifest has at that path; the answer is then that state record
 * (reused as is by stateAfterApply when the file stays untouched). `targetOf` gives the
 * manifest's entry when applyTree's source carries no hash (a walked source).
 */
export function restoreKnowledge(idx: IndexDb | undefined, worktree: string, root: string, targetOf: ((rel: string) => IndexedEntry | undefined) | undefined) {
  const state = getWorktreeState(idx, worktree);
  if (!state || !targetOf) return { state, sameContent: undefined, stateMap: undefined };
  // By path on first use: with the addon's restorePlan only the few files it did not
  // vouch for are looked up.
  const stateMap = lookupOf(state);
  return {
    state,
    stateMap,
    sameContent(rel: string, src: { contentHash?: string }, dst: TreeEntry): IndexedEntry | boolean {
      const r = stateMap.get(rel);
      const hash = src.contentHash ?? targetOf(rel)?.contentHash;
      if (!r || !hash || r.type !== 'file' || !r.contentHash) return false;
      if (isUnchanged(r, state.probeNs, dst.stat)) return r.contentHash === hash && (r.linkOf === undefined ? r : true);
      // Same stat but too recent to vouch for (e.g. written by the previous restore):
      // reading it is cheaper than rewriting it, and keeps its inode and ctime.
      if (r.contentHash === hash && isUnchanged(r, BigInt(Number.MAX_SAFE_INTEGER) * 1_000_000_000n, dst.stat)) {
        return hashFile(path.join(root, rel)) === hash;
      }
      return false;
    },
  };
}

/**
 * The worktree state after a restore or fork: for every entry of the snapshot's
 * manifest, the worktree's stat now and the manifest's hash. `probeNs` must have been
 * read before any file recorded here was last written, so files the operation wrote
 * count as racy (re-read once by the next snapshot) unless the caller took the probe
 * after writing into a private stage (fork). `statOf` answers with stats known not to
 * have moved (others are lstat'ed); an entry of `previous` (the old state) that already
 * says the same is kept as is, so unchanged index chunks are recognised by identity.
 */
export function stateAfterApply(root: string, target: readonly IndexedEntry[], statOf: (rel: string) => EntryStat | undefined, previous?: { get(rel: string): IndexedEntry | undefined }, vouched?: ReadonlyMap<string, object>): IndexedEntry[] {
  const out: IndexedEntry[] = [];
  for (const t of target) {
    // Left untouched on the word of its old record (restoreKnowledge): that record still says all of it.
    const v = vouched?.get(t.rel) as IndexedEntry | undefined;
    if (v !== undefined) {
      out.push(v);
      continue;
    }
    let st = statOf(t.rel);
    if (st === undefined) {
      try {
        st = fs.lstatSync(fsPath(under(root, t.rel)), { bigint: true });
      } catch {
        continue;
      }
    }
    if (entryType(st) !== t.type) continue;
    const mode = Number(st.mode) & 0o7777;
    const size = t.type === 'file' ? Number(st.size) : 0;
    const p = previous?.get(t.rel);
    // The usual case, an untouched file: the old record already says all of it.
    if (p && t.type === 'file' && p.type === 'file' && p.mtimeNs === st.mtimeNs && p.ctimeNs === st.ctimeNs && p.ino === st.ino && p.dev === st.dev && p.mode === mode && p.size === size && p.contentHash === t.contentHash && p.linkOf === t.linkOf) {
      out.push(p);
      continue;
    }
    const next: IndexedEntry = new EntryRecord(t.rel, t.type, mode, size, st.mtimeNs, st.ctimeNs, st.dev, st.ino);
    if (t.contentHash !== undefined) next.contentHash = t.contentHash;
    if (t.target !== undefined) next.target = t.target;
    if (t.linkOf !== undefined) next.linkOf = t.linkOf;
    out.push(p && sameEncoding(p, next) ? p : next);
  }
  return out;
}

function isRealDir(dir: string): boolean {
  try {
    return fs.lstatSync(dir).isDirectory();
  } catch {
    return false;
  }
}
