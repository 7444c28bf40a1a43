import type { Descriptor } from '../format/descriptor.js';
import type { IndexedEntry } from '../index/manifests.js';

/** True when `rel` is one of `paths` or inside one. */
export function coveredBy(paths: readonly string[], rel: string): boolean {
  return paths.some((p) => rel === p || rel.startsWith(`${p}/`));
}

/**
 * The state a worktree's head stands for. A full snapshot stands for itself. A partial
 * snapshot (`--paths Assets`) holds only its paths: everything else in the worktree
 * was last recorded by the snapshots before it, so for those paths we go to its parent,
 * and on up while the snapshots are partial, until a full one (or the first snapshot).
 * Without this, the state after `jvs snapshot --paths Assets` would vouch for paths it
 * never read, and an unsaved edit outside Assets would vanish from status, diff and
 * restore's unsaved-work check.
 *
 * Newest wins: an entry of an older snapshot is taken only where no newer snapshot of
 * the chain selected the path (or a folder holding it) and none listed that very path.
 */
export function composedHead(
  head: string,
  descriptorOf: (id: string) => Descriptor,
  manifestOf: (id: string) => readonly IndexedEntry[],
  hasPayload: (id: string) => boolean,
): { manifest: IndexedEntry[]; older: string[] } {
  const out: IndexedEntry[] = [];
  const taken = new Set<string>();
  const covered: string[] = [];
  const older: string[] = [];
  const seen = new Set<string>();
  let id: string | undefined = head;
  while (id && !seen.has(id)) {
    seen.add(id);
    let d: Descriptor;
    try {
      d = descriptorOf(id);
    } catch (e) {
      if (id === head) throw e;
      break; // an older snapshot gc pruned or damage hides: its paths count as new
    }
    if (id !== head) older.push(id);
    for (const e of manifestOf(id)) {
      if (taken.has(e.rel) || coveredBy(covered, e.rel)) continue;
      taken.add(e.rel);
      out.push(e);
    }
    if (!d.partial_paths?.length) break;
    covered.push(...d.partial_paths);
    id = d.parent_id && hasPayload(d.parent_id) ? d.parent_id : undefined;
  }
  return { manifest: out, older };
}
