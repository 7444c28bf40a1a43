import fs from 'node:fs';
import { JvsError, fromSystemError } from '../errors.js';
import { canonicalJson, formatTimestamp, type JsonValue } from '../format/canonicalJson.js';
import { fsyncDir, writeFileAtomic } from '../fsutil/atomic.js';
import { appendAudit } from '../repo/audit.js';
import { faultPoint } from '../repo/faults.js';
import { completeIntent, writeIntent } from '../repo/intents.js';
import type { Layout } from '../repo/layout.js';
import type { Reporter } from '../progress.js';
import { withRepoLock } from '../repo/lock.js';
import { loadDescriptors } from '../repo/snapshots.js';
import { IndexDb } from '../index/indexDb.js';
import { pruneGone } from '../index/incremental.js';
import type { Tombstone } from '../repo/tombstones.js';

export type { Tombstone } from '../repo/tombstones.js';
import { readGcPlan } from './planGc.js';
import { computeProtection } from './protection.js';

export interface GcRunResult {
  plan_id: string;
  deleted: string[];
  /** Already gone before this run (a resumed or repeated run). */
  already_deleted: string[];
  /** Only when resuming: planned snapshots that became protected meanwhile and were kept. */
  kept: string[];
  resumed: boolean;
}

function dropFromIndex(layout: Layout): void {
  const idx = IndexDb.open(layout);
  if (!idx) return;
  try {
    idx.transaction(() => pruneGone(idx, layout));
  } finally {
    idx.close();
  }
}

export function gcIntentId(planId: string): string {
  return `gc-${planId}`;
}

function writeTombstone(layout: Layout, t: Tombstone): void {
  fs.mkdirSync(layout.tombstones, { recursive: true });
  writeFileAtomic(layout.tombstone(t.snapshot_id), canonicalJson(t as unknown as JsonValue) + '\n');
}

function readTombstoneState(layout: Layout, id: string): string | undefined {
  try {
    return (JSON.parse(fs.readFileSync(layout.tombstone(id), 'utf8')) as Partial<Tombstone>).gc_state;
  } catch {
    return undefined; // damaged: rewritten as committed
  }
}

export interface GcRunOptions {
  planId: string;
  lockWaitMs?: number;
  /** Told when the command waits for a busy lock. */
  reporter?: Reporter;
}

/**
 * Phase two of gc. The plan is revalidated against the repository as it is now: a
 * planned snapshot that has since become protected fails the run with
 * E_GC_PLAN_MISMATCH before anything is deleted. Per snapshot: tombstone (marked) →
 * descriptor removed (the snapshot stops being published at this single rename-free
 * unlink) → payload moved under `.jvs/tmp/` → removed → tombstone committed. The
 * gc_run intent lets `jvs doctor` (or the same command again) resume after a crash;
 * every step is idempotent.
 */
export function runGc(layout: Layout, opts: GcRunOptions): GcRunResult {
  return withRepoLock(layout, { waitMs: opts.lockWaitMs, command: 'gc run', reporter: opts.reporter }, () => executeGc(layout, opts.planId, false, opts.reporter));
}

