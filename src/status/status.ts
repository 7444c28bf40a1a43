import fs from 'node:fs';
import path from 'node:path';
import { JvsError } from '../errors.js';
import { hashFile } from '../fsutil/fileHash.js';
import { permBits, readLink, walkTree } from '../fsutil/walk.js';
import { isUnchanged } from '../index/changeDetect.js';
import { IndexDb } from '../index/indexDb.js';
import { byRel, ensureSnapshotManifest, getWorktreeState, type IndexedEntry } from '../index/manifests.js';
import { READY_FILE, type Layout } from '../repo/layout.js';
import { readDescriptor } from '../repo/snapshots.js';
import { isDetached, readWorktreeConfig } from '../repo/worktreeConfig.js';
import { isSelected, restoreSelection } from '../restore/restoreSelection.js';
import { loadIgnore, selection } from '../select/selection.js';

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
}

const shown = (e: { rel: string; type: string }) => (e.type === 'dir' ? `${e.rel}/` : e.rel);

/**
 * What changed in a worktree since its head snapshot: a stat walk compared with the
 * head's manifest. Files whose stat the worktree state vouches for are not read; the
 * others (written since, racy, or everything when the index is missing) are hashed.
 * Ignored paths (and, for a partial head, paths outside its selection) are not listed.
 * Read-only: no lock, nothing written but the index cache.
 */
export function status(layout: Layout, worktree: string): StatusResult {
  const wt = readWorktreeConfig(layout, worktree);
  const root = layout.worktreeRoot(wt.name);
  const head = wt.head_snapshot_id;
  const idx = IndexDb.open(layout);
  try {
    let manifest: IndexedEntry[] = [];
    let sel = selection({ ignored: [loadIgnore(root)].filter((m): m is NonNullable<typeof m> => !!m) });
    if (head) {
      if (!fs.existsSync(layout.snapshotDir(head))) {
        throw new JvsError('E_NOT_FOUND', `the head snapshot ${head} of worktree '${wt.name}' has no payload folder`, { hint: 'run `jvs doctor --strict` to inspect the repository' });
      }
      sel = restoreSelection(layout, wt.name, readDescriptor(layout, head));
      manifest = ensureSnapshotManifest(idx, layout, head);
    }
    const byPath = byRel(manifest);
    const state = getWorktreeState(idx, wt.name);
    const stateMap = state ? byRel(state.entries) : undefined;
    const added: string[] = [];
    const modified: string[] = [];
    let hashed = 0;
    const seen = new Set<string>();
    for (const e of walkTree(root, { include: sel }).entries) {
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
          let hash = r && isUnchanged(r, state!.probeNs, e.stat) ? r.contentHash : undefined;
          if (hash === undefined) {
            hash = hashFile(path.join(root, e.rel));
            hashed++;
          }
          same = hash === h.contentHash;
        }
      }
      if (!same) modified.push(shown(e));
    }
    const removed = manifest.filter((m) => !seen.has(m.rel) && isSelected(sel, m.rel, m.type === 'dir')).map(shown);
    return {
      worktree: wt.name,
      ...(head ? { head_snapshot_id: head } : {}),
      ...(wt.latest_snapshot_id ? { latest_snapshot_id: wt.latest_snapshot_id } : {}),
      detached: isDetached(wt),
      clean: !added.length && !modified.length && !removed.length,
      added,
      modified,
      removed,
      total_added: added.length,
      total_modified: modified.length,
      total_removed: removed.length,
      files_hashed: hashed,
      index_used: !!idx,
    };
  } finally {
    idx?.close();
  }
}
