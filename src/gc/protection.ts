import type { Descriptor } from '../format/descriptor.js';
import { JvsError } from '../errors.js';
import { listIntents } from '../repo/intents.js';
import type { Layout } from '../repo/layout.js';
import { listSnapshotIds } from '../repo/snapshots.js';
import { listWorktreeNames, readWorktreeConfig } from '../repo/worktreeConfig.js';
import { parseDuration } from '../repo/duration.js';
import { listPins, pinIsLive } from './pins.js';

export interface RetentionPolicy {
  /** Keep at least this many newest snapshots (0: none kept for this reason). */
  keep: number;
  /** Keep every snapshot younger than this duration ('' : none). */
  within: string;
}

export interface Protection {
  /** Every protected id, sorted. */
  all: Set<string>;
  heads: string[];
  pins: string[];
  intents: string[];
  retention: string[];
  /** Protected only because a protected snapshot descends from them. */
  lineage: string[];
}

/**
 * What gc must never delete (DESIGN section 3): each worktree's head and latest,
 * unexpired pins, snapshots named by live intents, retention keeps, and the
 * ancestors of all of these. Ancestors of every root (not only of heads) are kept
 * so that no surviving snapshot ever has a missing parent: `verify --all` stays
 * clean after any gc.
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
  const retention = new Set<string>();
  const newest = [...descriptors].sort((a, b) => (a.snapshot_id < b.snapshot_id ? 1 : -1));
  newest.slice(0, Math.max(0, policy.keep)).forEach((d) => retention.add(d.snapshot_id));
  if (policy.within) {
    const cutoff = now - parseDuration(policy.within, 'retention within');
    for (const d of descriptors) if (Date.parse(d.created_at) >= cutoff) retention.add(d.snapshot_id);
  }
  const roots = new Set([...heads, ...pins, ...intents, ...retention]);
  const all = new Set(roots);
  const lineage: string[] = [];
  for (const root of roots) {
    let cur = byId.get(root)?.parent_id;
    const seen = new Set<string>();
    while (cur && !seen.has(cur)) {
      seen.add(cur);
      if (!all.has(cur)) {
        all.add(cur);
        lineage.push(cur);
      }
      cur = byId.get(cur)?.parent_id;
    }
  }
  const sorted = (s: Iterable<string>) => [...s].sort();
  return { all, heads: sorted(heads), pins: sorted(pins), intents: sorted(intents), retention: sorted(retention), lineage: sorted(lineage) };
}
