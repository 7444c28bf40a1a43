import { JvsError } from '../errors.js';
import type { Descriptor } from '../format/descriptor.js';
import { isSnapshotId, uniquePrefixes } from '../format/snapshotId.js';
import type { Layout } from './layout.js';
import { loadDescriptors, readDescriptor } from './snapshots.js';
import type { WorktreeConfig } from './worktreeConfig.js';

export type RefKind = 'id' | 'head' | 'tag' | 'prefix' | 'note';

export interface ResolvedRef {
  descriptor: Descriptor;
  kind: RefKind;
}

/** Newest first: ids begin with the creation time, so id order is time order. */
function newestFirst(ds: Descriptor[]): Descriptor[] {
  return [...ds].sort((a, b) => (a.snapshot_id < b.snapshot_id ? 1 : -1));
}

function ambiguous(ref: string, kind: string, matches: Descriptor[]): JvsError {
  const shown = uniquePrefixes(matches.map((d) => d.snapshot_id));
  const list = matches.slice(0, 10).map((d) => `${shown.get(d.snapshot_id)}${d.note ? ` (${d.note.split('\n')[0]!.slice(0, 40)})` : ''}`);
  return new JvsError('E_AMBIGUOUS_REF', `${kind} ${JSON.stringify(ref)} matches ${matches.length} snapshots: ${list.join(', ')}${matches.length > 10 ? ', …' : ''}`, {
    hint: kind === 'id prefix'
      ? 'pass more characters of the id (`jvs history --all` shows ids that are unique)'
      : 'pass more of the note, the full id, or a tag (`jvs history --all --grep <text>` lists the candidates with their ids)',
    details: { candidates: matches.map((d) => d.snapshot_id) },
  });
}

/** Snapshots carrying `tag`, newest first. */
export function snapshotsWithTag(all: Descriptor[], tag: string): Descriptor[] {
  return newestFirst(all.filter((d) => d.tags?.includes(tag)));
}

/**
 * Resolve a user's ref. Order: `HEAD` (the worktree's latest), a full id, a tag
 * (newest snapshot with it), a unique id prefix, a note prefix. Ambiguity is an
 * error listing candidates; nothing is guessed.
 */
export function resolveRef(layout: Layout, ref: string, worktree?: WorktreeConfig, all?: Descriptor[]): ResolvedRef {
  const notFound = (what: string) =>
    new JvsError('E_NOT_FOUND', what, { hint: 'run `jvs history --all` to list snapshots, ids, tags and notes' });
  // HEAD and full ids name one descriptor: without a list at hand, read that one, not
  // all of them (an agent loop restores HEAD after every run, in a repository of
  // thousands of snapshots).
  if (ref === 'HEAD' || isSnapshotId(ref)) {
    const id = ref === 'HEAD' ? worktree?.latest_snapshot_id : ref;
    if (!id) throw notFound(`worktree '${worktree?.name ?? '?'}' has no snapshots yet, so HEAD names nothing`);
    const d = all ? all.find((x) => x.snapshot_id === id) : readIfPresent(layout, id);
    if (!d && ref === 'HEAD') throw new JvsError('E_LINEAGE_BROKEN', `HEAD of worktree '${worktree!.name}' names snapshot ${id}, which does not exist`, { hint: 'run `jvs doctor --strict`' });
    if (!d) throw notFound(`snapshot ${ref} does not exist`);
    return { descriptor: d, kind: ref === 'HEAD' ? 'head' : 'id' };
  }
  const descriptors = all ?? loadDescriptors(layout).descriptors;
  const tagged = snapshotsWithTag(descriptors, ref);
  if (tagged.length) return { descriptor: tagged[0]!, kind: 'tag' };
  if (/^[0-9][0-9a-f-]*$/.test(ref)) {
    const m = descriptors.filter((d) => d.snapshot_id.startsWith(ref));
    if (m.length === 1) return { descriptor: m[0]!, kind: 'prefix' };
    if (m.length > 1) throw ambiguous(ref, 'id prefix', newestFirst(m));
  }
  if (ref.length > 0) {
    const m = descriptors.filter((d) => d.note?.startsWith(ref));
    if (m.length === 1) return { descriptor: m[0]!, kind: 'note' };
    if (m.length > 1) throw ambiguous(ref, 'note prefix', newestFirst(m));
  }
  throw notFound(`no snapshot matches ${JSON.stringify(ref)} (tried HEAD, id, tag, id prefix and note prefix)`);
}

/** The descriptor of snapshot `id`, or undefined when there is none (other failures throw). */
function readIfPresent(layout: Layout, id: string): Descriptor | undefined {
  try {
    return readDescriptor(layout, id);
  } catch (e) {
    if (e instanceof JvsError && e.code === 'E_NOT_FOUND') return undefined;
    throw e;
  }
}

/** The newest snapshot carrying `tag`. */
export function resolveLatestTag(layout: Layout, tag: string, all?: Descriptor[]): ResolvedRef {
  const tagged = snapshotsWithTag(all ?? loadDescriptors(layout).descriptors, tag);
  if (!tagged.length) {
    throw new JvsError('E_NOT_FOUND', `no snapshot carries the tag '${tag}'`, { hint: 'run `jvs history --all` to see the tags in use' });
  }
  return { descriptor: tagged[0]!, kind: 'tag' };
}
