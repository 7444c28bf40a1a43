import fs from 'node:fs';
import path from 'node:path';
import { hashFile } from '../fsutil/fileHash.js';
import { permBits, walkTree, type WalkFilter } from '../fsutil/walk.js';
import type { ManifestEntry, MaterializeOptions, MaterializeResult } from './materialize.js';
import { applyMetadata } from './metadata.js';

/**
 * Whether the clone of a file holds the content the source had when `before` was taken:
 * the source's inode was not touched from the walk until after the clone (ctime moves on
 * every write or attribute change) and the clone has its size and mtime.
 */
function steady(src: string, before: fs.BigIntStats, clone: fs.BigIntStats): boolean {
  let after: fs.BigIntStats;
  try {
    after = fs.lstatSync(src, { bigint: true });
  } catch {
    return false;
  }
  return after.ino === before.ino && after.ctimeNs === before.ctimeNs && after.mtimeNs === before.mtimeNs && after.size === before.size
    && clone.size === before.size && clone.mtimeNs === before.mtimeNs;
}

const parentRel = (rel: string) => (rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '');

/**
 * materializeTree for engines that clone a whole tree at once (juicefs clone):
 *
 * 1. walk the source with the filter: its stats key the manifest's change detection,
 *    and its hard-link groups are needed because the clone gives every path its own
 *    inode;
 * 2. clone `srcRoot` to `dstRoot` (must not exist);
 * 3. walk the clone with the same filter and remove what it excludes (ignored paths,
 *    paths outside a partial selection, `.READY`) and special files;
 * 4. re-join the user's hard-link groups inside the clone;
 * 5. put back the times of folders whose listing steps 3–4 changed;
 * 6. describe the clone: the manifest is built from what the clone holds, so it matches
 *    the snapshot even when the source changed while it was being cloned (the clone is
 *    atomic per file, not per tree). A file's hash comes from `opts.known` (the index)
 *    when its stat proves it unchanged since it was last read and it stayed untouched
 *    through the clone; otherwise the clone is read and hashed. `hash: false` (a fork,
 *    which takes hashes from the snapshot's manifest) reads nothing.
 *
 * Stats recorded for change detection are the source's from step 1, taken before the
 * clone: if the source changed during the clone, the next snapshot sees a different
 * stat and re-reads the file — the safe direction.
 */
export function materializeByClone(
  srcRoot: string,
  dstRoot: string,
  clone: (src: string, dst: string) => void,
  filter: WalkFilter,
  opts: MaterializeOptions,
): MaterializeResult {
  // 1.
  const before = walkTree(srcRoot, filter);
  const srcStat = new Map(before.entries.map((e) => [e.rel, e]));
  const linkGroups = new Map<string, string[]>();
  for (const e of before.entries) {
    if (e.type !== 'file' || e.stat.nlink < 2n) continue;
    const key = `${e.stat.dev}:${e.stat.ino}`;
    const g = linkGroups.get(key);
    if (g) g.push(e.rel);
    else linkGroups.set(key, [e.rel]);
  }

  // 2.
  clone(srcRoot, dstRoot);

  try {
    // 3.
    const pruned: string[] = [];
    const walk = walkTree(dstRoot, {
      include: (rel, isDir) => {
        if (filter.include && !filter.include(rel, isDir)) {
          pruned.push(rel);
          return false;
        }
        return true;
      },
    });
    const rootStat = fs.lstatSync(dstRoot, { bigint: true });
    const touchedDirs = new Set<string>();
    for (const rel of [...pruned, ...walk.unsupported]) {
      fs.rmSync(path.join(dstRoot, rel), { recursive: true, force: true });
      touchedDirs.add(parentRel(rel));
    }
    const degraded = walk.unsupported.map((rel) => `skipped special file (socket, FIFO or device): ${rel}`);

    // 4.
    const cloneByRel = new Map(walk.entries.map((e) => [e.rel, e]));
    const linkOf = new Map<string, string>();
    for (const group of linkGroups.values()) {
      const present = group.filter((rel) => cloneByRel.get(rel)?.type === 'file');
      const first = present[0];
      if (first === undefined) continue;
      for (const rel of present.slice(1)) {
        const abs = path.join(dstRoot, rel);
        fs.rmSync(abs);
        fs.linkSync(path.join(dstRoot, first), abs);
        linkOf.set(rel, first);
        touchedDirs.add(parentRel(rel));
      }
    }

    // 5. Stats of the folders were taken by the walk before anything was removed.
    for (const rel of touchedDirs) {
      const st = rel === '' ? rootStat : cloneByRel.get(rel)?.stat;
      if (st) applyMetadata(path.join(dstRoot, rel), st, false);
    }

    // 6.
    const total = walk.entries.reduce((s, e) => s + (e.type === 'file' ? Number(e.stat.size) : 0), 0);
    let done = 0;
    const entries: ManifestEntry[] = [];
    const byRel = new Map<string, ManifestEntry>();
    for (const c of walk.entries) {
      const s = srcStat.get(c.rel);
      const key = s && s.type === c.type ? s.stat : c.stat;
      const m: ManifestEntry = {
        rel: c.rel,
        type: c.type,
        mode: permBits(c.stat),
        size: c.type === 'file' ? Number(c.stat.size) : 0,
        mtimeNs: key.mtimeNs,
        ctimeNs: key.ctimeNs,
        ino: key.ino,
        dev: key.dev,
      };
      const abs = path.join(dstRoot, c.rel);
      if (c.type === 'symlink') m.target = fs.readlinkSync(abs);
      if (c.type === 'file') {
        const first = linkOf.get(c.rel);
        const firstEntry = first === undefined ? undefined : byRel.get(first);
        if (firstEntry) {
          m.linkOf = firstEntry.rel;
          m.size = firstEntry.size;
          m.contentHash = firstEntry.contentHash;
        } else if (opts.hash !== false) {
          const trusted = s && s.type === 'file' && opts.known ? opts.known.trusted(c.rel, s.stat) : undefined;
          if (trusted !== undefined && steady(path.join(srcRoot, c.rel), s!.stat, c.stat)) {
            m.contentHash = trusted;
          } else m.contentHash = hashFile(abs);
          done += m.size;
          opts.onProgress?.(done, total);
        }
      }
      entries.push(m);
      byRel.set(m.rel, m);
    }
    return { entries, degraded, bytes: total };
  } catch (e) {
    fs.rmSync(dstRoot, { recursive: true, force: true });
    throw e;
  }
}
