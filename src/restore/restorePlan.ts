import fs from 'node:fs';
import path from 'node:path';
import { JvsError } from '../errors.js';
import type { Descriptor } from '../format/descriptor.js';
import { hashFile } from '../fsutil/fileHash.js';
import { entryType, permBits } from '../fsutil/walk.js';
import { isUnchanged } from '../index/changeDetect.js';
import { IndexDb } from '../index/indexDb.js';
import { byRel, ensureSnapshotManifest, getWorktreeState, type IndexedEntry } from '../index/manifests.js';
import type { Layout } from '../repo/layout.js';
import { resolveLatestTag, resolveRef, type ResolvedRef } from '../repo/refs.js';
import { loadDescriptors } from '../repo/snapshots.js';
import { isSnapshotId } from '../format/snapshotId.js';
import { isDetached, readWorktreeConfig, type WorktreeConfig } from '../repo/worktreeConfig.js';
import { createSnapshot } from '../snapshot/createSnapshot.js';
import { compareWorktree, headBaseline } from '../status/status.js';
import { openFilesBelow, type OpenFile } from './openFiles.js';
import { isSelected, restoreSelection } from './restoreSelection.js';

/*
 * The parts of a restore around the apply itself (restoreSnapshot.ts): which snapshot,
 * the unsaved work kept first, the open files warned about, and `--dry-run`.
 */

export interface TargetOptions {
  worktree: string;
  ref?: string;
  latestTag?: string;
}

/** The snapshot a restore goes to; `leaveOut` is a snapshot that must not be chosen (the unsaved work this restore kept). */
export function resolveTarget(layout: Layout, opts: TargetOptions, wt: WorktreeConfig, leaveOut?: string): ResolvedRef {
  // HEAD and full ids read one descriptor; the rest need the list (without `leaveOut`).
  const simple = !opts.latestTag && (opts.ref === 'HEAD' || (opts.ref !== undefined && isSnapshotId(opts.ref)));
  const all = leaveOut && !simple ? loadDescriptors(layout).descriptors.filter((d) => d.snapshot_id !== leaveOut) : undefined;
  const resolved = opts.latestTag ? resolveLatestTag(layout, opts.latestTag, all) : opts.ref ? resolveRef(layout, opts.ref, wt, all) : undefined;
  if (!resolved) throw new JvsError('E_USAGE', 'restore needs a snapshot ref', { hint: 'e.g. `jvs restore HEAD` or `jvs restore <id|tag|note-prefix>`' });
  return resolved;
}

export interface UnsavedChanges {
  added: string[];
  modified: string[];
  /** Removed since the head: listed, but no work at risk (their content is in the head snapshot). */
  removed: string[];
  /** Added and modified entries: the work a restore would overwrite. */
  total: number;
  /** The head could not be read: the changes are unknown and taken to be everything. */
  unknown?: string;
}

const asRel = (p: string) => (p.endsWith('/') ? { rel: p.slice(0, -1), isDir: true } : { rel: p, isDir: false });

/**
 * The worktree's changes since its head (composed over partial snapshots, as `jvs
 * status` shows them) that a restore to `target` would overwrite: changes in paths the
 * restore leaves alone (ignored, outside a partial target) are not at risk, and neither
 * are removals (what was removed is in the head snapshot, which stays: emptying a
 * worktree and restoring it makes no snapshot of nothing). Cheap when the worktree is
 * clean: a stat walk, files read only where the index cannot vouch.
 */
export function unsavedChanges(layout: Layout, worktree: string, target: Descriptor): UnsavedChanges {
  const wt = readWorktreeConfig(layout, worktree);
  const idx = IndexDb.open(layout);
  try {
    let base: ReturnType<typeof headBaseline>;
    try {
      base = headBaseline(layout, idx, wt.name, wt.head_snapshot_id);
    } catch (e) {
      if (!(e instanceof JvsError)) throw e;
      return { added: [], modified: [], removed: [], total: 1, unknown: e.message };
    }
    const c = compareWorktree(layout, idx, wt.name, base.manifest, base.sel, base.walk);
    const reach = restoreSelection(layout, wt.name, target);
    const atRisk = (ps: string[]) => ps.filter((p) => {
      const { rel, isDir } = asRel(p);
      return isSelected(reach, rel, isDir);
    });
    const added = atRisk(c.added);
    const modified = atRisk(c.modified);
    const removed = atRisk(c.removed);
    return { added, modified, removed, total: added.length + modified.length };
  } finally {
    idx?.close();
  }
}

/**
 * Restore never destroys unsaved work (DESIGN §5): changes a restore would overwrite
 * are first kept as a snapshot off the worktree's line (parent = its head; head and
 * latest do not move), tagged `unsaved` and pinned, so gc keeps it until the user
 * unpins it. The pre-snapshot hook does not run: it guards the user's own snapshots,
 * and a failing stage must not make a restore lose work.
 */
