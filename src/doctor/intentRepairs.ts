import fs from 'node:fs';
import { formatTimestamp } from '../format/canonicalJson.js';
import { parseDescriptor } from '../format/descriptor.js';
import { isSnapshotId } from '../format/snapshotId.js';
import { fsyncDir } from '../fsutil/atomic.js';
import { chooseEngine } from '../engines/detect.js';
import { pinByOperation } from '../gc/pins.js';
import { executeGc } from '../gc/runGc.js';
import { appendAudit } from '../repo/audit.js';
import type { RepoConfig } from '../repo/config.js';
import { completeIntent, stagePath, type Intent, type IntentEntry } from '../repo/intents.js';
import type { Layout } from '../repo/layout.js';
import { readWorktreeConfig, writeWorktreeConfig } from '../repo/worktreeConfig.js';
import { applyRestore } from '../restore/restoreSnapshot.js';
import type { PendingRepair } from './findings.js';
import { readReadyMarker } from '../verify/restorable.js';

const exists = (p: string) => fs.existsSync(p);

/**
 * After a snapshot is fully published, make it the worktree's latest — and its head
 * too unless the user restored another snapshot since the crash — but only if the
 * worktree's latest is still the snapshot's parent. If the user already took another
 * snapshot since, the recovered one stays a published side branch. A snapshot that
 * started a new line (its intent says from where) settles the same way when the
 * worktree still shows its parent, pinning the tip it left; an off-line snapshot
 * (unsaved work kept by restore) never moves the worktree and is only pinned.
 */
export function settleHead(layout: Layout, id: string, details?: Intent['details']): string {
  const d = parseDescriptor(fs.readFileSync(layout.descriptor(id), 'utf8'), id);
  const wt = readWorktreeConfig(layout, d.worktree_name);
  if (details?.off_line) {
    // Unsaved work a restore kept: it never moves the worktree, but it stays pinned.
    pinByOperation(layout, id, `unsaved changes of worktree '${wt.name}' kept by an interrupted restore`);
    return `kept ${id} off the line of worktree '${wt.name}' (pinned)`;
  }
  if (wt.latest_snapshot_id === id) return `worktree '${wt.name}' already had it as latest`;
  if (!headNeedsAdvance(layout, id, details)) return `worktree '${wt.name}' has moved on since; ${id} stays a published side branch`;
  if (typeof details?.left_line_tip === 'string' && wt.latest_snapshot_id === details.left_line_tip) {
    if (details.pin_left !== false) pinByOperation(layout, details.left_line_tip, `tip of the line worktree '${wt.name}' left when it started a new line from ${String(details.new_line_from)}`);
    writeWorktreeConfig(layout, { ...wt, latest_snapshot_id: id, head_snapshot_id: id });
    return `advanced worktree '${wt.name}' to ${id} (a new line; the old tip stays pinned)`;
  }
  const showsParent = wt.head_snapshot_id === wt.latest_snapshot_id;
  writeWorktreeConfig(layout, { ...wt, latest_snapshot_id: id, ...(showsParent ? { head_snapshot_id: id } : {}) });
  return showsParent ? `advanced worktree '${wt.name}' to ${id}` : `recorded ${id} as the latest of worktree '${wt.name}' (its head stays where it was restored to)`;
}

function headNeedsAdvance(layout: Layout, id: string, details?: Intent['details']): boolean {
  try {
    if (details?.off_line) return false;
    const d = parseDescriptor(fs.readFileSync(layout.descriptor(id), 'utf8'), id);
    const wt = readWorktreeConfig(layout, d.worktree_name);
    if (wt.latest_snapshot_id === id) return false;
    // A new line from a restored snapshot: the worktree still shows its parent, and its
    // latest is still the tip the new line leaves.
    if (details?.new_line_from !== undefined) {
      return wt.head_snapshot_id === d.parent_id && wt.latest_snapshot_id === details.left_line_tip;
    }
    return (wt.latest_snapshot_id ?? '') === (d.parent_id ?? '');
  } catch {
    return false;
  }
}

