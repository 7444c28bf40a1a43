import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { JvsError, fromSystemError } from '../errors.js';
import { applyTree, type ApplyResult } from '../engines/applyTree.js';
import { keepXattrs, XATTR_EXACT } from '../engines/xattrs.js';
import { noteWorktreeXattrs, snapshotMayHoldXattrs, worktreeMayHoldXattrs } from '../index/xattrFlags.js';
import { fsClockNs } from '../index/changeDetect.js';
import { IndexDb, snapshotOwner, worktreeOwner } from '../index/indexDb.js';
import { restoreKnowledge, stateAfterApply } from '../index/incremental.js';
import { byRel, checkedSnapshotManifest, putWorktreeState, type ManifestMap } from '../index/manifests.js';
import { chooseEngine } from '../engines/detect.js';
import type { Engine } from '../engines/engine.js';
import { appendAudit } from '../repo/audit.js';
import { readRepoConfig } from '../repo/config.js';
import { faultPoint } from '../repo/faults.js';
import { completeIntent, writeIntent } from '../repo/intents.js';
import { READY_FILE, type Layout } from '../repo/layout.js';
import { withPublishLock, withRepoLock, withWorktreeLock } from '../repo/lock.js';
import { isDetached, readWorktreeConfig, writeWorktreeConfig } from '../repo/worktreeConfig.js';
import type { Reporter } from '../progress.js';
import { readDescriptor } from '../repo/snapshots.js';
import { takesEverything, type IgnoreMatcher } from '../select/selection.js';
import { startWalk, walkTree } from '../fsutil/walk.js';
import { isSelected, restoreSelection } from './restoreSelection.js';
import { assertRestorable } from '../verify/restorable.js';
import { expandCompressed } from '../verify/compressedPayload.js';
import { compressionOf } from '../format/compression.js';
import { startOpenFileScan, type OpenFile } from './openFiles.js';
import { keepUnsavedWork, resolveTarget } from './restorePlan.js';
import { tracePhase } from '../trace.js';

export { restoreSelection } from './restoreSelection.js';
export { planRestore, type RestorePlan } from './restorePlan.js';

export interface RestoreOptions {
  worktree: string;
  ref?: string;
  latestTag?: string;
  lockWaitMs?: number;
  reporter?: Reporter;
  /** Do not keep the worktree's unsaved changes first (`--discard-changes`). */
  discardChanges?: boolean;
  /**
   * Look for other processes holding files open that the restore replaces (default
   * true). The mount passes false: its clients' files are open on the mount, not here.
   */
  checkOpenFiles?: boolean;
}

export interface RestoreResult {
  snapshot_id: string;
  worktree_name: string;
  ref_kind: string;
  detached: boolean;
  head_snapshot_id: string;
  latest_snapshot_id: string;
  files_written: number;
  entries_removed: number;
  entries_unchanged: number;
  duration_ms: number;
  /** The worktree's unsaved changes, kept first as a snapshot off the line (DESIGN §5). */
  unsaved?: UnsavedKept;
  /** Files this restore replaced or removed while another process held them open. */
  open_files?: OpenFile[];
  /** What could not be restored exactly (extended attributes the worktree's filesystem refused); absent when nothing. */
  degraded?: string[];
}

export interface UnsavedKept {
  snapshot_id: string;
  total_added: number;
  total_modified: number;
  total_removed: number;
  /** The command that brings the changes back. */
  restore_command: string;
}

/** The tag every unsaved-work snapshot carries (`jvs restore --latest-tag unsaved` brings the newest back). */
export const UNSAVED_TAG = 'unsaved';

const SKIP_READY = new Set([READY_FILE]);

/**
 * Bring a worktree to a snapshot's state, in place. Only entries that differ are
 * rewritten, each by renaming a fully written sibling over it. Crash safety comes
 * from the intent: `jvs doctor` re-applies the snapshot (applyTree converges), so
 * the worktree ends in the new state and never stays half old, half new. We chose
 * this over swapping a staged copy of the whole tree because a swap costs a full
 * copy on the copy engine, breaks shells and editors whose cwd is inside the
 * worktree, and would have to carry ignored paths across.
 *
 * Before any of that, changes since the head that the restore would overwrite are kept
 * as a snapshot off the line (restorePlan.ts: keepUnsavedWork) unless the caller asks
 * to discard them; a restore never destroys unsaved work. That snapshot takes the
 * worktree's lock itself, so it runs before this restore takes it.
 */
