import fs from 'node:fs';
import path from 'node:path';
import { JvsError } from '../errors.js';
import { hashFiles } from '../fsutil/fileHash.js';
import { permBits, readLink, startWalk, walkTree, type PendingWalk } from '../fsutil/walk.js';
import { isUnchanged } from '../index/changeDetect.js';
import { IndexDb } from '../index/indexDb.js';
import { byRel, ensureSnapshotManifest, getWorktreeState, type IndexedEntry } from '../index/manifests.js';
import { READY_FILE, type Layout } from '../repo/layout.js';
import { readDescriptor } from '../repo/snapshots.js';
import { isDetached, readWorktreeConfig } from '../repo/worktreeConfig.js';
import { isSelected } from '../restore/restoreSelection.js';
import { loadIgnore, selection, takesEverything, type IgnoreMatcher } from '../select/selection.js';
import { composedHead } from './composedHead.js';

export interface StatusResult {
  worktree: string;
  head_snapshot_id?: string;
  latest_snapshot_id?: string;
  detached: boolean;
  clean: boolean;
  /** Worktree-relative paths; folders end with `/`. */
  added: string[];
  modified: string[];
  removed: string[];
  total_added: number;
  total_modified: number;
  total_removed: number;
  /** Files whose content had to be read to decide (stat not vouched for by the index). */
  files_hashed: number;
  index_used: boolean;
  /** Set when the head is a partial snapshot: paths it did not take are compared with these older snapshots. */
  compared_with?: string[];
}

export interface Comparison {
  added: string[];
  modified: string[];
  removed: string[];
  /** Entries found equal. */
  unchanged: number;
  hashed: number;
}

const shown = (e: { rel: string; type: string }) => (e.type === 'dir' ? `${e.rel}/` : e.rel);

/**
 * Compare a worktree's files (those `sel` takes) with a manifest: a stat walk, reading
 * only files whose stat the worktree state does not vouch for. The one rule shared by
 * `status`, restore's unsaved-work check and `restore --dry-run`.
 */
export function compareWorktree(layout: Layout, idx: IndexDb | undefined, worktree: string, manifest: readonly IndexedEntry[], sel: IgnoreMatcher, walk?: PendingWalk): Comparison {
  const root = layout.worktreeRoot(worktree);
  const byPath = byRel(manifest);
  const state = getWorktreeState(idx, worktree);
  const stateMap = state ? byRel(state.entries) : undefined;
  const added: string[] = [];
  // Worktree entries that differ from the manifest, in walk order; a file that must be
  // read holds its place as the hash it must have (read below, all at once).
  const modified: Array<string | { shown: string; rel: string; want: string | undefined }> = [];
  const toHash: string[] = [];
  let unchanged = 0;
  const seen = new Set<string>();
  for (const e of (walk ? walk.result() : walkTree(root, { include: sel })).entries) {
    // The reference's copy of a snapshot marker is never payload: not a change (snapshot skips it).
    if (e.rel === READY_FILE) continue;
    seen.add(e.rel);
    const h = byPath.get(e.rel);
    if (!h) {
      added.push(shown(e));
      continue;
    }
    let same = h.type === e.type && (e.type === 'symlink' || h.mode === permBits(e.stat));
    if (same && e.type === 'symlink') same = readLink(path.join(root, e.rel)) === h.target;
    if (same && e.type === 'file') {
      if (h.size !== Number(e.stat.size)) same = false;
      else {
        const r = stateMap?.get(e.rel);
        const hash = r && isUnchanged(r, state!.probeNs, e.stat) ? r.contentHash : undefined;
        if (hash === undefined) {
          modified.push({ shown: shown(e), rel: e.rel, want: h.contentHash });
          toHash.push(e.rel);
          continue;
        }
        same = hash === h.contentHash;
      }
    }
    if (same) unchanged++;
    else modified.push(shown(e));
  }
  // The files the state does not vouch for, on every core, each opened below a folder
  // fd of the worktree root (no symlink followed on the way).
  const hashes = toHash.length ? hashFiles(toHash, undefined, root) : [];
  let k = 0;
  const changed: string[] = [];
  for (const m of modified) {
    if (typeof m === 'string') changed.push(m);
    else if (hashes[k++] !== m.want) changed.push(m.shown);
    else unchanged++;
  }
  const removed = manifest.filter((m) => !seen.has(m.rel) && isSelected(sel, m.rel, m.type === 'dir')).map(shown);
  return { added, modified: changed, removed, unchanged, hashed: toHash.length };
}

/**
 * What the worktree is compared with to find unsaved changes: the head's manifest and,
 * where the head is a partial snapshot, older snapshots for the paths it did not take
 * (composedHead). Ignored paths are left out. When nothing is left out, the worktree's
 * scan (`walk`, for compareWorktree) runs on every core while the manifests are read.
 */
export function headBaseline(layout: Layout, idx: IndexDb | undefined, worktree: string, head: string | undefined): { manifest: IndexedEntry[]; sel: IgnoreMatcher; comparedWith: string[]; walk?: PendingWalk } {
  const root = layout.worktreeRoot(worktree);
  const current = loadIgnore(root);
  if (!head) return { manifest: [], sel: selection({ ignored: current ? [current] : [] }), comparedWith: [] };
  if (!fs.existsSync(layout.snapshotDir(head))) {
    throw new JvsError('E_NOT_FOUND', `the head snapshot ${head} of worktree '${worktree}' has no payload folder`, { hint: 'run `jvs doctor --strict` to inspect the repository' });
  }
  const recorded = loadIgnore(layout.snapshotDir(head), 'snapshot');
  const sel = selection({ ignored: [current, recorded].filter((m): m is IgnoreMatcher => !!m) });
  const walk = sel === takesEverything ? startWalk(root) : undefined;
  const manifestOf = (id: string) => ensureSnapshotManifest(idx, layout, id);
  const composed = composedHead(head, (id) => readDescriptor(layout, id), manifestOf, (id) => fs.existsSync(layout.snapshotDir(id)));
  return { manifest: composed.manifest, sel, comparedWith: composed.older, ...(walk ? { walk } : {}) };
}

/**
 * What changed in a worktree since its head snapshot: a stat walk compared with the
 * head's manifest. Files whose stat the worktree state vouches for are not read; the
 * others (written since, racy, or everything when the index is missing) are hashed.
 * Ignored paths are not listed. After a partial snapshot, paths it did not take are
 * compared with the snapshot before it, so an unsaved edit there still shows.
 * Read-only: no lock, nothing written but the index cache.
 */
export function status(layout: Layout, worktree: string): StatusResult {
  const wt = readWorktreeConfig(layout, worktree);
  const head = wt.head_snapshot_id;
  const idx = IndexDb.open(layout);
  try {
    const base = headBaseline(layout, idx, wt.name, head);
    const c = compareWorktree(layout, idx, wt.name, base.manifest, base.sel, base.walk);
    return {
      worktree: wt.name,
      ...(head ? { head_snapshot_id: head } : {}),
      ...(wt.latest_snapshot_id ? { latest_snapshot_id: wt.latest_snapshot_id } : {}),
      detached: isDetached(wt),
      clean: !c.added.length && !c.modified.length && !c.removed.length,
      added: c.added,
      modified: c.modified,
      removed: c.removed,
      total_added: c.added.length,
      total_modified: c.modified.length,
      total_removed: c.removed.length,
      files_hashed: c.hashed,
      index_used: !!idx,
      ...(base.comparedWith.length ? { compared_with: base.comparedWith } : {}),
    };
  } finally {
    idx?.close();
  }
}
