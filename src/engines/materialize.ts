import fs from 'node:fs';
import path from 'node:path';
import type { HashedEntry } from '../format/payloadHash.js';
import { permBits, walkTree, type TreeEntry, type WalkFilter } from '../fsutil/walk.js';
import type { Engine } from './engine.js';
import { applyMetadata } from './metadata.js';
import { materializeByClone } from './materializeClone.js';

/** One entry of a materialised tree: what the payload hash and the manifest need. */
export interface ManifestEntry extends HashedEntry {
  /** Source stat at the time it was read (the manifest keys change detection on it). */
  mtimeNs: bigint;
  ctimeNs: bigint;
  ino: bigint;
  dev: bigint;
  /** rel of the first path of this hard-link group, when the entry is a user hard link. */
  linkOf?: string;
}

export interface MaterializeResult {
  entries: ManifestEntry[];
  /** Things that could not be kept exactly, for the descriptor's audit record. Never silent. */
  degraded: string[];
  bytes: number;
}

export interface MaterializeOptions extends WalkFilter {
  /** Called with bytes done so far, for progress bars; never required. */
  onProgress?(done: number, total: number): void;
  /** Skip entries by base name (e.g. `.READY` when copying out of a snapshot). */
  skipNames?: ReadonlySet<string>;
}

/**
 * Copy the tree `srcRoot` into `dstRoot` (created; must not exist) with `engine`,
 * keeping symlinks as links (never followed), modes, times, owners (as root) and hard
 * links between files of the tree. Directory metadata is applied after its children,
 * so read-only folders still receive their content.
 */
export function materializeTree(srcRoot: string, dstRoot: string, engine: Engine, opts: MaterializeOptions = {}): MaterializeResult {
  const skip = opts.skipNames;
  const include = opts.include;
  const filter: WalkFilter = {
    include: (rel, isDir) => {
      if (skip && skip.has(rel.slice(rel.lastIndexOf('/') + 1))) return false;
      return include ? include(rel, isDir) : true;
    },
  };
  // Whole-tree cloning engines (juicefs-clone): clone, prune, describe the clone.
  if (engine.cloneTree) return materializeByClone(srcRoot, dstRoot, (s, d) => engine.cloneTree!(s, d), filter, opts);
  const walk = walkTree(srcRoot, filter);
  const degraded = walk.unsupported.map((rel) => `skipped special file (socket, FIFO or device): ${rel}`);
  const total = walk.entries.reduce((s, e) => s + (e.type === 'file' ? Number(e.stat.size) : 0), 0);
  const rootStat = fs.lstatSync(srcRoot, { bigint: true });
  fs.mkdirSync(dstRoot, { mode: 0o700 });

  const entries: ManifestEntry[] = [];
  const firstOfInode = new Map<string, ManifestEntry>();
  const dirs: Array<{ abs: string; stat: fs.BigIntStats }> = [];
  let done = 0;

  for (const e of walk.entries) {
    const src = path.join(srcRoot, e.rel);
    const dst = path.join(dstRoot, e.rel);
    const m = baseEntry(e);
    switch (e.type) {
      case 'dir':
        fs.mkdirSync(dst, { mode: 0o700 });
        dirs.push({ abs: dst, stat: e.stat });
        break;
      case 'symlink':
        m.target = fs.readlinkSync(src);
        fs.symlinkSync(m.target, dst);
        applyMetadata(dst, e.stat, true);
        break;
      case 'file': {
        const key = `${e.stat.dev}:${e.stat.ino}`;
        const first = e.stat.nlink > 1n ? firstOfInode.get(key) : undefined;
        if (first !== undefined) {
          fs.linkSync(path.join(dstRoot, first.rel), dst);
          m.linkOf = first.rel;
          m.contentHash = first.contentHash;
          break;
        }
        if (e.stat.nlink > 1n) firstOfInode.set(key, m);
        m.contentHash = engine.copyFile(src, dst, permBits(e.stat), true);
        applyMetadata(dst, e.stat, false);
        done += m.size;
        opts.onProgress?.(done, total);
        break;
      }
    }
    entries.push(m);
  }
  for (let i = dirs.length - 1; i >= 0; i--) applyMetadata(dirs[i]!.abs, dirs[i]!.stat, false);
  applyMetadata(dstRoot, rootStat, false);
  return { entries, degraded, bytes: total };
}

function baseEntry(e: TreeEntry): ManifestEntry {
  return {
    rel: e.rel,
    type: e.type,
    mode: permBits(e.stat),
    size: e.type === 'file' ? Number(e.stat.size) : 0,
    mtimeNs: e.stat.mtimeNs,
    ctimeNs: e.stat.ctimeNs,
    ino: e.stat.ino,
    dev: e.stat.dev,
  };
}