export async function restoreSnapshot(layout: Layout, opts: RestoreOptions): Promise<RestoreResult> {
  const started = Date.now();
  tracePhase('restore: start');
  const config = await readRepoConfig(layout);
  // The worktree's own lock for the apply; the repository lock while the ref is resolved
  // and the intent written (so gc cannot take the snapshot away meanwhile: a live
  // intent protects it) and again around the publish steps.
  const lockOpts = { waitMs: opts.lockWaitMs, command: 'restore', reporter: opts.reporter };
  layout.worktreeRoot(opts.worktree); // a symlinked or misplaced root: refused before anything
  // Resolved first for the unsaved-work check (and to fail early on a bad ref), and
  // again under the lock below: a snapshot taken meanwhile may have moved HEAD or a tag.
  const first = resolveTarget(layout, opts, readWorktreeConfig(layout, opts.worktree));
  const kept = await keepUnsavedWork(layout, opts, first.descriptor, UNSAVED_TAG);
  tracePhase('restore: unsaved work');
  // Other processes' open files, scanned on the addon's thread while the restore takes
  // its locks and writes its intent, and finished before the worktree changes (a file
  // replaced first would show as "(deleted)" and be missed); those the restore then
  // replaced or removed are named in the result.
  const openScan = opts.checkOpenFiles === false ? undefined : startOpenFileScan(layout.worktreeRoot(opts.worktree));
  return withWorktreeLock(layout, [opts.worktree], lockOpts, () => {
    const wt = readWorktreeConfig(layout, opts.worktree);
    layout.worktreeRoot(wt.name); // a symlinked or misplaced root: refused before the intent
    const { resolved, id, engine, opId, include } = withRepoLock(layout, lockOpts, () => {
      // The unsaved-work snapshot never counts: `--latest-tag unsaved` means the newest
      // kept before this restore, not the one it just made.
      const resolved = resolveTarget(layout, opts, wt, kept.unsaved?.snapshot_id);
      const id = resolved.descriptor.snapshot_id;
      assertRestorable(layout, resolved.descriptor);
      const include = restoreSelection(layout, wt.name, resolved.descriptor);
      const { engine } = chooseEngine(layout.tmp, config.default_engine);
      const opId = `restore-${Date.now()}-${randomBytes(4).toString('hex')}`;
      writeIntent(layout, { id: opId, operation: 'restore', worktree_name: wt.name, snapshot_id: id, engine: engine.name });
      return { resolved, id, engine, opId, include };
    });
    faultPoint('restore.1-intent');
    tracePhase('restore: lock, ref, engine, intent');
    const openNow = openScan?.wait() ?? [];
    tracePhase('restore: open files');
    try {
      const r = applyRestore(layout, wt.name, id, engine, opts.reporter, include);
      faultPoint('restore.2-applied');
      const openFiles = openNow.filter((o) => r.replaced?.(o.path) ?? true);
      const next = { ...wt, head_snapshot_id: id };
      if (!next.latest_snapshot_id) next.latest_snapshot_id = id;
      withPublishLock(layout, lockOpts, () => {
        writeWorktreeConfig(layout, next);
        faultPoint('restore.3-head');
        completeIntent(layout, opId);
        appendAudit(layout, { event_type: 'restore', snapshot_id: id, worktree_name: wt.name, details: { ref_kind: resolved.kind, files_written: r.written, entries_removed: r.removed, ...(kept.unsaved ? { unsaved_snapshot_id: kept.unsaved.snapshot_id } : {}), ...(r.degraded?.length ? { degraded: r.degraded } : {}) } });
      });
      return {
        snapshot_id: id,
        worktree_name: wt.name,
        ref_kind: resolved.kind,
        detached: isDetached(next),
        head_snapshot_id: id,
        latest_snapshot_id: next.latest_snapshot_id,
        files_written: r.written,
        entries_removed: r.removed,
        entries_unchanged: r.unchanged,
        duration_ms: Date.now() - started,
        ...kept,
        ...(openFiles.length ? { open_files: openFiles } : {}),
        ...(r.degraded?.length ? { degraded: r.degraded } : {}),
      };
    } catch (e) {
      if (e instanceof JvsError && e.details?.destination_unchanged) {
        // Refused before the worktree changed (a damaged snapshot, a full disk while staging): nothing to finish.
        withPublishLock(layout, lockOpts, () => completeIntent(layout, opId));
        throw e;
      }
      // The intent stays: the worktree may be partly restored, and doctor finishes it.
      throw fromSystemError(e, `restore of ${id} was interrupted (run \`jvs doctor --repair-runtime\` to finish it)`);
    }
  });
}

/**
 * The in-place apply shared by restore and by doctor's roll-forward of a restore intent.
 * Incremental: a worktree file whose stat the worktree state vouches for, with the
 * hash the snapshot's manifest has at that path, is left alone; afterwards the state
 * records what the worktree now holds so the next snapshot need not read it again.
 * Without an index every file is rewritten (always correct).
 */
