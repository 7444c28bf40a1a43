import fs from 'node:fs';
import type { Layout } from '../repo/layout.js';
import { loadCatalog } from './catalog.js';
import { IndexDb, snapshotOwner } from './indexDb.js';
import { manifestFromPayload, type InodeHashCache } from './manifests.js';
import { compressedManifest } from '../verify/compressedPayload.js';

export interface RebuildIndexResult {
  /** False when no index can be written here (module missing, read-only repository). */
  rebuilt: boolean;
  snapshots: number;
  manifests: number;
  /** Snapshots whose payload folder is missing or unreadable (not indexed). */
  skipped: string[];
  duration_ms: number;
}

/**
 * Throw the index away and build it again from what the repository holds: the
 * catalog from the descriptors, each snapshot's manifest by hashing its payload.
 * Files hard-linked between snapshots (the copy engine's storage sharing) are read
 * once. Worktree states are not rebuilt — they describe worktree files as last read,
 * which only a snapshot can establish; the next snapshot of each worktree reads its
 * files once and records them again. The caller holds the repository lock.
 */
export function rebuildIndex(layout: Layout): RebuildIndexResult {
  const started = Date.now();
  for (const f of [layout.indexDb, `${layout.indexDb}-wal`, `${layout.indexDb}-shm`, `${layout.indexDb}-journal`]) fs.rmSync(f, { force: true });
  const idx = IndexDb.open(layout);
  if (!idx) return { rebuilt: false, snapshots: 0, manifests: 0, skipped: [], duration_ms: Date.now() - started };
  try {
    const { descriptors } = loadCatalog(layout, idx);
    const cache: InodeHashCache = new Map();
    const skipped: string[] = [];
    let manifests = 0;
    for (const d of descriptors) {
      let entries;
      try {
        entries = compressedManifest(layout, d.snapshot_id) ?? manifestFromPayload(layout.snapshotDir(d.snapshot_id), cache);
      } catch {
        skipped.push(d.snapshot_id);
        continue;
      }
      if (idx.putList(snapshotOwner(d.snapshot_id), { entries, probeNs: 0n })) manifests++;
    }
    return { rebuilt: true, snapshots: descriptors.length, manifests, skipped, duration_ms: Date.now() - started };
  } finally {
    idx.close();
  }
}