function snapshotIntent(layout: Layout, file: string, i: Intent): PendingRepair[] {
  const id = i.snapshot_id ?? i.id;
  const dir = layout.snapshotDir(id);
  const desc = layout.descriptor(id);
  const dtmp = layout.descriptorTmp(id);
  const who = `snapshot ${id} of worktree '${i.worktree_name ?? '?'}'`;
  if (!exists(dir) && !exists(desc)) {
    return [{
      finding: { check: 'intent', severity: 'error', error_class: 'E_PARTIAL_SNAPSHOT', message: `${who} was interrupted before it was published`, path: file, repair: 'clean_intents' },
      apply: () => {
        fs.rmSync(layout.snapshotTmpDir(id), { recursive: true, force: true });
        fs.rmSync(dtmp, { force: true });
        completeIntent(layout, i.id);
        return 'rolled back: removed the unpublished stage';
      },
    }];
  }
  if (exists(dir) && !exists(desc)) {
    if (!exists(dtmp)) {
      return [{ finding: { check: 'intent', severity: 'critical', error_class: 'E_PARTIAL_SNAPSHOT', message: `${who}: its folder was published but its descriptor (and the descriptor temp) is missing`, path: dir } }];
    }
    return [{
      finding: { check: 'intent', severity: 'error', error_class: 'E_PARTIAL_SNAPSHOT', message: `${who} was interrupted while publishing (folder in place, descriptor not yet)`, path: file, repair: 'clean_intents' },
      apply: () => {
        const d = parseDescriptor(fs.readFileSync(dtmp, 'utf8'), id);
        const ready = readReadyMarker(layout, d); // `.READY.gz` in a compressed snapshot
        if (ready.descriptor_checksum !== d.descriptor_checksum || ready.payload_root_hash !== d.payload_root_hash) {
          throw new Error('the descriptor temp does not match the .READY marker');
        }
        fs.renameSync(dtmp, desc);
        fsyncDir(layout.descriptors);
        const head = settleHead(layout, id, i.details);
        completeIntent(layout, i.id);
        return `finished publishing ${id}; ${head}`;
      },
    }];
  }
  if (!exists(dir)) {
    return [{ finding: { check: 'intent', severity: 'critical', error_class: 'E_PARTIAL_SNAPSHOT', message: `${who}: a descriptor exists but the snapshot folder does not`, path: desc } }];
  }
  const out: PendingRepair[] = [];
  if (headNeedsAdvance(layout, id, i.details) || (i.details?.off_line && !exists(layout.pin(id)))) {
    out.push({
      finding: { check: 'head', severity: 'error', error_class: 'E_PARTIAL_SNAPSHOT', message: `${who} was published but the worktree head was not advanced to it`, path: layout.worktreeConfig(i.worktree_name ?? ''), repair: 'advance_head' },
      apply: () => settleHead(layout, id, i.details),
    });
  }
  out.push({
    finding: { check: 'intent', severity: 'warning', error_class: 'E_PARTIAL_SNAPSHOT', message: `${who} completed but its intent was left behind`, path: file, repair: 'clean_intents' },
    apply: () => {
      fs.rmSync(dtmp, { force: true });
      completeIntent(layout, i.id);
      return 'removed the finished intent';
    },
  });
  return out;
}

function restoreIntent(layout: Layout, file: string, i: Intent, config: RepoConfig): PendingRepair[] {
  const id = i.snapshot_id ?? '';
  const wt = i.worktree_name ?? '';
  if (!isSnapshotId(id) || !exists(layout.descriptor(id)) || !exists(layout.snapshotDir(id))) {
    return [{ finding: { check: 'intent', severity: 'critical', error_class: 'E_PARTIAL_SNAPSHOT', message: `restore of worktree '${wt}' to ${id || '?'} was interrupted and that snapshot is gone; the worktree may be partly restored (restore another snapshot with \`jvs restore <ref>\`)`, path: file } }];
  }
  return [{
    finding: { check: 'intent', severity: 'error', error_class: 'E_PARTIAL_SNAPSHOT', message: `restore of worktree '${wt}' to ${id} was interrupted; the worktree may be partly restored`, path: file, repair: 'clean_intents' },
    apply: () => {
      const { engine } = chooseEngine(layout.tmp, config.default_engine);
      const r = applyRestore(layout, wt, id, engine);
      const c = readWorktreeConfig(layout, wt);
      writeWorktreeConfig(layout, { ...c, head_snapshot_id: id, latest_snapshot_id: c.latest_snapshot_id ?? id });
      completeIntent(layout, i.id);
      appendAudit(layout, { event_type: 'restore', snapshot_id: id, worktree_name: wt, details: { recovered: true, files_written: r.written, entries_removed: r.removed } });
      return `rolled forward: worktree '${wt}' is now at ${id} (${r.written} written, ${r.removed} removed)`;
    },
  }];
}

