import type { Descriptor } from '../format/descriptor.js';
import { JvsError } from '../errors.js';
import { listIntents } from '../repo/intents.js';
import type { Layout } from '../repo/layout.js';
import { listSnapshotIds } from '../repo/snapshots.js';
import { listWorktreeNames, readWorktreeConfig } from '../repo/worktreeConfig.js';
import { parseDuration } from '../repo/duration.js';
import { listPins, pinIsLive } from './pins.js';

export interface RetentionPolicy {
  /** Keep the newest N snapshots of each line (0: none kept for this reason). */
  keep: number;
  /** Keep every snapshot younger than this duration ('' : none). */
  within: string;
  /** Tagged snapshots are collected like any other (`gc plan --include-tagged`). */
  include_tagged?: boolean;
}

/** A retention policy is in force: then older snapshots on a line may go (their children keep a pruned parent). */
export function hasRetention(policy: RetentionPolicy): boolean {
  return policy.keep > 0 || !!policy.within;
}

export interface Protection {
  /** Every protected id, sorted. */
  all: Set<string>;
  heads: string[];
  tags: string[];
  pins: string[];
  intents: string[];
  retention: string[];
  /** Protected only because a protected snapshot descends from them. */
  lineage: string[];
}

/**
 * What gc must never delete (DESIGN section 3): each worktree's head, latest (and the
 * snapshot it was forked from), tagged snapshots unless `include_tagged`, unexpired
 * pins, snapshots named by live intents, and what the retention policy keeps.
 *
 * Without a retention policy, the ancestors of all of these are kept too (the
 * reference's rule), so no surviving snapshot ever loses its parent. With one
 * (`keep`, `within`), older snapshots on a line are collected: `keep` N keeps the N
 * newest snapshots of each line, a line being the parent chain back from every
 * worktree head and latest and every pinned snapshot (a displaced line's tip is
 * pinned); `within` D keeps every snapshot younger than D. A kept snapshot whose
 * parent goes then has a pruned parent, told apart from damage by the gc tombstone.
 */
export function computeProtection(layout: Layout, descriptors: Descriptor[], policy: RetentionPolicy, now: number): Protection {
  const ids = new Set(descriptors.map((d) => d.snapshot_id));
  const unreadable = listSnapshotIds(layout).filter((id) => !ids.has(id));
  if (unreadable.length) {
    // An unreadable descriptor hides its parent link: gc could delete an ancestor it needs.
    throw new JvsError('E_DESCRIPTOR_CORRUPT', `gc cannot tell what ${unreadable.length === 1 ? 'a damaged descriptor depends' : `${unreadable.length} damaged descriptors depend`} on (${unreadable.slice(0, 3).join(', ')}${unreadable.length > 3 ? ', …' : ''})`, {
      hint: 'run `jvs verify --all` and `jvs doctor --strict`; repair or remove the damaged descriptor before collecting garbage',
    });
  }
  const byId = new Map(descriptors.map((d) => [d.snapshot_id, d]));
  const heads = new Set<string>();
  for (const name of listWorktreeNames(layout)) {
    const c = readWorktreeConfig(layout, name);
    for (const id of [c.head_snapshot_id, c.latest_snapshot_id, c.base_snapshot_id]) if (id) heads.add(id);
  }
  const pins = new Set(listPins(layout).filter((p) => pinIsLive(p, now)).map((p) => p.snapshot_id));
  const intents = new Set<string>();
  for (const i of listIntents(layout)) {
    if (!i.intent) {
      throw new JvsError('E_DESCRIPTOR_CORRUPT', `intent record ${i.file} is damaged (${i.error}); gc cannot tell what it protects`, {
        hint: 'run `jvs doctor --strict --repair-runtime` first',
      });
    }
    if (i.intent.snapshot_id) intents.add(i.intent.snapshot_id);
  }
  const tags = new Set(policy.include_tagged ? [] : descriptors.filter((d) => d.tags?.length).map((d) => d.snapshot_id));
  const parentOf = (id: string) => byId.get(id)?.parent_id;
  const retention = new Set<string>();
  if (policy.keep > 0) {
    for (const tip of [...heads, ...pins]) {
      let cur: string | undefined = tip;
      for (let n = 0; cur && byId.has(cur) && n < policy.keep; n++, cur = parentOf(cur)) retention.add(cur);
    }
  }
  if (policy.within) {
    const cutoff = now - parseDuration(policy.within, 'retention within');
    for (const d of descriptors) if (Date.parse(d.created_at) >= cutoff) retention.add(d.snapshot_id);
  }
  const roots = new Set([...heads, ...tags, ...pins, ...intents, ...retention]);
  const all = new Set(roots);
  const lineage: string[] = [];
  if (!hasRetention(policy)) {
    for (const root of roots) {
      let cur = parentOf(root);
      const seen = new Set<string>();
      while (cur && !seen.has(cur)) {
        seen.add(cur);
        if (!all.has(cur)) {
          all.add(cur);
          lineage.push(cur);
        }
        cur = parentOf(cur);
      }
    }
  }
  const sorted = (s: Iterable<string>) => [...s].sort();
  return { all, heads: sorted(heads), tags: sorted(tags), pins: sorted(pins), intents: sorted(intents), retention: sorted(retention), lineage: sorted(lineage) };
}
