import { JvsError } from '../errors.js';
import fs from 'node:fs';
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
  /** Kept from gc by a pin (e.g. the tip of a line a new line left, or unsaved work restore kept). */
  pinned: boolean;
}

/** A snapshot the view reached but could not show: its descriptor is damaged or gone. */
export interface HistoryDamage {
  snapshot_id: string;
  error_class: 'E_DESCRIPTOR_CORRUPT' | 'E_LINEAGE_BROKEN';
  problem: string;
  path: string;
}

export interface HistoryResult {
  worktree?: string;
  head_snapshot_id?: string;
  latest_snapshot_id?: string;
  snapshots: HistoryEntry[];
  total: number;
  /** Never empty-and-hidden: the CLI turns any entry into a non-zero exit (historyFailure). */
  damaged: HistoryDamage[];
  /** The worktree's line stops at a damaged snapshot: older snapshots of it cannot be listed. */
  truncated_at?: string;
  /** Without `all`: snapshots of the repository not on this line (other lines, other worktrees). */
  not_on_line?: number;
}

/**
 * Snapshots newest first. By default the lineage of the worktree's latest snapshot
 * (parent chain), with `all` every snapshot of the repository.
 *
 * Damage is shown, never skipped: a descriptor the view reaches but cannot parse (with
 * `all`: any; on a line: the one where the parent chain stops, and the worktree's
 * head or latest) is listed in `damaged`, and everything readable is still listed, so
 * a person sees how much is intact. A parent that is simply absent is not damage here
 * (gc prunes ancestors under a retention policy; verify tells the two apart).
 */
export function history(layout: Layout, opts: HistoryOptions): HistoryResult {
  const { descriptors, broken } = loadDescriptors(layout);
  const byId = new Map(descriptors.map((d) => [d.snapshot_id, d]));
  const brokenById = new Map(broken.map((b) => [b.id, b.error]));
  const wt = opts.worktree ? readWorktreeConfig(layout, opts.worktree) : undefined;
  const damaged: HistoryDamage[] = [];
  const noteDamage = (id: string) => {
    if (damaged.some((x) => x.snapshot_id === id)) return;
    const e = brokenById.get(id);
    damaged.push(e
      ? { snapshot_id: id, error_class: 'E_DESCRIPTOR_CORRUPT', problem: e.message, path: layout.descriptor(id) }
      : { snapshot_id: id, error_class: 'E_LINEAGE_BROKEN', problem: `worktree '${wt?.name}' points at snapshot ${id}, whose descriptor is missing`, path: layout.descriptor(id) });
  };
  let list: Descriptor[];
  let truncatedAt: string | undefined;
  if (opts.all || !wt) {
    list = [...descriptors].reverse();
    for (const b of [...broken].reverse()) noteDamage(b.id);
  } else {
    list = [];
    const seen = new Set<string>();
    let cur = wt.latest_snapshot_id;
    while (cur && !seen.has(cur)) {
      seen.add(cur);
      const d = byId.get(cur);
      if (!d) {
        if (brokenById.has(cur) || cur === wt.latest_snapshot_id) {
          noteDamage(cur);
          truncatedAt = cur;
        }
        break;
      }
      list.push(d);
      cur = d.parent_id;
    }
    for (const id of [wt.head_snapshot_id, wt.latest_snapshot_id]) if (id && !byId.has(id)) noteDamage(id);
  }
  if (opts.tag) list = list.filter((d) => d.tags?.includes(opts.tag!));
  if (opts.grep) {
    const needle = opts.grep.toLowerCase();
    list = list.filter((d) => (d.note ?? '').toLowerCase().includes(needle));
  }
  const total = list.length;
  if (opts.limit !== undefined && opts.limit >= 0) list = list.slice(0, opts.limit);
  const shown = uniquePrefixes([...descriptors.map((d) => d.snapshot_id), ...broken.map((b) => b.id)]);
  const onLine = opts.all || !wt ? undefined : total;
  const pinned = pinnedIds(layout);
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
      pinned: pinned.has(d.snapshot_id),
    })),
    total,
    damaged,
    ...(onLine !== undefined && !opts.tag && !opts.grep ? { not_on_line: descriptors.length - onLine } : {}),
    ...(truncatedAt ? { truncated_at: truncatedAt } : {}),
  };
}

/** The error a history with damage in view ends with (the listing itself is still printed). */
export function historyFailure(r: HistoryResult): JvsError | undefined {
  const first = r.damaged[0];
  if (!first) return undefined;
  const n = r.damaged.length;
  return new JvsError(first.error_class, `${n} snapshot${n === 1 ? '' : 's'} in this history cannot be shown: ${first.problem}${n > 1 ? ' (and more, listed above)' : ''}`, {
    hint: `run \`jvs verify ${first.snapshot_id}\` for details and \`jvs doctor\` to check the repository; restore the descriptor from a backup if you have one`,
    details: { damaged: r.damaged.map((d) => d.snapshot_id) },
  });
}

/** Ids named by pin records (`.jvs/pins/<id>.json`); damaged pins are doctor's to report. */
function pinnedIds(layout: Layout): Set<string> {
  try {
    return new Set(fs.readdirSync(layout.pins).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)));
  } catch {
    return new Set();
  }
}