function forkIntent(layout: Layout, file: string, i: Intent): PendingRepair[] {
  const name = i.worktree_name ?? '';
  // Never remove anything outside .jvs/tmp because an intent said so: the stage is
  // derived from the (checked) id, not read from the record.
  const stage = stagePath(layout, i);
  const cleanStage = () => fs.rmSync(stage, { recursive: true, force: true });
  if (name && exists(layout.worktreeConfig(name))) {
    return [{
      finding: { check: 'intent', severity: 'warning', error_class: 'E_PARTIAL_SNAPSHOT', message: `worktree '${name}' was created but its intent was left behind`, path: file, repair: 'clean_intents' },
      apply: () => { cleanStage(); completeIntent(layout, i.id); return 'removed the finished intent'; },
    }];
  }
  if (name && exists(layout.payload(name))) {
    return [{
      finding: { check: 'intent', severity: 'error', error_class: 'E_PARTIAL_SNAPSHOT', message: `creation of worktree '${name}' was interrupted after its folder was in place`, path: file, repair: 'clean_intents' },
      apply: () => {
        const sid = i.snapshot_id;
        writeWorktreeConfig(layout, { name, created_at: formatTimestamp(new Date()), ...(sid ? { base_snapshot_id: sid, head_snapshot_id: sid, latest_snapshot_id: sid } : {}) });
        cleanStage();
        completeIntent(layout, i.id);
        appendAudit(layout, { event_type: 'worktree_create', worktree_name: name, ...(sid ? { snapshot_id: sid } : {}), details: { recovered: true } });
        return `finished: worktree '${name}' registered${sid ? ` at ${sid}` : ''}`;
      },
    }];
  }
  return [{
    finding: { check: 'intent', severity: 'error', error_class: 'E_PARTIAL_SNAPSHOT', message: `creation of worktree '${name}' was interrupted before its folder was in place`, path: file, repair: 'clean_intents' },
    apply: () => { cleanStage(); completeIntent(layout, i.id); return 'rolled back: removed the staged folder'; },
  }];
}

function gcIntent(layout: Layout, file: string, i: Intent): PendingRepair[] {
  const planId = typeof i.details?.plan_id === 'string' ? i.details.plan_id : '';
  if (!exists(layout.gcPlan(planId))) {
    return [{ finding: { check: 'intent', severity: 'error', error_class: 'E_GC_PLAN_MISMATCH', message: `gc run of plan ${planId || '?'} was interrupted and its plan is gone; it cannot be resumed`, path: file } }];
  }
  return [{
    finding: { check: 'intent', severity: 'error', error_class: 'E_PARTIAL_SNAPSHOT', message: `gc run of plan ${planId} was interrupted`, path: file, repair: 'clean_intents' },
    apply: () => {
      const r = executeGc(layout, planId, true);
      return `resumed gc: ${r.deleted.length} deleted now, ${r.already_deleted.length} already gone${r.kept.length ? `, ${r.kept.length} kept (protected since)` : ''}`;
    },
  }];
}

/** What one intent file means and how to finish or roll back its operation. */
export function analyzeIntent(layout: Layout, entry: IntentEntry, config: RepoConfig): PendingRepair[] {
  const { file, intent } = entry;
  if (entry.damage === 'invalid') {
    // Not what JVS writes: a tampered or foreign record. Acting on it could touch
    // whatever its names point at, so doctor reports it and leaves it alone.
    return [{ finding: { check: 'intent', severity: 'critical', error_class: 'E_DESCRIPTOR_CORRUPT', message: `intent record is not one JVS wrote: ${entry.error}. Doctor does not act on it; inspect the file and delete it by hand if no operation was in flight`, path: file } }];
  }
  if (!intent) {
    const base = file.slice(file.lastIndexOf('/') + 1).replace(/\.json$/, '');
    return [{
      finding: { check: 'intent', severity: 'error', error_class: 'E_DESCRIPTOR_CORRUPT', message: `intent record is unreadable (${entry.error ?? 'not an intent object'})`, path: file, repair: 'clean_intents' },
      apply: () => {
        // A snapshot intent is named after its snapshot: drop its unpublished stage too.
        if (isSnapshotId(base) && !exists(layout.snapshotDir(base))) {
          fs.rmSync(layout.snapshotTmpDir(base), { recursive: true, force: true });
          fs.rmSync(layout.descriptorTmp(base), { force: true });
        }
        fs.rmSync(file, { force: true });
        return 'removed the unreadable intent (if a restore was in flight, run `jvs restore <ref>` again)';
      },
    }];
  }
  switch (intent.operation) {
    case 'snapshot': return snapshotIntent(layout, file, intent);
    case 'restore': return restoreIntent(layout, file, intent, config);
    case 'fork': return forkIntent(layout, file, intent);
    case 'gc_run': return gcIntent(layout, file, intent);
    default:
      return [{ finding: { check: 'intent', severity: 'error', error_class: 'E_PARTIAL_SNAPSHOT', message: `an interrupted '${intent.operation}' operation left an intent doctor cannot finish`, path: file } }];
  }
}
