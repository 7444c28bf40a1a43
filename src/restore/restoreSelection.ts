import type { Descriptor } from '../format/descriptor.js';
import type { Layout } from '../repo/layout.js';
import { loadIgnore, selection, type IgnoreMatcher } from '../select/selection.js';

/*
 * Kept apart from restoreSnapshot.ts so read-only commands (status) can ask what a
 * restore would touch without loading the restore machinery.
 */

/** Whether a walk filtered by `sel` reaches `rel` (every ancestor folder taken, and the entry). */
export function isSelected(sel: IgnoreMatcher, rel: string, isDir: boolean): boolean {
  for (let i = rel.indexOf('/'); i !== -1; i = rel.indexOf('/', i + 1)) if (!sel(rel.slice(0, i), true)) return false;
  return sel(rel, isDir);
}

/**
 * What a restore may touch: not paths ignored by the worktree's current `.jvsignore`
 * or by the snapshot's own, and for a partial snapshot only its selected paths.
 */
export function restoreSelection(layout: Layout, worktree: string, d: Descriptor): IgnoreMatcher {
  const current = loadIgnore(layout.payload(worktree));
  const recorded = loadIgnore(layout.snapshotDir(d.snapshot_id), 'snapshot');
  return selection({ ignored: [current, recorded].filter((m): m is IgnoreMatcher => !!m), partial: d.partial_paths ?? [] });
}
