import type { Descriptor } from '../format/descriptor.js';
import { uniquePrefixes } from '../format/snapshotId.js';
import type { Layout } from '../repo/layout.js';
import { loadDescriptors } from '../repo/snapshots.js';
import { readTombstone } from '../repo/tombstones.js';
import { readWorktreeConfig } from '../repo/worktreeConfig.js';

export interface HistoryOptions {
  worktree?: string;
  all?: boolean;
  limit?: number;
  grep?: string;
  tag?: string;
}

export interface HistoryEntry {
  snapshot_id: string;
  /** Shortest prefix that is unique in this repository (at least 8 characters). */
  display_id: string;
  parent_id?: string;
  /** The parent was deleted by gc (DESIGN section 3): the lineage shown ends here, and is not broken. */
  parent_pruned?: boolean;
  worktree_name: string;
  created_at: string;
  note?: string;
  tags: string[];
  engine: string;
  is_head: boolean;
  is_latest: boolean;
}

export interface HistoryResult {
  worktree?: string;
  head_snapshot_id?: string;
  latest_snapshot_id?: string;
  snapshots: HistoryEntry[];
  total: number;
}

/**
 * Snapshots newest first. By default the lineage of the worktree's latest snapshot
 * (parent chain), with `all` every snapshot of the repository.
 */
export function history(layout: Layout, opts: HistoryOptions): HistoryResult {
  const { descriptors } = loadDescriptors(layout);
  const byId = new Map(descriptors.map((d) => [d.snapshot_id, d]));
  const wt = opts.worktree ? readWorktreeConfig(layout, opts.worktree) : undefined;
  let list: Descriptor[];
  if (opts.all || !wt) {
    list = [...descriptors].reverse();
  } else {
    list = [];
    const seen = new Set<string>();
    let cur = wt.latest_snapshot_id;
    while (cur && !seen.has(cur)) {
      seen.add(cur);
      const d = byId.get(cur);
      if (!d) break;
      list.push(d);
      cur = d.parent_id;
    }
  }
  if (opts.tag) list = list.filter((d) => d.tags?.includes(opts.tag!));
  if (opts.grep) {
    const needle = opts.grep.toLowerCase();
    list = list.filter((d) => (d.note ?? '').toLowerCase().includes(needle));
  }
  const total = list.length;
  if (opts.limit !== undefined && opts.limit >= 0) list = list.slice(0, opts.limit);
  const shown = uniquePrefixes(descriptors.map((d) => d.snapshot_id));
  return {
    ...(wt ? { worktree: wt.name } : {}),
    ...(wt?.head_snapshot_id ? { head_snapshot_id: wt.head_snapshot_id } : {}),
    ...(wt?.latest_snapshot_id ? { latest_snapshot_id: wt.latest_snapshot_id } : {}),
    snapshots: list.map((d) => ({
      snapshot_id: d.snapshot_id,
      display_id: shown.get(d.snapshot_id) ?? d.snapshot_id,
      ...(d.parent_id ? { parent_id: d.parent_id } : {}),
      ...(d.parent_id && !byId.has(d.parent_id) && readTombstone(layout, d.parent_id) ? { parent_pruned: true } : {}),
      worktree_name: d.worktree_name,
      created_at: d.created_at,
      ...(d.note ? { note: d.note } : {}),
      tags: d.tags ?? [],
      engine: d.engine,
      is_head: d.snapshot_id === wt?.head_snapshot_id,
      is_latest: d.snapshot_id === wt?.latest_snapshot_id,
    })),
    total,
  };
}
