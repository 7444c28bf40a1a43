import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { JvsError } from '../errors.js';
import { canonicalJson, formatTimestamp, isTimestamp, type JsonValue } from '../format/canonicalJson.js';
import { isSnapshotId } from '../format/snapshotId.js';
import { writeFileAtomic } from '../fsutil/atomic.js';
import { appendAudit } from '../repo/audit.js';
import { readRepoConfig } from '../repo/config.js';
import type { Layout } from '../repo/layout.js';
import type { Reporter } from '../progress.js';
import { withRepoLock } from '../repo/lock.js';
import { loadDescriptors } from '../repo/snapshots.js';
import { parseDuration } from '../repo/duration.js';
import { computeProtection, type RetentionPolicy } from './protection.js';
import { parseJsonObject } from '../format/parseJson.js';
import { fsPath, nameFromBytes } from '../format/nameBytes.js';
import { isPlanId } from '../format/controlNames.js';

/** `.jvs/gc/<plan_id>.json`, fields as DESIGN section 3 (counts for protected_by_*, as the reference). */
export interface GcPlan {
  plan_id: string;
  created_at: string;
  protected_set: string[];
  protected_by_pin: number;
  protected_by_lineage: number;
  protected_by_retention: number;
  candidate_count: number;
  to_delete: string[];
  deletable_bytes_estimate: number;
  retention_policy: RetentionPolicy;
}

export interface PlanOptions {
  keep?: number;
  within?: string;
  /** Collect tagged snapshots too (they are protected by default). */
  includeTagged?: boolean;
  lockWaitMs?: number;
  /** Told when the command waits for a busy lock. */
  reporter?: Reporter;
}

export interface PlanResult extends GcPlan {
  /** Why each protected snapshot is kept (informational; not stored in the plan file). */
  protection: { heads: string[]; tags: string[]; pins: string[]; intents: string[]; retention: string[]; lineage: string[] };
}

/**
 * Bytes that deleting `ids` would free: every inode counted once, and only when all
 * its links lie inside the doomed snapshots (copy-engine snapshots share unchanged
 * files with their neighbours through hard links).
 */
export function estimateBytes(layout: Layout, ids: string[]): number {
  const seen = new Map<string, { size: number; nlink: number; count: number }>();
  const visit = (dir: string) => {
    let names: string[];
    try {
      names = fs.readdirSync(fsPath(dir), { encoding: 'buffer' }).map((b) => nameFromBytes(b)); // names kept as bytes (format/nameBytes.ts)
    } catch {
      return;
    }
    for (const n of names) {
      const p = path.join(dir, n);
      const st = fs.lstatSync(fsPath(p));
      if (st.isDirectory()) visit(p);
      else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const e = seen.get(key) ?? { size: st.size, nlink: st.nlink, count: 0 };
        e.count++;
        seen.set(key, e);
      }
    }
  };
  for (const id of ids) visit(layout.snapshotDir(id));
  let bytes = 0;
  for (const e of seen.values()) if (e.count >= e.nlink) bytes += e.size;
  return bytes;
}

export async function resolveRetention(layout: Layout, opts: { keep?: number; within?: string; includeTagged?: boolean }): Promise<RetentionPolicy> {
  const cfg = (await readRepoConfig(layout)).retention ?? {};
  const keep = opts.keep ?? cfg.keep ?? 0;
  const within = opts.within ?? cfg.within ?? '';
  if (!Number.isInteger(keep) || keep < 0) throw new JvsError('E_USAGE', `--keep must be a whole number ≥ 0, got ${keep}`, { hint: 'e.g. `jvs gc plan --keep 10`' });
  if (within) parseDuration(within, '--within');
  return { keep, within, ...(opts.includeTagged ? { include_tagged: true } : {}) };
}

/** Phase one of gc: compute and record what may go; deletes nothing. */
export async function planGc(layout: Layout, opts: PlanOptions = {}): Promise<PlanResult> {
  const policy = await resolveRetention(layout, opts);
  return withRepoLock(layout, { waitMs: opts.lockWaitMs, command: 'gc plan', reporter: opts.reporter }, () => {
    const { descriptors } = loadDescriptors(layout);
    const now = Date.now();
    const p = computeProtection(layout, descriptors, policy, now);
    const toDelete = descriptors.map((d) => d.snapshot_id).filter((id) => !p.all.has(id));
    const plan: GcPlan = {
      plan_id: randomUUID(),
      created_at: formatTimestamp(new Date(now)),
      protected_set: [...p.all].sort(),
      protected_by_pin: p.pins.length,
      protected_by_lineage: p.lineage.length,
      protected_by_retention: p.retention.length,
      candidate_count: toDelete.length,
      to_delete: toDelete,
      deletable_bytes_estimate: estimateBytes(layout, toDelete),
      retention_policy: policy,
    };
    fs.mkdirSync(layout.gc, { recursive: true });
    writeFileAtomic(layout.gcPlan(plan.plan_id), canonicalJson(plan as unknown as JsonValue) + '\n');
    appendAudit(layout, { event_type: 'gc_plan', details: { plan_id: plan.plan_id, candidate_count: plan.candidate_count, deletable_bytes_estimate: plan.deletable_bytes_estimate } });
    return { ...plan, protection: { heads: p.heads, tags: p.tags, pins: p.pins, intents: p.intents, retention: p.retention, lineage: p.lineage } };
  });
}

/** Read a stored plan; a missing plan is E_NOT_FOUND, a damaged one E_GC_PLAN_MISMATCH. */
export function readGcPlan(layout: Layout, planId: string): GcPlan {
  if (!isPlanId(planId)) {
    throw new JvsError('E_NOT_FOUND', `${JSON.stringify(planId)} is not a gc plan id`, { hint: 'run `jvs gc plan` and pass the plan_id it prints' });
  }
  const file = layout.gcPlan(planId);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new JvsError('E_NOT_FOUND', `gc plan ${planId} does not exist`, { hint: 'run `jvs gc plan` to make a new plan' });
  }
  const bad = (why: string) => new JvsError('E_GC_PLAN_MISMATCH', `gc plan ${planId} is damaged: ${why}`, { hint: 'run `jvs gc plan` to make a new plan', details: { file } });
  const p = parseJsonObject(text, bad);
  if (p.plan_id !== planId) throw bad('plan_id does not match the file name');
  if (!isTimestamp(p.created_at)) throw bad('created_at is not a timestamp');
  for (const k of ['to_delete', 'protected_set'] as const) {
    if (!Array.isArray(p[k]) || !(p[k] as unknown[]).every((x) => typeof x === 'string' && isSnapshotId(x))) throw bad(`${k} is not a list of snapshot ids`);
  }
  const rp = p.retention_policy as Record<string, unknown> | undefined;
  const policy: RetentionPolicy = {
    keep: typeof rp?.keep === 'number' ? rp.keep : 0,
    within: typeof rp?.within === 'string' ? rp.within : '',
    ...(rp?.include_tagged === true ? { include_tagged: true } : {}),
  };
  return { ...(p as unknown as GcPlan), retention_policy: policy };
}