/** The body of gc run; `resume` (doctor, lock already held) keeps newly protected snapshots instead of failing. */
export function executeGc(layout: Layout, planId: string, resumeOnly: boolean, reporter?: Reporter): GcRunResult {
  const plan = readGcPlan(layout, planId);
  const intentId = gcIntentId(planId);
  const resumed = fs.existsSync(layout.intent(intentId));
  const { descriptors } = loadDescriptors(layout);
  const published = new Set(descriptors.map((d) => d.snapshot_id));
  const protection = computeProtection(layout, descriptors, plan.retention_policy, Date.now());
  const conflicts = plan.to_delete.filter((id) => published.has(id) && protection.all.has(id));
  if (conflicts.length && !resumed && !resumeOnly) {
    throw new JvsError('E_GC_PLAN_MISMATCH', `gc plan ${planId} no longer matches the repository: ${conflicts.length} planned snapshot${conflicts.length === 1 ? ' is' : 's are'} now protected (${conflicts.slice(0, 5).join(', ')}${conflicts.length > 5 ? ', …' : ''})`, {
      hint: 'nothing was deleted; run `jvs gc plan` again and run the new plan',
      details: { now_protected: conflicts },
    });
  }
  const kept = new Set(conflicts);
  if (!resumed) {
    writeIntent(layout, { id: intentId, operation: 'gc_run', details: { plan_id: planId } });
  }
  faultPoint('gc.1-intent');
  const deleted: string[] = [];
  const already: string[] = [];
  try {
    let handled = 0;
    for (const id of plan.to_delete) {
      // Progress by snapshot (a payload of a million files takes a while to remove).
      reporter?.progress('gc run', handled++, plan.to_delete.length, 'snapshots');
      if (kept.has(id)) continue;
      const stage = layout.tmpPath(`gc-${id}`);
      const hasDir = fs.existsSync(layout.snapshotDir(id));
      if (!published.has(id) && !hasDir && !fs.existsSync(stage)) {
        // Gone already; a crash after the payload went may have left the tombstone marked.
        if (fs.existsSync(layout.tombstone(id)) && readTombstoneState(layout, id) !== 'committed') {
          writeTombstone(layout, { snapshot_id: id, deleted_at: formatTimestamp(new Date()), reclaimable: false, gc_state: 'committed', plan_id: planId });
        }
        already.push(id);
        continue;
      }
      if (!fs.existsSync(layout.tombstone(id))) {
        writeTombstone(layout, { snapshot_id: id, deleted_at: formatTimestamp(new Date()), reclaimable: true, gc_state: 'marked', plan_id: planId });
      }
      faultPoint('gc.2-tombstone');
      if (published.has(id)) {
        fs.rmSync(layout.descriptor(id), { force: true });
        fsyncDir(layout.descriptors);
      }
      faultPoint('gc.3-descriptor');
      if (hasDir) {
        fs.mkdirSync(layout.tmp, { recursive: true });
        fs.rmSync(stage, { recursive: true, force: true });
        fs.renameSync(layout.snapshotDir(id), stage);
        fsyncDir(layout.snapshots);
      }
      faultPoint('gc.4-payload-moved');
      fs.rmSync(stage, { recursive: true, force: true });
      faultPoint('gc.5-payload-removed');
      writeTombstone(layout, { snapshot_id: id, deleted_at: formatTimestamp(new Date()), reclaimable: false, gc_state: 'committed', plan_id: planId });
      // Only an expired pin can name a deleted snapshot; it has nothing left to protect.
      fs.rmSync(layout.pin(id), { force: true });
      deleted.push(id);
    }
  } catch (e) {
    // The intent stays so the run can be resumed: `jvs gc run --plan-id` again, or `jvs doctor --repair-runtime`.
    throw fromSystemError(e, `gc run of plan ${planId} was interrupted (re-run \`jvs gc run --plan-id ${planId}\` to finish it)`);
  }
  reporter?.progress('gc run', plan.to_delete.length, plan.to_delete.length, 'snapshots');
  completeIntent(layout, intentId);
  faultPoint('gc.6-intent-done');
  // (cache) the deleted snapshots' manifests leave the index now, not at the next snapshot.
  if (deleted.length) dropFromIndex(layout);
  for (const id of deleted) appendAudit(layout, { event_type: 'snapshot_delete', snapshot_id: id, details: { plan_id: planId } });
  appendAudit(layout, { event_type: 'gc_run', details: { plan_id: planId, deleted: deleted.length, ...(resumed ? { resumed: true } : {}), ...(kept.size ? { kept: [...kept] } : {}) } });
  return { plan_id: planId, deleted, already_deleted: already, kept: [...kept], resumed };
}