export async function keepUnsavedWork(
  layout: Layout,
  opts: { worktree: string; discardChanges?: boolean; lockWaitMs?: number },
  target: Descriptor,
  tag: string,
): Promise<{ unsaved?: { snapshot_id: string; total_added: number; total_modified: number; total_removed: number; restore_command: string } }> {
  // Asked to discard: not even the stat walk (agent loops restore after every run).
  if (opts.discardChanges) return {};
  const changes = unsavedChanges(layout, opts.worktree, target);
  if (!changes.total) return {};
  const s = await createSnapshot(layout, {
    worktree: opts.worktree,
    note: `unsaved changes before restoring ${target.snapshot_id}`,
    tags: [tag],
    noHook: true,
    ...(opts.lockWaitMs !== undefined ? { lockWaitMs: opts.lockWaitMs } : {}),
    offLine: { reason: `unsaved changes of worktree '${opts.worktree}' kept by restore to ${target.snapshot_id}` },
  });
  return {
    unsaved: {
      snapshot_id: s.snapshot_id,
      total_added: changes.added.length,
      total_modified: changes.modified.length,
      total_removed: changes.removed.length,
      restore_command: `jvs restore ${s.snapshot_id}`,
    },
  };
}

/**
 * Open files a restore to `target` would replace or remove (the process keeps the old
 * inode and never sees the restored content). Costs nothing when no process holds a
 * file of the worktree open; otherwise only those few files are compared.
 */
export function openFilesTouched(layout: Layout, worktree: string, target: Descriptor): OpenFile[] {
  const root = layout.worktreeRoot(worktree);
  const open = openFilesBelow(root);
  if (!open.length) return [];
  const reach = restoreSelection(layout, worktree, target);
  const idx = IndexDb.open(layout);
  try {
    const manifest = idx ? byRel(ensureSnapshotManifest(idx, layout, target.snapshot_id)) : undefined;
    const state = getWorktreeState(idx, worktree);
    const stateMap = state ? byRel(state.entries) : undefined;
    return open.filter((o) => {
      let st: fs.BigIntStats;
      try {
        st = fs.lstatSync(path.join(root, o.path), { bigint: true });
      } catch {
        return false;
      }
      if (!isSelected(reach, o.path, st.isDirectory())) return false;
      if (!manifest) return true; // no index: assume the worst rather than hash the snapshot
      return !holdsTarget(manifest.get(o.path), st, stateMap?.get(o.path), state?.probeNs ?? 0n, path.join(root, o.path));
    });
  } finally {
    idx?.close();
  }
}

function holdsTarget(t: IndexedEntry | undefined, st: fs.BigIntStats, rec: IndexedEntry | undefined, probeNs: bigint, abs: string): boolean {
  if (!t || t.type !== entryType(st)) return false;
  if (t.type === 'dir') return true;
  if (t.type !== 'file' || t.mode !== permBits(st) || t.size !== Number(st.size)) return false;
  const hash = rec && isUnchanged(rec, probeNs, st) ? rec.contentHash : hashFile(abs);
  return hash === t.contentHash;
}

export interface RestorePlan {
  dry_run: true;
  snapshot_id: string;
  worktree_name: string;
  ref_kind: string;
  /** Whether the worktree would be detached afterwards (a snapshot there starts a new line). */
  detached: boolean;
  /** Paths the restore would write (changed or missing in the worktree). */
  would_write: string[];
  /** Paths it would remove (not in the snapshot). */
  would_remove: string[];
  /** Entries already equal to the snapshot's, left as they are. */
  kept: number;
  /** Changes since the head that the restore would overwrite, and what would happen to them. */
  unsaved: UnsavedChanges & { action: 'keep' | 'discard' | 'none' };
  open_files: OpenFile[];
}

/** `restore --dry-run`: what a restore would do, changing nothing (no lock, no snapshot). */
export function planRestore(layout: Layout, opts: TargetOptions & { discardChanges?: boolean }): RestorePlan {
  const wt = readWorktreeConfig(layout, opts.worktree);
  const resolved = resolveTarget(layout, opts, wt);
  const target = resolved.descriptor;
  const unsaved = unsavedChanges(layout, wt.name, target);
  const idx = IndexDb.open(layout);
  try {
    const manifest = ensureSnapshotManifest(idx, layout, target.snapshot_id);
    const c = compareWorktree(layout, idx, wt.name, manifest, restoreSelection(layout, wt.name, target));
    const latest = wt.latest_snapshot_id ?? target.snapshot_id;
    return {
      dry_run: true,
      snapshot_id: target.snapshot_id,
      worktree_name: wt.name,
      ref_kind: resolved.kind,
      detached: isDetached({ ...wt, head_snapshot_id: target.snapshot_id, latest_snapshot_id: latest }),
      would_write: [...c.modified, ...c.removed].sort(),
      would_remove: c.added.sort(),
      kept: c.unchanged,
      unsaved: { ...unsaved, action: unsaved.total ? (opts.discardChanges ? 'discard' : 'keep') : 'none' },
      open_files: openFilesTouched(layout, wt.name, target),
    };
  } finally {
    idx?.close();
  }
}
