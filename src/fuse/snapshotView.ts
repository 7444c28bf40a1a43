import fs from 'node:fs';
import { createRequire } from 'node:module';
import { isSnapshotId } from '../format/snapshotId.js';
import type { Layout } from '../repo/layout.js';
import { resolveRef } from '../repo/refs.js';
import { loadDescriptors } from '../repo/snapshots.js';
import { readWorktreeConfig } from '../repo/worktreeConfig.js';
import { attrOf, virtualAttr, virtualIno, type Attr } from './attrs.js';
import { fsErr } from './errno.js';

// Required, not imported: the bundled CLI (scripts/bundle.mjs) keeps lru-cache outside
// and must not load it for commands other than `mount`.
const { LRUCache } = createRequire(import.meta.url)('lru-cache') as typeof import('lru-cache');

/** A name under `.jvs/snapshots/`: a snapshot folder, or a link (tag, HEAD) to one. */
export type SnapshotName = { kind: 'dir'; id: string } | { kind: 'link'; id: string };

/**
 * `.jvs/snapshots/`: every published snapshot as a read-only folder named by its id,
 * plus one symlink per tag (to the newest snapshot carrying it) and `HEAD` (to the
 * worktree's HEAD as `jvs restore HEAD` resolves it). Tags and HEAD are links rather
 * than folders so that what the kernel caches under an id never changes: a snapshot
 * folder is immutable, which is what makes caching its attributes (and the kernel's
 * page cache, keep_cache) safe. New snapshots appear without remounting: the name table
 * is rebuilt when the descriptors folder or the worktree config change. What is below
 * an id folder is served by the C session (native/fuse/ops.c), not here.
 */
export class SnapshotView {
  private names = new Map<string, SnapshotName>();
  private stamp = '';
  private readonly attrs = new LRUCache<string, Attr | 'ENOENT'>({ max: 200_000 });

  constructor(private readonly layout: Layout, private readonly worktree: string) {}

  /** Folder holding the snapshot folders (the C session serves `<id>/…` from it). */
  get root(): string {
    return this.layout.snapshots;
  }

  /** The name table, rebuilt when a snapshot was published, deleted or HEAD moved. */
  table(): Map<string, SnapshotName> {
    // The config is replaced by rename on every head move, so its inode changes even
    // when two updates fall within one tick of the file system's coarse clock.
    const stamp = `${stampOf(this.layout.descriptors)}:${stampOf(this.layout.worktreeConfig(this.worktree))}`;
    if (stamp === this.stamp) return this.names;
    const { descriptors } = loadDescriptors(this.layout);
    const names = new Map<string, SnapshotName>();
    // Newest last, so a tag ends up naming the newest snapshot carrying it.
    for (const d of descriptors) {
      for (const t of d.tags ?? []) if (!isSnapshotId(t) && t !== 'HEAD') names.set(t, { kind: 'link', id: d.snapshot_id });
    }
    for (const d of descriptors) names.set(d.snapshot_id, { kind: 'dir', id: d.snapshot_id });
    try {
      const wt = readWorktreeConfig(this.layout, this.worktree);
      const head = resolveRef(this.layout, 'HEAD', wt, descriptors);
      names.set('HEAD', { kind: 'link', id: head.descriptor.snapshot_id });
    } catch {
      /* no snapshot yet (or a damaged config, which `jvs doctor` reports): no HEAD link */
    }
    this.names = names;
    this.stamp = stamp;
    return names;
  }

  /** Forget the name table (after a snapshot or restore through the control files). */
  invalidate(): void {
    this.stamp = '';
  }

  list(): string[] {
    return [...this.table().keys()];
  }

  lookup(name: string): SnapshotName {
    const n = this.table().get(name);
    if (!n) throw fsErr('ENOENT');
    return n;
  }

  /** Attributes of `name` itself (a folder or a link) in the snapshots folder. */
  nameAttr(name: string): Attr {
    const n = this.lookup(name);
    if (n.kind === 'link') return virtualAttr('symlink', 0o777, n.id.length, createdNs(n.id), virtualIno(`snapshots/${name}`));
    return this.folderAttr(n.id);
  }

  readlink(name: string): string {
    const n = this.lookup(name);
    if (n.kind !== 'link') throw fsErr('EINVAL');
    return n.id;
  }

  /** Attributes of a snapshot folder: write bits stripped, cached (the folder is immutable). */
  private folderAttr(id: string): Attr {
    const hit = this.attrs.get(id);
    if (hit === 'ENOENT') throw fsErr('ENOENT');
    if (hit) return hit;
    try {
      const a = attrOf(fs.lstatSync(this.layout.snapshotDir(id), { bigint: true }), true);
      this.attrs.set(id, a);
      return a;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') this.attrs.set(id, 'ENOENT');
      throw e;
    }
  }
}

function stampOf(p: string): string {
  try {
    const st = fs.statSync(p, { bigint: true });
    return `${st.ino}.${st.mtimeNs}.${st.size}`;
  } catch {
    return 'missing';
  }
}

/** Creation time encoded in a snapshot id (13-digit Unix milliseconds). */
function createdNs(id: string): bigint {
  return BigInt(id.slice(0, 13)) * 1_000_000n;
}
