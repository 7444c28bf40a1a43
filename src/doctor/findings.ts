import type { ErrorClass } from '../errors.js';

/** The repairs doctor can make, named as in DESIGN section 4. */
export const REPAIRS = {
  clean_tmp: 'remove staging leftovers of interrupted operations (.jvs/snapshots/<id>.tmp, descriptor temps, .jvs/tmp/*, half-written control files) that no live intent owns',
  clean_intents: 'finish or roll back each interrupted operation from its intent (snapshot, restore, fork, gc run), then remove the intent',
  advance_head: 'point a worktree at the snapshot an interrupted `jvs snapshot` had fully published but not yet recorded as its head',
  rebuild_index: 'rebuild .jvs/index.sqlite (a cache) from descriptors and payloads when it is not a readable SQLite database',
  audit_repair: 'cut a torn last line off the audit log, and append snapshot_create records (details.recovered) for snapshots published after the last record; never rewrites existing records',
} as const;

export type RepairName = keyof typeof REPAIRS;

export type FindingSeverity = 'warning' | 'error' | 'critical';

export interface Finding {
  /** What was checked, e.g. `intent`, `tmp`, `descriptor`, `payload`, `lineage`, `audit`, `index`. */
  check: string;
  severity: FindingSeverity;
  error_class: ErrorClass;
  message: string;
  path?: string;
  /** The repair that fixes it with `--repair-runtime`; absent when only a human can decide. */
  repair?: RepairName;
  repaired?: boolean;
  /** What the repair did (or why it failed). */
  repair_result?: string;
}

/** A finding plus the action that would fix it (run only with --repair-runtime). */
export interface PendingRepair {
  finding: Finding;
  apply?: () => string;
}