export function applyRestore(layout: Layout, worktree: string, snapshotId: string, engine: Engine, reporter?: Reporter, include?: IgnoreMatcher): ApplyResult {
  // Before anything is written: files this restore writes get ctimes at or after it,
  // so the state never vouches for them until a snapshot has read them.
  const probeNs = fsClockNs(layout.tmp);
  const root = layout.worktreeRoot(worktree);
  const descriptor = readDescriptor(layout, snapshotId);
  const sel = include ?? restoreSelection(layout, worktree, descriptor);
  if (compressionOf(descriptor)) {
    // A compressed snapshot is applied from its decompressed, verified copy in .jvs/tmp
    // (real names and modes; src/verify/compressedPayload.ts). No index shortcuts.
    // The compressed layout keeps no extended attributes (its snapshot said so when taken): the worktree's stay.
    return expandCompressed(layout, descriptor, (tree) => applyTree(tree, root, engine, { skipNames: SKIP_READY, include: sel, stageDir: layout.tmp, onProgress: reporter ? (x, t) => reporter.progress('restore', x, t) : undefined }));
  }
  // Nothing to leave out: the worktree is scanned on every core while the index is opened and read.
  const destWalk = !engine.cloneTree && sel === takesEverything && fs.existsSync(root) ? startWalk(root) : undefined;
  const idx = IndexDb.open(layout);
  tracePhase('restore: index open');
  try {
    // Checked against the descriptor: paths clean, root hash the published one (item 2 of issue 14).
    const target = idx ? checkedSnapshotManifest(idx, layout, descriptor) : undefined;
    // By path only if asked (applyTree's source listing carries the manifest's hashes).
    let targetMap: ManifestMap | undefined;
    const targetOf = target ? (rel: string) => (targetMap ??= byRel(target)).get(rel) : undefined;
    tracePhase('restore: index read');
    const { state, sameContent, stateMap } = restoreKnowledge(idx, worktree, root, targetOf);
    // The same lists as stored, for the addon's restorePlan.
    const targetRaw = target ? idx?.getListRaw(snapshotOwner(snapshotId)) : undefined;
    const stateRaw = state ? idx?.getListRaw(worktreeOwner(worktree)) : undefined;
    tracePhase('restore: worktree state read');
    const r = applyTree(layout.snapshotDir(snapshotId), root, engine, {
      skipNames: SKIP_READY,
      include: sel,
      stageDir: layout.tmp,
      ...(sameContent ? { sameContent } : {}),
      // The manifest lists the snapshot: no walk of the snapshot folder.
      ...(target ? { sourceEntries: target } : {}),
      ...(destWalk ? { destWalk } : {}),
      ...(targetRaw ? { raw: { target: targetRaw.data, state: stateRaw?.data ?? null, probeNs: stateRaw?.probeNs ?? 0n, stateEntries: () => state?.entries ?? [] } } : {}),
      onProgress: reporter ? (d, t) => reporter.progress('restore', d, t) : undefined,
    });
    tracePhase('restore: apply');
    // Extended attributes of every entry the index could not vouch for, made equal to
    // the snapshot's (an xattr-only change moved the ctime, so it lands here). Before
    // the state is taken: a set moves the ctime again.
    // Vouched files hold their basis snapshot's attributes; they are looked at too unless
    // neither that snapshot nor the target holds any (index/xattrFlags.ts).
    const mayXattrs = snapshotMayHoldXattrs(idx, snapshotId);
    const lookAll = mayXattrs || worktreeMayHoldXattrs(idx, worktree, state?.basis);
    // (The plan's own list when it made one: a walk over every manifest entry costs ms.)
    const rels = !lookAll && r.unvouched && sel === takesEverything ? ['', ...r.unvouched] : xattrRels(layout.snapshotDir(snapshotId), sel, target, lookAll ? undefined : r.vouched);
    r.degraded = keepXattrs(layout.snapshotDir(snapshotId), root, rels, XATTR_EXACT).degraded;
    tracePhase('restore: xattrs');
    if (idx && target) {
      // Only what the restore applied: paths its selection left alone are not the snapshot's.
      const applied = sel === takesEverything ? target : target.filter((t) => isSelected(sel, t.rel, t.type === 'dir'));
      const entries = stateAfterApply(root, applied, (rel) => r.statOf?.(rel), stateMap, r.vouched);
      tracePhase('restore: state');
      // A whole restore made every attribute the target's; a selective one kept others.
      const mayNow = mayXattrs || (sel !== takesEverything && worktreeMayHoldXattrs(idx, worktree, state?.basis));
      // State and note in one transaction: one journal commit (~4 fsyncs) instead of two.
      idx.transaction(() => {
        putWorktreeState(idx, worktree, { entries, probeNs, basis: snapshotId });
        noteWorktreeXattrs(idx, worktree, snapshotId, mayNow);
      });
    }
    tracePhase('restore: state write');
    return r;
  } finally {
    idx?.close();
  }
}

/**
 * The entries whose extended attributes a restore sets: every selected entry of the
 * snapshot except files the worktree state vouched for (their stat, ctime included,
 * is what the state recorded after the last snapshot or restore wrote them), and the
 * root when the whole tree is restored. Without a manifest the snapshot is walked.
 */
function xattrRels(snapDir: string, sel: IgnoreMatcher, target: readonly { rel: string; type: string }[] | undefined, vouched: Map<string, object> | undefined): string[] {
  const whole = sel === takesEverything;
  const rels = whole ? [''] : [];
  if (target) {
    for (const e of target) if (!vouched?.has(e.rel) && (whole || isSelected(sel, e.rel, e.type === 'dir'))) rels.push(e.rel);
    return rels;
  }
  for (const e of walkTree(snapDir, { include: (rel, isDir) => rel !== READY_FILE && (whole || isSelected(sel, rel, isDir)) }).entries) rels.push(e.rel);
  return rels;
}
