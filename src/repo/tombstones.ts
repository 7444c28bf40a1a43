import fs from 'node:fs';
import { isTimestamp } from '../format/canonicalJson.js';
import { isSnapshotId } from '../format/snapshotId.js';
import type { Layout } from './layout.js';

/** `.jvs/gc/tombstones/<id>.json`: a snapshot gc has taken (or is taking) away. */
export interface Tombstone {
  snapshot_id: string;
  deleted_at: string;
  reclaimable: boolean;
  gc_state: 'marked' | 'committed';
  plan_id: string;
}

/**
 * The tombstone of a snapshot gc deleted, when there is a readable one naming it.
 * A kept snapshot whose parent has one has a *pruned* parent (DESIGN section 3), which
 * history, verify and doctor report as such, never as broken lineage.
 */
export function readTombstone(layout: Layout, id: string): Tombstone | undefined {
  if (!isSnapshotId(id)) return undefined;
  let t: Partial<Tombstone>;
  try {
    t = JSON.parse(fs.readFileSync(layout.tombstone(id), 'utf8')) as Partial<Tombstone>;
  } catch {
    return undefined;
  }
  if (!t || typeof t !== 'object' || t.snapshot_id !== id || !isTimestamp(t.deleted_at) || (t.gc_state !== 'marked' && t.gc_state !== 'committed')) return undefined;
  return t as Tombstone;
}
